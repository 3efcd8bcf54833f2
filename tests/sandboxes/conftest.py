"""Fixtures for the sandbox tests: a Docker client, the image, and small git repositories.

Docker tests skip with a reason when the engine or the image is missing; CI turns
those skips into failures (see tests/conftest.py).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest

from sandboxes.cache import RepoCache, WorkspaceArchive
from sandboxes.config import DEFAULT_IMAGE, SandboxConfig
from sandboxes.docker_sandbox import DockerSandbox
from sandboxes.local_sandbox import LocalSandbox
from sandboxes.protocol import Sandbox

GIT_ENV = {
    "GIT_AUTHOR_NAME": "test",
    "GIT_AUTHOR_EMAIL": "test@localhost",
    "GIT_COMMITTER_NAME": "test",
    "GIT_COMMITTER_EMAIL": "test@localhost",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
}


def git(repo: Path, *args: str) -> str:
    out = subprocess.run(
        ["git", "-C", str(repo), *args], env=GIT_ENV, check=True, capture_output=True, text=True
    )
    return out.stdout.strip()


def commit_all(repo: Path, message: str = "change") -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--allow-empty", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def make_repo(path: Path, files: dict[str, bytes | str] | None = None) -> str:
    """A git repository at ``path`` with ``files`` committed; returns the commit id."""
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    for name, content in (files or {"README.md": "hello\n"}).items():
        target = path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content.encode() if isinstance(content, str) else content)
    return commit_all(path, "initial")


SAMPLE_FILES: dict[str, bytes | str] = {
    "README.md": "# sample\n",
    "src/app.py": "def add(a, b):\n    return a + b\n",
    "src/old_name.py": "VALUE = 1\n" * 20,
    "docs/guide.txt": "line one\nline two\n",
    "bin/run.sh": "#!/bin/sh\necho run\n",
    "data/blob.bin": bytes(range(256)) * 4,
    "dir with space/file name.txt": "spaces\n",
    "ünïcödé/naïve.txt": "unicode\n",
    "to_delete.txt": "bye\n",
}


@pytest.fixture
def sample_repo(tmp_path: Path) -> tuple[Path, str]:
    repo = tmp_path / "origin"
    make_repo(repo, SAMPLE_FILES)
    (repo / "bin" / "run.sh").chmod(0o755)
    (repo / "link_to_app.py").symlink_to("src/app.py")
    return repo, commit_all(repo, "mode and link")


@pytest.fixture
def sample_workspace(tmp_path: Path, sample_repo: tuple[Path, str]) -> WorkspaceArchive:
    repo, commit = sample_repo
    cache = RepoCache(tmp_path / "cache")
    cache.mirror(str(repo))
    return cache.workspace(str(repo), commit)


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    try:
        client = docker.from_env()
    except docker.errors.DockerException as exc:
        pytest.skip(f"no Docker engine reachable: {exc}")
    try:
        client.ping()
        client.images.get(DEFAULT_IMAGE)
    except docker.errors.ImageNotFound:
        client.close()
        pytest.skip(f"{DEFAULT_IMAGE} is missing; run `agents sandbox build --offline-base`")
    except docker.errors.DockerException as exc:
        client.close()
        pytest.skip(f"Docker engine not answering: {exc}")
    yield client
    client.close()


class SandboxMaker:
    """Starts sandboxes of one backend for a test and closes them all afterwards."""

    def __init__(self, backend: str, request: pytest.FixtureRequest) -> None:
        self.backend = backend
        self._request = request
        self._opened: list[Sandbox] = []

    def __call__(
        self,
        workspace: WorkspaceArchive | None = None,
        config: SandboxConfig | None = None,
        run_id: str = "test",
    ) -> Sandbox:
        sandbox: Sandbox
        if self.backend == "docker":
            client = self._request.getfixturevalue("docker_client")
            sandbox = DockerSandbox(run_id, config, workspace=workspace, client=client)
        else:
            sandbox = LocalSandbox(run_id, config, workspace=workspace)
        self._opened.append(sandbox)
        sandbox.start()
        return sandbox

    def close_all(self) -> None:
        for sandbox in self._opened:
            sandbox.close()


@pytest.fixture(params=["local", pytest.param("docker", marks=pytest.mark.docker)])
def make_sandbox(request: pytest.FixtureRequest) -> Iterator[SandboxMaker]:
    """The same test on both backends: the protocol is what callers rely on."""
    maker = SandboxMaker(request.param, request)
    yield maker
    maker.close_all()
