"""The egress proxy, and each sandbox's private way to it.

A sandbox that needs network (setup, environment builds) never touches a network that
leads anywhere. It gets a network of its own: ``internal`` (no route out) and with no
address for the host on its bridge (``inhibit_ipv4``), so neither the host's services
nor anything else answers there. The one other member is the proxy, a Squid container
that also sits on an ordinary bridge network and is the only way out. It lets each
sandbox reach the hosts of its own allow-list (one file per sandbox address, read by
the proxy's helper) and never connects to private, loopback, link-local or metadata
addresses, nor to this machine's own addresses (:func:`host_addresses`).

One proxy serves every worker on an engine. The first setup that needs it creates it
(or uses the one ``docker-compose.yml`` runs, by the same name); the worker's
:class:`EgressSupervisor` restarts it when it stops or turns unhealthy. Per-sandbox
networks carry the sandbox labels, so the reaper removes those a dead worker left.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import json
import logging
import random
import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import docker
import docker.errors
from docker.models.containers import Container
from docker.models.networks import Network
from docker.types import IPAMConfig, IPAMPool, LogConfig

from process.exceptions import EgressUnavailable
from process.lifecycle import Lifecycle
from process.periodic import Periodic
from runs.artifacts import EgressReport
from sandboxes import egress_log, labels
from sandboxes.config import EgressConfig

log = logging.getLogger(__name__)

PORT = 3128
STATE_DIR = "/run/agents-egress"
ALLOW_DIR = f"{STATE_DIR}/allow"
#: Debian's ``proxy`` user (fixed by base-passwd), which Squid runs as.
PROXY_UID = 13
#: On the proxy: who runs it (``worker``, or ``compose`` for the compose service) and a
#: digest of what the worker created it from. On each sandbox network: ``1``.
PROXY_LABEL = "agents.egress.proxy"
INPUTS_LABEL = "agents.egress.inputs"
NETWORK_LABEL = "agents.egress.network"
SUBNET_PREFIX = 28
NO_PROXY = "localhost,127.0.0.1,::1"
#: Most log bytes read for one report; the log is bounded by its driver too.
MAX_LOG_BYTES = 16 * 1024 * 1024
#: Reads of the access log, LOG_SETTLE_SECONDS apart, until two agree (_settled_log).
LOG_READS = 4
LOG_SETTLE_SECONDS = 0.5
_ATTEMPTS = 20
#: Seconds a freshly started proxy has to pass its health check.
READY_SECONDS = 60.0


def proxy_env(address: str) -> dict[str, str]:
    """The variables that send a sandbox's HTTP(S) clients (pip, npm, go, git, curl,
    cargo) to the proxy at ``address``."""
    url = f"http://{address}:{PORT}"
    return {
        "HTTP_PROXY": url,
        "HTTPS_PROXY": url,
        "http_proxy": url,
        "https_proxy": url,
        "NO_PROXY": NO_PROXY,
        "no_proxy": NO_PROXY,
        "npm_config_proxy": url,
        "npm_config_https_proxy": url,
    }


def host_addresses(
    fib_trie: Path = Path("/proc/net/fib_trie"), if_inet6: Path = Path("/proc/net/if_inet6")
) -> list[str]:
    """This machine's own addresses, loopback aside (Linux; empty elsewhere).

    When the worker runs on the engine's host these are the host's: the proxy is told
    never to connect to them, whatever name resolves there. A worker in a container
    sees its own instead; ``AGENTS_EGRESS_DENY`` names the host's then.
    """
    found: dict[str, None] = {}
    with contextlib.suppress(OSError):  # no IPv4 table to read: nothing of it to deny
        last = None
        for line in fib_trie.read_text().splitlines():
            match = re.match(r"^\s*\|-- ([0-9.]+)$", line)
            if match:
                last = match.group(1)
            elif "/32 host LOCAL" in line and last and not last.startswith("127."):
                found[last] = None
    with contextlib.suppress(OSError, ValueError):  # no IPv6 here, or a line not understood
        for line in if_inet6.read_text().splitlines():
            words = line.split()
            if len(words) >= 4 and words[3] == "00":  # global scope
                address = ipaddress.IPv6Address(int(words[0], 16))
                if not address.is_loopback:
                    found[str(address)] = None
    return list(found)


@dataclass(frozen=True)
class SandboxNetwork:
    """One sandbox's internal network, with the proxy's address on it."""

    name: str
    id: str
    proxy_address: str


class EgressProxy:
    """The engine's proxy container: find it, create it, check it, and hand out networks."""

    def __init__(self, client: docker.DockerClient, config: EgressConfig | None = None) -> None:
        self.client = client
        self.config = config or EgressConfig()

    # -- the proxy container ----------------------------------------------------------

    def deny(self) -> list[str]:
        """Addresses the proxy never connects to, beyond the built-in private ranges."""
        return list(dict.fromkeys([*self.config.deny, *host_addresses()]))

    def inputs(self, image_id: str, deny: list[str]) -> str:
        text = json.dumps([image_id, sorted(deny), PORT, STATE_DIR, self.config.network])
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def find(self) -> Container | None:
        try:
            return self.client.containers.get(self.config.proxy)
        except docker.errors.NotFound:
            return None

    def ensure(self) -> Container:
        """The running proxy, created with its network if missing. Raises
        :class:`EgressUnavailable` with what to do when it cannot be."""
        container = self.find() or self._create()
        if container.status == "running":
            return container
        try:
            container.start()
        except docker.errors.APIError as exc:
            raise self.unavailable(f"starting the egress proxy failed: {exc}") from exc
        return self._wait_ready(container)

    def _wait_ready(self, container: Container, limit: float = READY_SECONDS) -> Container:
        """The container once its health check passes: a sandbox's first request must
        not find the port still closed."""
        deadline = time.monotonic() + limit
        while True:
            container.reload()
            state = self.health(container)
            if state in ("healthy", "running"):
                return container
            if state not in ("starting",) or time.monotonic() > deadline:
                raise self.unavailable(
                    f"the egress proxy {container.name} is {state}, not healthy; see "
                    f"`docker logs {container.name}`"
                )
            time.sleep(0.2)

    def unavailable(self, message: str) -> EgressUnavailable:
        """The error for a setup that cannot get out; the sandbox adds its run id."""
        return EgressUnavailable("-", message)

    def _create(self) -> Container:
        config = self.config
        try:
            image = self.client.images.get(config.image)
        except docker.errors.ImageNotFound:
            raise self.unavailable(
                f"the egress proxy image {config.image} is not on this Docker engine; build "
                "it with `agents sandbox build egress`"
            ) from None
        deny = self.deny()
        network = self._egress_network()
        try:
            container = self.client.containers.create(
                config.image,
                name=config.proxy,
                labels={PROXY_LABEL: "worker", INPUTS_LABEL: self.inputs(str(image.id), deny)},
                environment={"AGENTS_EGRESS_DENY": ",".join(deny)},
                network=network.name,
                read_only=True,
                tmpfs={
                    STATE_DIR: f"rw,nosuid,nodev,noexec,size=16m,uid={PROXY_UID},"
                    f"gid={PROXY_UID},mode=0755"
                },
                cap_drop=["ALL"],
                security_opt=["no-new-privileges:true"],
                mem_limit="256m",
                pids_limit=512,
                init=True,
                # Docker restarts it after a crash or an engine restart (the stubs
                # know only "always" and "on-failure").
                restart_policy=cast(Any, {"Name": "unless-stopped"}),
                log_config=LogConfig(
                    type=LogConfig.types.JSON, config={"max-size": "10m", "max-file": "3"}
                ),
            )
        except docker.errors.APIError as exc:
            if exc.status_code == 409:  # another worker created it first
                found = self.find()
                if found is not None:
                    return found
            raise self.unavailable(f"creating the egress proxy failed: {exc}") from exc
        log.info("created the egress proxy %s from %s", config.proxy, config.image)
        return container

    def _egress_network(self) -> Network:
        name = self.config.network
        with contextlib.suppress(docker.errors.NotFound):  # made below when missing
            return self.client.networks.get(name)
        try:
            return self.client.networks.create(
                name, driver="bridge", labels={PROXY_LABEL: "network"}, check_duplicate=True
            )
        except docker.errors.APIError as exc:
            try:
                return self.client.networks.get(name)
            except docker.errors.NotFound:
                raise self.unavailable(f"creating network {name} failed: {exc}") from exc

    def health(self, container: Container) -> str:
        """``running``, ``healthy``, ``unhealthy``, ``starting``, or the stopped state."""
        state = container.attrs.get("State") or {}
        if not state.get("Running"):
            return str(state.get("Status") or container.status)
        return str((state.get("Health") or {}).get("Status") or "running")

    def supervise(self) -> str:
        """One supervisor pass, and what it found. Restarts a stopped or unhealthy proxy,
        recreates an idle one this worker would now create differently, and removes
        allow files whose sandbox is gone. Never creates a proxy nobody asked for."""
        container = self.find()
        if container is None:
            return "absent"
        state = self.health(container)
        if state in ("exited", "dead", "created", "unhealthy"):
            log.warning("egress proxy %s is %s; restarting it", self.config.proxy, state)
            container.restart(timeout=5)
            return f"restarted ({state})"
        if self._outdated(container) and not self._sandbox_networks(container):
            log.info("egress proxy %s was made from other settings; recreating it", container.name)
            container.remove(force=True)
            self.ensure()
            return "recreated"
        self._sweep(container)
        return state

    def _outdated(self, container: Container) -> bool:
        found = dict(container.labels)
        if found.get(PROXY_LABEL) != "worker":
            return False  # the compose service's: compose decides what it runs
        try:
            image_id = str(self.client.images.get(self.config.image).id)
        except docker.errors.ImageNotFound:
            return False
        return found.get(INPUTS_LABEL) != self.inputs(image_id, self.deny())

    def _sandbox_networks(self, container: Container) -> list[ipaddress.IPv4Network]:
        """The subnets of the sandbox networks the proxy is on now: those in the pool
        sandbox networks take theirs from (an outside network it was put on under an
        earlier AGENTS_EGRESS_NETWORK is not one, and must not keep it from renewal)."""
        pool = ipaddress.IPv4Network(self.config.subnets)
        networks = []
        for name, endpoint in (container.attrs["NetworkSettings"].get("Networks") or {}).items():
            if name == self.config.network or not endpoint.get("IPAddress"):
                continue
            prefix = endpoint.get("IPPrefixLen") or 32
            networks.append(ipaddress.ip_network(f"{endpoint['IPAddress']}/{prefix}", strict=False))
        return [n for n in networks if isinstance(n, ipaddress.IPv4Network) and n.subnet_of(pool)]

    def _sweep(self, container: Container) -> None:
        live = self._sandbox_networks(container)
        listing = container.exec_run(["ls", "-1", ALLOW_DIR], user=str(PROXY_UID))
        if listing.exit_code != 0:
            return
        stale = []
        for name in _text(listing.output).split():
            try:
                address = ipaddress.ip_address(name)
            except ValueError:
                continue
            if not any(address in network for network in live):
                stale.append(f"{ALLOW_DIR}/{address}")
        if stale:
            container.exec_run(["rm", "-f", "--", *stale], user=str(PROXY_UID))

    # -- one sandbox's network -------------------------------------------------------

    def open_network(self, run_id: str, network_labels: dict[str, str]) -> SandboxNetwork:
        """A new internal network with the proxy on it, for one sandbox of ``run_id``."""
        proxy = self.ensure()
        network = self._create_sandbox_network(run_id, network_labels)
        try:
            try:
                network.connect(proxy)
            except docker.errors.NotFound:  # recreated since: once more with the new one
                proxy = self.ensure()
                network.connect(proxy)
            proxy.reload()
            endpoint = proxy.attrs["NetworkSettings"]["Networks"][network.name]
            address = str(endpoint["IPAddress"])
        except (docker.errors.DockerException, KeyError) as exc:
            self._remove_network(network)
            raise self.unavailable(f"connecting the egress proxy failed: {exc}") from exc
        return SandboxNetwork(name=str(network.name), id=str(network.id), proxy_address=address)

    def _create_sandbox_network(self, run_id: str, network_labels: dict[str, str]) -> Network:
        pool = ipaddress.IPv4Network(self.config.subnets)
        taken = self._taken_subnets()
        candidates: list[ipaddress.IPv4Network] = list(pool.subnets(new_prefix=SUBNET_PREFIX))
        random.shuffle(candidates)
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", run_id).strip("-.")[:40] or "run"
        attempts = 0
        for subnet in candidates:
            if any(subnet.overlaps(other) for other in taken):
                continue
            attempts += 1
            if attempts > _ATTEMPTS:
                break
            try:
                return self.client.networks.create(
                    f"agents-{safe}-{secrets.token_hex(3)}",
                    driver="bridge",
                    internal=True,
                    options={
                        "com.docker.network.bridge.inhibit_ipv4": "true",
                        "com.docker.network.bridge.enable_ip_masquerade": "false",
                    },
                    ipam=IPAMConfig(pool_configs=[IPAMPool(subnet=str(subnet))]),
                    labels={**network_labels, NETWORK_LABEL: "1"},
                    check_duplicate=True,
                )
            except docker.errors.APIError as exc:
                if "overlap" not in str(exc).lower():
                    raise self.unavailable(f"creating the sandbox's network failed: {exc}") from exc
                taken.append(subnet)  # another worker took it a moment ago
        raise self.unavailable(
            f"no free /{SUBNET_PREFIX} left in {pool} for the sandbox's network "
            "(AGENTS_EGRESS_SUBNETS); are old sandbox networks piling up? `agents reap`"
        )

    def _taken_subnets(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        taken = []
        for network in self.client.api.networks():
            for pool in (network.get("IPAM") or {}).get("Config") or []:
                if pool.get("Subnet"):
                    taken.append(ipaddress.ip_network(pool["Subnet"], strict=False))
        return taken

    def admit(self, address: str, hosts: tuple[str, ...]) -> None:
        """Let the sandbox at ``address`` reach ``hosts`` (and nothing else)."""
        ip = str(ipaddress.ip_address(address))
        proxy = self.ensure()
        target = f"{ALLOW_DIR}/{ip}"
        script = (
            'target=$1; shift; printf "%s\\n" "$@" > "$target.new" && mv "$target.new" "$target"'
        )
        result = proxy.exec_run(
            ["sh", "-c", script, "agents-admit", target, *hosts], user=str(PROXY_UID)
        )
        if result.exit_code != 0:
            detail = _text(result.output).strip()
            raise self.unavailable(f"the egress proxy refused the allow-list: {detail}")

    def now(self) -> int:
        """The engine's clock (the proxy's log times are the engine's, not ours)."""
        stamp = str(self.client.info().get("SystemTime") or "")
        try:
            return int(datetime.fromisoformat(re.sub(r"(\.\d{6})\d*", r"\1", stamp)).timestamp())
        except ValueError:
            return int(time.time())

    def report(self, address: str, since: int) -> EgressReport:
        """What the sandbox at ``address`` asked the proxy for since ``since``."""
        proxy = self.find()
        if proxy is None:
            return EgressReport(truncated=True)
        try:
            return egress_log.summarize_access(_settled_log(proxy, since), address, since)
        except docker.errors.DockerException as exc:
            log.warning("reading the egress proxy's log failed: %s", exc)
            return EgressReport(truncated=True)

    def release(self, network: SandboxNetwork, address: str | None) -> None:
        """Forget the sandbox's allow-list and remove its network."""
        proxy = self.find()
        if proxy is not None and address:
            try:
                proxy.exec_run(["rm", "-f", "--", f"{ALLOW_DIR}/{address}"], user=str(PROXY_UID))
            except docker.errors.DockerException as exc:
                log.warning("removing the allow-list of %s failed: %s", address, exc)
        try:
            found = self.client.networks.get(network.id)
        except docker.errors.NotFound:
            return
        self._remove_network(found)

    def _remove_network(self, network: Network) -> None:
        remove_network(self.client, network)


def remove_network(client: docker.DockerClient, network: Network) -> bool:
    """Disconnect whatever is still on ``network`` (the proxy, a dead sandbox) and
    remove it; False when it was gone already."""
    try:
        network.reload()
        for container_id in network.attrs.get("Containers") or {}:
            with contextlib.suppress(docker.errors.APIError):  # removed meanwhile
                client.api.disconnect_container_from_network(
                    container_id, str(network.id), force=True
                )
        network.remove()
    except docker.errors.NotFound:
        return False
    return True


def _text(output: bytes | Iterator[bytes]) -> str:
    data = output if isinstance(output, bytes) else b"".join(output)
    return data.decode("utf-8", errors="replace")


def _settled_log(proxy: Container, since: int) -> list[bytes]:
    """The proxy's access log since ``since``, read again until two reads agree (at most
    :data:`LOG_READS` reads). The engine copies a container's output into its log on
    its own time, so a read just after setup can miss its last request, often the
    denial the thread should name (a loaded CI machine did)."""
    previous: list[bytes] | None = None
    for _ in range(LOG_READS):
        stream = proxy.logs(
            stdout=True, stderr=False, since=max(since - 1, 0), stream=True, follow=False
        )
        lines = list(_lines(stream))
        if lines == previous:
            break
        previous = lines
        time.sleep(LOG_SETTLE_SECONDS)
    return lines


def _lines(stream: Iterator[bytes]) -> Iterator[bytes]:
    """Complete lines from a log stream, at most :data:`MAX_LOG_BYTES` in all."""
    pending = b""
    used = 0
    for chunk in stream:
        used += len(chunk)
        if used > MAX_LOG_BYTES:
            break
        pending += chunk
        *complete, pending = pending.split(b"\n")
        yield from complete
        if len(pending) > egress_log.MAX_LINE:
            pending = b""
    if pending:
        yield pending


class EgressLease(Lifecycle):
    """One sandbox's way out: its own network, the proxy on it, and its allow-list.

    :meth:`start` makes the network (the container is created on it), :meth:`admit`
    registers the started container's address, :meth:`report` reads where it went,
    and :meth:`close` removes the allow-list and the network.
    """

    def __init__(
        self,
        proxy: EgressProxy,
        run_id: str,
        allow: tuple[str, ...],
        network_labels: dict[str, str] | None = None,
    ) -> None:
        self.proxy = proxy
        self.run_id = run_id
        self.allow = allow
        self.network_labels = network_labels or {labels.RUN_ID: run_id}
        self.network: SandboxNetwork | None = None
        self.address: str | None = None
        self.since = 0

    def start(self) -> SandboxNetwork:
        if self.network is None:
            self.network = self.proxy.open_network(self.run_id, self.network_labels)
        return self.network

    def admit(self, container: Container) -> None:
        network = self.start()
        container.reload()
        endpoint = (container.attrs["NetworkSettings"].get("Networks") or {}).get(network.name)
        if not endpoint or not endpoint.get("IPAddress"):
            raise self.proxy.unavailable(f"the sandbox has no address on {network.name}")
        self.since = self.proxy.now()
        self.address = str(endpoint["IPAddress"])
        self.proxy.admit(self.address, self.allow)

    @property
    def env(self) -> dict[str, str]:
        return proxy_env(self.network.proxy_address) if self.network is not None else {}

    def report(self) -> EgressReport:
        if self.address is None:
            return EgressReport()
        return self.proxy.report(self.address, self.since)

    def close(self) -> None:
        network, self.network = self.network, None
        if network is not None:
            self.proxy.release(network, self.address)
        self.address = None


class EgressSupervisor(Periodic):
    """The worker's check on the proxy: :meth:`EgressProxy.supervise` every ``interval``."""

    def __init__(self, proxy: EgressProxy, interval: float = 30.0) -> None:
        self.proxy = proxy
        super().__init__("egress-supervisor", interval, self._pass)

    def _pass(self) -> None:
        self.proxy.supervise()
