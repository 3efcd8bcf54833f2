"""A local PEP 503 package index on the egress proxy's way out, standing in for a registry.

The proxy refuses private, loopback, link-local and metadata addresses whatever the
allow-list says, and Docker gives its networks private ranges. So the tests give the
proxy's outside network a /28 of a documentation range (RFC 5737: 198.51.100.0/24,
203.0.113.0/24), which is neither private nor routed anywhere: an index container
there sits where a registry would, at an address the proxy's rules let through, and
the proxy finds it by name through Docker's DNS. Nothing in the product changes for
it; the refusal rules stay what they are.

The index is ``python3 -m http.server`` in a container of the sandbox image, serving
``simple/<project>/`` pages (with sha256 fragments) and the files they link to, on
ports 80 and 443 (plain HTTP on both: a CONNECT through the proxy to port 443 then
carries an HTTP request, so a tunnel can be tested without a certificate).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import html
import io
import ipaddress
import random
import re
import tarfile
import time
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors
from docker.models.containers import Container
from docker.models.networks import Network
from docker.types import IPAMConfig, IPAMPool

from sandboxes.egress_proxy import remove_network

#: RFC 5737's documentation ranges: not private, not routed.
DOCUMENTATION_RANGES = ("198.51.100.0/24", "203.0.113.0/24")
SERVE_ROOT = "/srv/index"
LABEL = "agents.test.package-index"


def normalize(project: str) -> str:
    """PEP 503's normalized project name."""
    return re.sub(r"[-_.]+", "-", project).lower()


def build_wheel(directory: Path, project: str, version: str, modules: dict[str, str]) -> Path:
    """A pure-Python wheel of ``modules`` (name to source), written into ``directory``."""
    dist = re.sub(r"[-_.]+", "_", project)
    info = f"{dist}-{version}.dist-info"
    files = {
        **{f"{name}.py": source for name, source in modules.items()},
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {project}\nVersion: {version}\n",
        f"{info}/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: agents-tests\nRoot-Is-Purelib: true\n"
            "Tag: py3-none-any\n"
        ),
    }
    record = []
    for name, text in files.items():
        data = text.encode()
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = "\n".join(record) + "\n"
    path = directory / f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return path


def _project_of(filename: str) -> str:
    """The project a wheel or sdist file belongs to (its name up to the version)."""
    if filename.endswith(".whl"):
        return normalize(filename.split("-")[0])
    stem = re.sub(r"\.(tar\.gz|zip)$", "", filename)
    return normalize(stem.rsplit("-", 1)[0])


def simple_tree(files: Iterable[Path], files_host: str | None = None) -> dict[str, bytes]:
    """The served tree: ``simple/`` pages for ``files`` and the files under
    ``packages/``. Links are absolute to ``files_host`` when given (as PyPI's point at
    its file host), relative otherwise."""
    tree: dict[str, bytes] = {}
    projects: dict[str, list[str]] = {}
    for path in files:
        data = path.read_bytes()
        tree[f"packages/{path.name}"] = data
        base = f"http://{files_host}/packages" if files_host else "../../packages"
        href = f"{base}/{path.name}#sha256={hashlib.sha256(data).hexdigest()}"
        link = f'<a href="{html.escape(href)}">{html.escape(path.name)}</a><br>'
        projects.setdefault(_project_of(path.name), []).append(link)
    for project, links in projects.items():
        page = "<!DOCTYPE html><html><body>" + "".join(links) + "</body></html>\n"
        tree[f"simple/{project}/index.html"] = page.encode()
    root = "".join(f'<a href="{p}/">{p}</a><br>' for p in sorted(projects))
    tree["simple/index.html"] = f"<!DOCTYPE html><html><body>{root}</body></html>\n".encode()
    return tree


