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
carries an HTTP request, so a tunnel can be tested without a certificate). The same
server stands in for the Go module proxy (:func:`go_module`) and the npm registry
(:func:`npm_registry`), with the trees their clients ask for.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import html
import io
import ipaddress
import json
import os
import random
import re
import shutil
import subprocess
import tarfile
import time
import urllib.parse
import urllib.request
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
    # http.server, with a listen backlog for a client as eager as npm (its default of
    # 5 drops connections that a proxy then waits minutes on).
    serve_on = (
        "import functools, http.server as h, sys\n"
        "h.ThreadingHTTPServer.request_queue_size = 256\n"
        f"handler = functools.partial(h.SimpleHTTPRequestHandler, directory={SERVE_ROOT!r})\n"
        "h.ThreadingHTTPServer(('', int(sys.argv[1])), handler).serve_forever()\n"
    )
    script = 'python3 -c "$0" 443 & exec python3 -c "$0" 80'
    network_name = str(network.name)
    container = client.containers.create(
        image,
        ["sh", "-c", script, serve_on],
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


#: Where the npm stand-in's inputs are kept between sessions: the lock files the host's
#: npm resolved and the real tarballs they name (a few MB; checked against the lock's
#: integrity on every use).
NPM_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "agents-tests/npm"
NPM_REGISTRY = "https://registry.npmjs.org"


#: How the lock is resolved: a change here makes new cache entries.
_NPM_LOCK_FLAGS = (
    "--package-lock-only", "--ignore-scripts", "--no-audit", "--no-fund",
    # No `resolved` addresses: npm ci then asks the registry it is given for each
    # package's metadata, which is what the stand-in serves (see npm_registry).
    "--omit-lockfile-registry-resolved",
)  # fmt: skip


def _write_atomically(path: Path, data: bytes) -> None:
    """Two suites sharing the cache never see each other's half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.part")
    partial.write_bytes(data)
    os.replace(partial, path)


def npm_lock(package_json: str, before: str, cache: Path = NPM_CACHE) -> str:
    """The package-lock.json the host's npm resolves for ``package_json`` from versions
    published before ``before`` (so the same every day), kept in ``cache``. The host's
    own npm configuration is left out (an empty user config), so it cannot change it."""
    salt = " ".join(_NPM_LOCK_FLAGS)
    key = hashlib.sha256(f"{salt}\n{before}\n{package_json}".encode()).hexdigest()[:16]
    kept = cache / "locks" / f"{key}.json"
    if kept.exists():
        return kept.read_text()
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("the npm stand-in needs the host's npm to resolve a lock file")
    work = cache / "locks" / f"{key}.{os.getpid()}.work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        (work / "package.json").write_text(package_json)
        (work / "empty-npmrc").write_text("")
        subprocess.run(
            [npm, "install", *_NPM_LOCK_FLAGS, f"--before={before}",
             f"--registry={NPM_REGISTRY}/", f"--userconfig={work / 'empty-npmrc'}"],
            cwd=work, check=True, capture_output=True, timeout=300,
        )  # fmt: skip
        lock = (work / "package-lock.json").read_text()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if '"resolved"' in lock:
        raise RuntimeError("npm wrote resolved addresses into the lock; the stand-in serves none")
    _write_atomically(kept, lock.encode())
    return lock


def _locked_packages(lock: str) -> list[tuple[str, str, str]]:
    """(name, version, integrity) of every package a lock file installs from a registry."""
    found = set()
    for path, entry in json.loads(lock)["packages"].items():
        if not path or entry.get("link") or entry.get("inBundle") or "integrity" not in entry:
            continue
        name = entry.get("name") or path.rpartition("node_modules/")[2]
        found.add((name, entry["version"], entry["integrity"]))
    return sorted(found)


def _npm_tarball(name: str, version: str, integrity: str, cache: Path) -> bytes:
    """The registry's tarball of ``name@version``, fetched once and checked every time."""
    algorithm, _, digest = integrity.partition("-")
    kept = cache / "tarballs" / f"{hashlib.sha256(integrity.encode()).hexdigest()[:32]}.tgz"
    if kept.exists():
        data = kept.read_bytes()
    else:
        base = name.rpartition("/")[2]
        url = f"{NPM_REGISTRY}/{name}/-/{base}-{version}.tgz"
        with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 - fixed https
            data = response.read()
    if base64.b64encode(hashlib.new(algorithm, data).digest()).decode() != digest:
        kept.unlink(missing_ok=True)
        raise RuntimeError(f"{name}@{version}: the tarball does not match the lock's integrity")
    if not kept.exists():
        _write_atomically(kept, data)
    return data


def npm_registry(lock: str, host: str, cache: Path = NPM_CACHE) -> dict[str, bytes]:
    """An npm registry's tree for what ``lock`` installs: a packument per package (the
    ``dist`` of each locked version, pointing at ``http://host/-/tarballs/…``) and the
    real tarballs. ``npm ci`` with a lock that records no ``resolved`` address (npm's
    ``omit-lockfile-registry-resolved``) asks for exactly these.

    A packument sits at the package's name (``@scope/name`` is a file in ``@scope/``),
    so the tarballs live apart from the names, where no name can reach."""
    versions: dict[str, dict[str, object]] = {}
    tree: dict[str, bytes] = {}
    for name, version, integrity in _locked_packages(lock):
        flat = urllib.parse.quote(f"{name}-{version}.tgz", safe="")
        tree[f"-/tarballs/{flat}"] = _npm_tarball(name, version, integrity, cache)
        shasum = hashlib.sha1(tree[f"-/tarballs/{flat}"]).hexdigest()  # noqa: S324 - npm's field
        versions.setdefault(name, {})[version] = {
            "name": name,
            "version": version,
            "dist": {
                "tarball": f"http://{host}/-/tarballs/{urllib.parse.quote(flat)}",
                "integrity": integrity,
                "shasum": shasum,
            },
        }
    for name, by_version in versions.items():
        latest = max(by_version, key=lambda v: [int(p) for p in re.findall(r"\d+", v)[:3]])
        packument = {"name": name, "dist-tags": {"latest": latest}, "versions": by_version}
        tree[name] = json.dumps(packument).encode()
    return tree
