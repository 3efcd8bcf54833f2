"""Setup egress on a real engine, through the real Squid proxy.

The allowed destination is a local PEP 503 index standing in for the registry, and a
second one, not on the allow-list, stands in for everything else
(tests/sandboxes/package_index.py: both sit on the proxy's outside network, at
documentation-range addresses the proxy's refusal rules let through). The host is
stood in for by a server this test runs on all of the host's addresses. An ordinary
container reaches all of them (checked first, so that every "cannot reach" below could
fail).

Other modules' flow tests use Debian's mirror (:data:`ALLOWED`), which containers on
this machine reach without a CA.
"""

from __future__ import annotations

import http.server
import os
import secrets
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import docker
import docker.errors
import pytest
from docker.models.networks import Network

from sandboxes import labels
from sandboxes.config import EgressConfig, SandboxConfig
from sandboxes.docker_sandbox import DockerSandbox
from sandboxes.egress_proxy import EgressProxy
from sandboxes.image_builder import KINDS, ImageBuilder
from sandboxes.labels import RUN_ID
from sandboxes.owner import Owner
from sandboxes.reaper import Reaper
from tests.ops.compose import bridge_gateway
from tests.sandboxes import package_index

pytestmark = pytest.mark.docker

ALLOWED = "deb.debian.org"
RELEASE = f"{ALLOWED}/debian/dists/bookworm/Release"
METADATA = "169.254.169.254"
#: The registry's stand-in (on the allow-list) and another server (not on it).
INDEX = "packages.test"
ELSEWHERE = "elsewhere.test"
PROBE = "agents-egress-probe"


def built_image(client: docker.DockerClient, kind: str, cache: Path) -> str:
    """``AGENTS_TEST_<KIND>_IMAGE`` when set (an image of one's own, used as it is: the
    default tags may be shared, and one may carry a CA bundle), else the kind's default
    tag, built from the current inputs when it is not."""
    given = os.environ.get(f"AGENTS_TEST_{kind.upper()}_IMAGE")
    if given:
        client.images.get(given)  # ImageNotFound says which
        return given
    tag = KINDS[kind].tag
    ImageBuilder(client, cache_dir=cache, progress=lambda _line: None).build(
        kind=kind, offline_base=True, image=tag
    )
    return tag


@pytest.fixture(scope="module")
def outside(docker_client: docker.DockerClient) -> Iterator[Network]:
    """The proxy's way out, on a documentation range (made before the proxy)."""
    with package_index.outside_network(
        docker_client, f"agents-test-egress-out-{os.getpid()}"
    ) as network:
        yield network


@pytest.fixture(scope="module")
def egress(
    docker_client: docker.DockerClient,
    tmp_path_factory: pytest.TempPathFactory,
    outside: Network,
) -> Iterator[EgressConfig]:
    """A proxy of this test's own, on networks and a subnet pool of its own."""
    cache = tmp_path_factory.mktemp("image-cache")
    config = EgressConfig(
        proxy=f"agents-test-egress-{os.getpid()}",
        image=built_image(docker_client, "egress", cache),
        network=str(outside.name),
        subnets="10.214.0.0/16",
    )
    yield config
    found = EgressProxy(docker_client, config).find()
    if found is not None:
        found.remove(force=True)


@pytest.fixture(scope="module")
def token() -> str:
    """What the probe package holds: only the index this test built can serve it."""
    return secrets.token_hex(8)


@pytest.fixture(scope="module")
def indexes(
    docker_client: docker.DockerClient,
    outside: Network,
    sandbox_image: str,
    tmp_path_factory: pytest.TempPathFactory,
    token: str,
) -> Iterator[tuple[package_index.IndexServer, package_index.IndexServer]]:
    """The registry's stand-in and another server, both serving the probe package."""
    wheel = package_index.build_wheel(
        tmp_path_factory.mktemp("wheels"),
        PROBE,
        "1.0",
        {"agents_egress_probe": f"TOKEN = {token!r}\n"},
    )
    tree = package_index.simple_tree([wheel])
    with (
        package_index.serve(docker_client, sandbox_image, outside, (INDEX,), tree) as index,
        package_index.serve(docker_client, sandbox_image, outside, (ELSEWHERE,), tree) as other,
    ):
        yield index, other


