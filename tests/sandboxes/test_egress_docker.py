"""Setup egress on a real engine, through the real Squid proxy.

The allowed destination is Debian's mirror (the one registry this machine's containers
reach); the host is stood in for by a server this test runs on all of the host's
addresses, which an ordinary container on Docker's default bridge does reach (checked
first, so that every "cannot reach" below could fail).
"""

from __future__ import annotations

import contextlib
import http.server
import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import docker
import docker.errors
import pytest

from sandboxes import labels
from sandboxes.config import EgressConfig, SandboxConfig
from sandboxes.docker_sandbox import DockerSandbox
from sandboxes.egress_proxy import EgressProxy
from sandboxes.image_builder import KINDS, ImageBuilder
from sandboxes.labels import RUN_ID
from sandboxes.owner import Owner
from sandboxes.reaper import Reaper

pytestmark = pytest.mark.docker

ALLOWED = "deb.debian.org"
RELEASE = f"{ALLOWED}/debian/dists/bookworm/Release"
METADATA = "169.254.169.254"


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
def egress(
    docker_client: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EgressConfig]:
    """A proxy of this test's own, on a network and a subnet pool of its own."""
    cache = tmp_path_factory.mktemp("image-cache")
    config = EgressConfig(
        proxy=f"agents-test-egress-{os.getpid()}",
        image=built_image(docker_client, "egress", cache),
        network=f"agents-test-egress-out-{os.getpid()}",
        subnets="10.214.0.0/16",
    )
    yield config
    proxy = EgressProxy(docker_client, config)
    found = proxy.find()
    if found is not None:
        found.remove(force=True)
    with contextlib.suppress(docker.errors.NotFound):
        docker_client.networks.get(config.network).remove()


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
    config = docker_client.networks.get("bridge").attrs["IPAM"]["Config"]
    return str(config[0]["Gateway"])


def _curl(url: str, *extra: str) -> list[str]:
    return ["curl", "-sS", "-m", "8", "-o", "/dev/null", "-w", "%{http_code}", *extra, url]


def test_an_ordinary_container_reaches_the_host_and_the_mirror(
    docker_client: docker.DockerClient, sandbox_image: str, host_service: int, gateway: str
) -> None:
    """The control: on the default bridge, what setup must not reach is reachable."""
    script = (
        f'curl -sS -m 8 -o /dev/null -w "%{{http_code}} " http://{gateway}:{host_service}/; '
        f'curl -sS -m 8 -o /dev/null -w "%{{http_code}}" http://{RELEASE}'
    )
    container = docker_client.containers.run(
        sandbox_image, ["sh", "-c", script], detach=True, network_mode="bridge"
    )
    try:
        container.wait(timeout=60)
        out = container.logs(stdout=True, stderr=True).decode()
    finally:
        container.remove(force=True)
    assert out.split() == ["200", "200"], out


def test_setup_reaches_only_the_allow_list_through_the_proxy(
    docker_client: docker.DockerClient,
    egress: EgressConfig,
    sandbox_image: str,
    host_service: int,
    gateway: str,
) -> None:
    config = SandboxConfig(
        image=sandbox_image, network=True, allow=(ALLOWED, "localhost", "example.com")
    )
    sandbox = DockerSandbox("egress-test", config, client=docker_client, egress=egress)
    with sandbox:
        proxy = sandbox.exec(["sh", "-c", 'printf %s "$HTTP_PROXY"']).stdout
        assert proxy.startswith("http://10.214.")
        # The allowed host, over plain HTTP and over HTTPS (CONNECT), through the proxy
        # the sandbox's environment names.
        plain = sandbox.exec(_curl(f"http://{RELEASE}"))
        assert plain.stdout == "200", plain.stderr
        tls = sandbox.exec(_curl(f"https://{RELEASE}"))
        # Through the tunnel (CONNECT): 200, or, behind a TLS-intercepting proxy whose CA
        # this image lacks, a certificate error (60), which is past the tunnel too.
        assert tls.stdout == "200" or tls.exit_code == 60, tls.stderr

        # A host not on the list: the proxy refuses it (403), and never resolves it.
        other = sandbox.exec(_curl("https://pypi.org/simple/"))
        assert not other.ok
        assert "403" in other.stdout + other.stderr

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
        after = sandbox.exec(_curl(f"http://{RELEASE}", "-m", "4"))
        assert after.stdout == "000"
        assert "HTTP_PROXY" not in sandbox.exec(["env"]).stdout
        report = sandbox.egress_report

    assert report is not None
    assert report.reached == [ALLOWED]
    assert "pypi.org" in report.denied
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
