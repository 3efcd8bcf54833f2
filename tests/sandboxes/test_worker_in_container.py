"""The sandbox code driven from inside a container that has only the Docker socket.

The worker container gets no bind mount but the socket: our packages and the host's
site-packages they need go in through the API (``put_archive``), the way a worker
image would carry them. It runs on the sandbox image (Debian's python3 is 3.11, like
ours) with no network at all, so everything it does goes through the socket.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import sysconfig
import tarfile
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest
from docker.models.containers import Container

from sandboxes.config import DEFAULT_IMAGE

pytestmark = [pytest.mark.docker, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
SOCKET = "/var/run/docker.sock"

FIND_DEPENDENCIES = """
import sys, sysconfig
import sandboxes.cache, sandboxes.docker_sandbox, sandboxes.factory, sandboxes.reaper
site = sysconfig.get_paths()["purelib"]
for module in list(sys.modules.values()):
    path = getattr(module, "__file__", None) or ""
    if path.startswith(site + "/"):
        print(path[len(site) + 1 :].split("/")[0])
"""

WORKER = r"""
import json, os, subprocess
from pathlib import Path

from sandboxes.cache import RepoCache
from sandboxes.docker_sandbox import DockerSandbox
from sandboxes.engine import connect
from sandboxes.reaper import Reaper

env = dict(os.environ, GIT_AUTHOR_NAME="w", GIT_AUTHOR_EMAIL="w@x",
           GIT_COMMITTER_NAME="w", GIT_COMMITTER_EMAIL="w@x")
origin = Path("/root/origin")
origin.mkdir()
subprocess.run(["git", "init", "-q", str(origin)], check=True, env=env)
(origin / "hello.txt").write_text("hello from the worker container\n")
subprocess.run(["git", "-C", str(origin), "add", "-A"], check=True, env=env)
subprocess.run(["git", "-C", str(origin), "commit", "-qm", "init"], check=True, env=env)

cache = RepoCache(Path("/root/cache"))
cache.mirror(str(origin))
workspace = cache.workspace(str(origin), "HEAD")
client = connect()
with DockerSandbox("in-container-1", workspace=workspace, client=client) as sandbox:
    seen = sandbox.exec("cat hello.txt").stdout
    sandbox.write_file("hello.txt", b"changed inside the sandbox\n")
    sandbox.write_file("new.bin", bytes(range(256)))
    patch = sandbox.export_patch().decode()
    owner = client.containers.get(sandbox.container_id).labels["agents.owner"]
    removed = [r.container_id for r in Reaper(client).reap()]
    mine = sandbox.container_id
client.close()
print(json.dumps({"seen": seen, "patch": patch, "owner": owner,
                  "reaped_mine": mine in removed, "container": mine}))
"""


def dependencies() -> list[Path]:
    """The site-packages entries our sandbox modules import, found by importing them."""
    found = subprocess.run(
        [sys.executable, "-c", FIND_DEPENDENCIES],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    site = Path(sysconfig.get_paths()["purelib"])
    skip = ("__editable__", "_distutils_hack")
    return sorted({site / name for name in found if not name.startswith(skip)})


def code_archive() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for entry in dependencies():
            tar.add(entry, arcname=f"opt/agents/site/{entry.name}", filter=_no_pycache)
        for package in ("sandboxes", "runs", "process"):
            tar.add(ROOT / package, arcname=f"opt/agents/src/{package}", filter=_no_pycache)
        script = WORKER.encode()
        info = tarfile.TarInfo("opt/agents/worker_check.py")
        info.size = len(script)
        tar.addfile(info, io.BytesIO(script))
    return buf.getvalue()


def _no_pycache(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
    return None if "__pycache__" in info.name else info


@pytest.fixture
def worker(docker_client: docker.DockerClient) -> Iterator[Container]:
    container = docker_client.containers.run(
        DEFAULT_IMAGE,
        ["sleep", "600"],
        user="0:0",
        detach=True,
        network_mode="none",
        volumes={SOCKET: {"bind": SOCKET, "mode": "rw"}},
        environment={"PYTHONPATH": "/opt/agents/site:/opt/agents/src", "HOME": "/root"},
        working_dir="/root",
    )
    try:
        assert container.put_archive("/", code_archive())
        yield container
    finally:
        container.remove(force=True)


def test_the_sandbox_works_from_a_container_with_only_the_socket(
    worker: Container, docker_client: docker.DockerClient
) -> None:
    binds = docker_client.api.inspect_container(worker.id)["HostConfig"]["Binds"]
    assert binds == [f"{SOCKET}:{SOCKET}:rw"]
    inside = worker.exec_run(["python3", "-c", "import sys; print(sys.version_info[:2])"])
    if inside.output.decode().strip() != str(sys.version_info[:2]):
        pytest.skip(f"the image's python3 is not {sys.version_info[:2]}; our wheels won't load")

    result = worker.exec_run(["python3", "/opt/agents/worker_check.py"], demux=True)

    out, err = result.output
    assert result.exit_code == 0, (err or b"").decode()
    report = json.loads(out)
    assert report["seen"] == "hello from the worker container\n"
    assert "+changed inside the sandbox" in report["patch"]
    assert "GIT binary patch" in report["patch"]
    worker_hostname = worker.exec_run("hostname").output.decode().strip()
    assert report["owner"].startswith(f"{worker_hostname}:")
    assert report["reaped_mine"] is False
    with pytest.raises(docker.errors.NotFound):
        docker_client.containers.get(report["container"])