@pytest.fixture(scope="module")
def sandbox_image(
    docker_client: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory
) -> str:
    return built_image(docker_client, "sandbox", tmp_path_factory.mktemp("image-cache"))


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"host service\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture(scope="module")
def host_service() -> Iterator[int]:
    """A service on every host address, as the host's Redis or /metrics would be."""
    server = http.server.ThreadingHTTPServer(("0.0.0.0", 0), _Hello)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def gateway(docker_client: docker.DockerClient) -> str:
    """The host's address on Docker's default bridge."""
    return bridge_gateway(docker_client)


def _curl(url: str, *extra: str) -> list[str]:
    return ["curl", "-sS", "-m", "8", "-o", "/dev/null", "-w", "%{http_code}", *extra, url]


def _pip_install(index: str, *extra: str) -> list[str]:
    return [
        "pip", "install", "--no-cache-dir", "--disable-pip-version-check", "--retries", "0",
        "--timeout", "8", "--index-url", f"http://{index}/simple", "--trusted-host", index,
        *extra, PROBE,
    ]  # fmt: skip


def test_an_ordinary_container_reaches_the_host_and_both_servers(
    docker_client: docker.DockerClient,
    sandbox_image: str,
    host_service: int,
    gateway: str,
    outside: Network,
    indexes: tuple[package_index.IndexServer, package_index.IndexServer],
) -> None:
    """The control: off the proxy, what setup must not reach is reachable."""
    script = (
        f'curl -sS -m 8 -o /dev/null -w "%{{http_code}} " http://{gateway}:{host_service}/; '
        f'curl -sS -m 8 -o /dev/null -w "%{{http_code}} " http://{INDEX}/simple/; '
        f'curl -sS -m 8 -o /dev/null -w "%{{http_code}}" http://{ELSEWHERE}/simple/{PROBE}/'
    )
    container = docker_client.containers.run(
        sandbox_image, ["sh", "-c", script], detach=True, network=outside.name
    )
    try:
        container.wait(timeout=60)
        out = container.logs(stdout=True, stderr=True).decode()
    finally:
        container.remove(force=True)
    # The host answers on the default bridge's gateway too (the sandbox test below
    # tries it there).
    assert out.split() == ["200", "200", "200"], out
    control = docker_client.containers.run(
        sandbox_image,
        ["curl", "-sS", "-m", "8", "-o", "/dev/null", "-w", "%{http_code}",
         f"http://{gateway}:{host_service}/"],
        detach=True,
        network_mode="bridge",
    )  # fmt: skip
    try:
        control.wait(timeout=60)
        assert control.logs(stdout=True).decode() == "200"
    finally:
        control.remove(force=True)