def _archive(tree: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in sorted(tree.items()):
            member = tarfile.TarInfo(f"{SERVE_ROOT.lstrip('/')}/{name}")
            member.size = len(data)
            member.mode = 0o644
            tar.addfile(member, io.BytesIO(data))
    return buffer.getvalue()


@contextlib.contextmanager
def outside_network(client: docker.DockerClient, name: str) -> Iterator[Network]:
    """A bridge network on a free /28 of a documentation range, for the proxy to reach
    out from (create it before the proxy, so the host's address on it is among the
    proxy's denied ones); removed afterwards with whatever is still on it."""
    taken = [
        ipaddress.ip_network(pool["Subnet"], strict=False)
        for network in client.api.networks()
        for pool in (network.get("IPAM") or {}).get("Config") or []
        if pool.get("Subnet")
    ]
    candidates = [
        subnet
        for block in DOCUMENTATION_RANGES
        for subnet in ipaddress.IPv4Network(block).subnets(new_prefix=28)
    ]
    random.shuffle(candidates)
    network = None
    for subnet in candidates:
        if any(subnet.overlaps(other) for other in taken):
            continue
        try:
            network = client.networks.create(
                name,
                driver="bridge",
                ipam=IPAMConfig(pool_configs=[IPAMPool(subnet=str(subnet))]),
                labels={LABEL: "network"},
                check_duplicate=True,
            )
            break
        except docker.errors.APIError as exc:
            if "overlap" not in str(exc).lower():
                raise
    if network is None:
        raise RuntimeError(f"no free /28 left in {DOCUMENTATION_RANGES} for {name}")
    try:
        yield network
    finally:
        remove_network(client, network)


@dataclass(frozen=True)
class IndexServer:
    """One running index: its container, its names and its address."""

    container: Container
    names: tuple[str, ...]
    address: str

    @property
    def url(self) -> str:
        return f"http://{self.names[0]}/simple"


@contextlib.contextmanager
def serve(
    client: docker.DockerClient,
    image: str,
    network: Network,
    names: tuple[str, ...],
    tree: dict[str, bytes],
) -> Iterator[IndexServer]:
    """``tree`` served over HTTP on ports 80 and 443 by a container on ``network``,
    found there under ``names``; removed afterwards."""
    script = (
        f"python3 -m http.server 443 --directory {SERVE_ROOT} & "
        f"exec python3 -m http.server 80 --directory {SERVE_ROOT}"
    )
    network_name = str(network.name)
    container = client.containers.create(
        image,
        ["sh", "-c", script],
        name=f"{network_name}-{normalize(names[0])}",
        user="0",
        labels={LABEL: "server"},
        network=network_name,
        networking_config={
            network_name: client.api.create_endpoint_config(aliases=list(names)),
        },
        cap_drop=["ALL"],
        cap_add=["NET_BIND_SERVICE"],
        security_opt=["no-new-privileges:true"],
        mem_limit="256m",
    )
    try:
        container.put_archive("/", _archive(tree))
        container.start()
        _wait_serving(container)
        container.reload()
        address = container.attrs["NetworkSettings"]["Networks"][network_name]["IPAddress"]
        yield IndexServer(container, names, str(address))
    finally:
        container.remove(force=True)


def _wait_serving(container: Container, limit: float = 60.0) -> None:
    probe = (
        "import urllib.request\n"
        "for port in (80, 443):\n"
        "    urllib.request.urlopen(f'http://127.0.0.1:{port}/', timeout=2).read()\n"
    )
    deadline = time.monotonic() + limit
    while True:
        result = container.exec_run(["python3", "-c", probe])
        if result.exit_code == 0:
            return
        container.reload()
        if container.status != "running" or time.monotonic() > deadline:
            logs = container.logs().decode(errors="replace")[-2000:]
            raise RuntimeError(f"the index server never served: {logs}")
        time.sleep(0.2)


def _hash1(files: dict[str, bytes]) -> str:
    """Go's ``dirhash.Hash1`` over ``files`` (name to content), as go.sum holds it."""
    summary = "".join(
        f"{hashlib.sha256(files[name]).hexdigest()}  {name}\n" for name in sorted(files)
    )
    return "h1:" + base64.b64encode(hashlib.sha256(summary.encode()).digest()).decode()


def go_module(path: str, version: str, files: dict[str, str]) -> tuple[dict[str, bytes], str]:
    """A Go module proxy's tree for one module version (GOPROXY protocol: ``@v/list``,
    ``.info``, ``.mod``, ``.zip``; ``path`` in lower case, so no escaping) and the
    go.sum lines a module requiring it needs. ``files`` must hold its go.mod."""
    prefix = f"{path}@{version}/"
    contents = {f"{prefix}{name}": text.encode() for name, text in files.items()}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in sorted(contents.items()):
            archive.writestr(name, data)
    go_mod = files["go.mod"].encode()
    base = f"{path}/@v/{version}"
    tree = {
        f"{path}/@v/list": f"{version}\n".encode(),
        f"{base}.info": f'{{"Version":"{version}","Time":"2024-01-01T00:00:00Z"}}'.encode(),
        f"{base}.mod": go_mod,
        f"{base}.zip": buffer.getvalue(),
    }
    go_sum = (
        f"{path} {version} {_hash1(contents)}\n"
        f"{path} {version}/go.mod {_hash1({'go.mod': go_mod})}\n"
    )
    return tree, go_sum
