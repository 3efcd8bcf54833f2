from __future__ import annotations

from pathlib import Path

import docker
import pytest

from process.exceptions import SandboxStartFailed
from sandboxes.docker_sandbox import DockerSandbox
from sandboxes.factory import create_sandbox, docker_configured
from sandboxes.local_sandbox import LocalSandbox


def test_configured_means_docker_host_or_a_socket(tmp_path: Path) -> None:
    socket = tmp_path / "docker.sock"
    assert not docker_configured({}, socket)
    assert docker_configured({"DOCKER_HOST": "tcp://example.invalid:2376"}, socket)
    socket.touch()
    assert docker_configured({}, socket)


def test_auto_never_falls_back_to_local_when_docker_is_configured_but_broken(
    tmp_path: Path,
) -> None:
    broken = {"DOCKER_HOST": f"unix://{tmp_path}/nothing-listens-here.sock"}
    with pytest.raises(SandboxStartFailed, match=r"configured .* but not working") as err:
        create_sandbox("r1", backend="auto", environ=broken, socket=tmp_path / "none")
    assert err.value.run_id == "r1"
    assert "explicitly" in str(err.value)


def test_auto_uses_local_only_without_any_docker(tmp_path: Path) -> None:
    sandbox = create_sandbox("r2", backend="auto", environ={}, socket=tmp_path / "none")
    assert isinstance(sandbox, LocalSandbox)


def test_explicit_docker_with_a_broken_engine_fails_to_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/nothing-listens-here.sock")
    sandbox = create_sandbox("r3", backend="docker")
    assert isinstance(sandbox, DockerSandbox)
    with pytest.raises(SandboxStartFailed, match="not reachable"):
        sandbox.start()
    sandbox.close()


def test_explicit_local_is_local(tmp_path: Path) -> None:
    sandbox = create_sandbox("r4", backend="local", environ={"DOCKER_HOST": "unix:///x"})
    assert isinstance(sandbox, LocalSandbox)


@pytest.mark.docker
def test_auto_with_a_working_engine_is_docker(docker_client: docker.DockerClient) -> None:
    assert isinstance(create_sandbox("r5", backend="auto"), DockerSandbox)