def test_setup_reaches_only_the_allow_list_through_the_proxy(
    docker_client: docker.DockerClient,
    egress: EgressConfig,
    sandbox_image: str,
    host_service: int,
    gateway: str,
    indexes: tuple[package_index.IndexServer, package_index.IndexServer],
    token: str,
) -> None:
    index, other = indexes
    config = SandboxConfig(
        image=sandbox_image, network=True, allow=(INDEX, "localhost", "example.com")
    )
    sandbox = DockerSandbox("egress-test", config, client=docker_client, egress=egress)
    with sandbox:
        proxy = sandbox.exec(["sh", "-c", 'printf %s "$HTTP_PROXY"']).stdout
        assert proxy.startswith("http://10.214.")
        # The registry's stand-in: pip installs from it through the proxy the sandbox's
        # environment names (as uid 1000, into the default virtualenv), and what got
        # installed is what this test's index served.
        installed = sandbox.exec(_pip_install(INDEX))
        assert installed.ok, installed.stdout + installed.stderr
        probe = sandbox.exec(["python", "-c", "import agents_egress_probe as p; print(p.TOKEN)"])
        assert probe.stdout.strip() == token, probe.stderr
        # Through a CONNECT tunnel too (port 443; the stand-in speaks plain HTTP there).
        tunnel = sandbox.exec(_curl(f"http://{INDEX}:443/simple/", "--proxytunnel"))
        assert tunnel.stdout == "200", tunnel.stderr

        # The other server, not on the list: the proxy refuses it (403), and never
        # resolves it; pip finds nothing there (the same index served it above).
        refused = sandbox.exec(_pip_install(ELSEWHERE, "--force-reinstall"))
        assert not refused.ok
        assert "(from versions: none)" in refused.stderr, refused.stdout + refused.stderr
        plain = sandbox.exec(_curl(f"http://{ELSEWHERE}/simple/"))
        assert plain.stdout == "403", plain.stderr
        connect = sandbox.exec(_curl(f"http://{ELSEWHERE}:443/simple/", "--proxytunnel"))
        assert not connect.ok
        assert "403" in connect.stdout + connect.stderr
        # Nor by its address, around the proxy or through it.
        for target in (f"http://{other.address}/simple/", f"http://{index.address}/simple/"):
            direct = sandbox.exec(_curl(target, "--noproxy", "*", "-m", "4"))
            assert direct.stdout == "000", (target, direct.stdout)
            proxied = sandbox.exec(_curl(target))
            assert proxied.stdout == "403", (target, proxied.stdout)

        # On the list, but loopback: refused whatever the list says.
        loop = sandbox.exec(_curl("http://localhost:3128/", "--proxy", proxy, "--noproxy", ""))
        assert loop.stdout == "403"

        # The host's service, the gateway and the metadata address: no way there,
        # neither around the proxy nor through it.
        for target in (f"http://{gateway}:{host_service}/", f"http://{METADATA}/"):
            direct = sandbox.exec(_curl(target, "--noproxy", "*", "-m", "4"))
            assert not direct.ok, target
            assert direct.stdout == "000", (target, direct.stdout)
            proxied = sandbox.exec(_curl(target))
            assert proxied.stdout == "403", (target, proxied.stdout)
        raw = sandbox.exec(
            [
                "python",
                "-c",
                "import socket,sys\n"
                "try:\n"
                f"    socket.create_connection(({gateway!r}, {host_service}), timeout=4)\n"
                "except OSError as e:\n"
                "    print('refused', e.__class__.__name__)\n"
                "else:\n"
                "    print('connected')\n",
            ]
        )
        assert raw.stdout.startswith("refused"), raw.stdout

        sandbox.set_network(False)  # setup is over: offline for good
        after = sandbox.exec(_curl(f"http://{INDEX}/simple/", "-m", "4"))
        assert after.stdout == "000"
        assert "HTTP_PROXY" not in sandbox.exec(["env"]).stdout
        report = sandbox.egress_report

    assert report is not None
    assert report.reached == [INDEX]
    assert ELSEWHERE in report.denied
    assert other.address in report.denied
    assert "localhost" in report.denied
    assert gateway in report.denied
    assert METADATA in report.denied
    assert report.summary().startswith("setup reached 1 host; denied ")
    # The sandbox's network went with it.
    leftovers = docker_client.networks.list(filters={"label": "agents.egress.network=1"})
    assert not [n for n in leftovers if (n.attrs.get("Labels") or {}).get(RUN_ID) == "egress-test"]


def test_a_sandbox_without_network_never_gets_one(
    docker_client: docker.DockerClient, egress: EgressConfig, sandbox_image: str
) -> None:
    config = SandboxConfig(image=sandbox_image, network=False, allow=(ALLOWED,))
    with DockerSandbox("egress-offline", config, client=docker_client, egress=egress) as sandbox:
        result = sandbox.exec(_curl(f"http://{RELEASE}", "-m", "4"))
        assert result.stdout == "000"
        assert sandbox.egress_report is None


def test_the_reaper_removes_setup_networks_a_dead_run_left(
    docker_client: docker.DockerClient, egress: EgressConfig
) -> None:
    proxy = EgressProxy(docker_client, egress)
    now = datetime.now(UTC)
    owner = Owner.current()
    expired = labels.sandbox_labels("egress-reap-old", owner, now - timedelta(hours=2), 60)
    live = labels.sandbox_labels("egress-reap-live", owner, now, 3600)
    old_net = proxy.open_network("egress-reap-old", expired)
    live_net = proxy.open_network("egress-reap-live", live)
    try:
        removed = Reaper(docker_client).prune_networks()
        assert old_net.name in removed
        assert live_net.name not in removed
        with pytest.raises(docker.errors.NotFound):
            docker_client.networks.get(old_net.id)
        assert docker_client.networks.get(live_net.id).name == live_net.name
    finally:
        proxy.release(live_net, None)
