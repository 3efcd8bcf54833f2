"""Docker-only behaviour: lifetime, network by phase, failures and the client-side deadline."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest

from process.exceptions import CommandTimeout, SandboxError, SandboxGone, SandboxStartFailed
from sandboxes import docker_sandbox, labels
from sandboxes.cache import WorkspaceArchive
from sandboxes.config import EgressConfig, SandboxConfig
from sandboxes.docker_sandbox import DockerSandbox
from sandboxes.egress_proxy import EgressProxy
from tests.sandboxes.test_egress_docker import built_image

pytestmark = pytest.mark.docker


def wait_until_gone(client: docker.DockerClient, container_id: str, limit: float = 60) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            client.containers.get(container_id)
        except docker.errors.NotFound:
            return True
        time.sleep(0.2)
    return False


def test_a_container_removed_behind_our_back_is_gone(docker_client: docker.DockerClient) -> None:
    with DockerSandbox("gone-1", client=docker_client) as sandbox:
        assert sandbox.container_id is not None
        docker_client.containers.get(sandbox.container_id).remove(force=True, v=True)
        with pytest.raises(SandboxGone) as err:
            sandbox.exec("true")
        assert err.value.run_id == "gone-1"
        with pytest.raises(SandboxGone):
            sandbox.read_file("README.md")


@pytest.mark.slow
def test_the_lifetime_ends_the_container_without_anyone_watching(
    docker_client: docker.DockerClient,
) -> None:
    sandbox = DockerSandbox("lifetime-1", SandboxConfig(max_lifetime=2), client=docker_client)
    sandbox.start()
    assert sandbox.container_id is not None
    assert wait_until_gone(docker_client, sandbox.container_id)
    with pytest.raises(SandboxGone):
        sandbox.exec("true")
    sandbox.close()


@pytest.fixture
def own_egress(docker_client: docker.DockerClient, tmp_path: Path) -> Iterator[EgressConfig]:
    """An egress proxy and network of this test's own, removed afterwards: the
    worker's default names belong to a deployment that may share this engine."""
    name = f"agents-test-sandbox-net-{os.getpid()}"
    config = EgressConfig(
        proxy=name,
        image=built_image(docker_client, "egress", tmp_path / "image-cache"),
        network=name,
        subnets="10.219.0.0/16",
    )
    yield config
    found = EgressProxy(docker_client, config).find()
    if found is not None:
        found.remove(force=True)
    with contextlib.suppress(docker.errors.NotFound):
        docker_client.networks.get(name).remove()


def test_network_is_opt_in_and_can_be_dropped_after_setup(
    docker_client: docker.DockerClient, own_egress: EgressConfig
) -> None:
    def interfaces(sandbox: DockerSandbox) -> list[str]:
        return sandbox.exec("ls /sys/class/net").stdout.split()

    with DockerSandbox(
        "net-1", SandboxConfig(network=True), client=docker_client, egress=own_egress
    ) as sandbox:
        assert "eth0" in interfaces(sandbox)
        sandbox.set_network(False)
        assert interfaces(sandbox) == ["lo"]
        sandbox.set_network(True)
        assert len(interfaces(sandbox)) == 2  # lo and a fresh ethN
    with DockerSandbox("net-2", client=docker_client) as offline:
        with pytest.raises(SandboxError, match="without a network"):
            offline.set_network(True)
        offline.set_network(False)
        assert interfaces(offline) == ["lo"]


def test_a_missing_image_fails_to_start_clearly(docker_client: docker.DockerClient) -> None:
    sandbox = DockerSandbox(
        "noimage-1", SandboxConfig(image="agents-test-missing:nope"), client=docker_client
    )
    with pytest.raises(SandboxStartFailed, match="agents sandbox build") as err:
        sandbox.start()
    assert err.value.run_id == "noimage-1"
    # Only this run's containers: other tests' sandboxes come and go on the same engine.
    mine = {"label": f"{labels.RUN_ID}=noimage-1"}
    assert docker_client.containers.list(all=True, filters=mine, ignore_removed=True) == []


def test_a_stuck_sandbox_is_a_command_timeout_not_a_timed_out_result(
    docker_client: docker.DockerClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The container freezes while a command runs, its own timeout with it: the worker's
    wait is what ends the call. The pause comes once the command has started (it marks
    /tmp/started), never before ``exec_create``, which Docker refuses in a paused
    container; the command's 5 s timeout leaves the pause ample room."""
    monkeypatch.setattr(docker_sandbox, "WAIT_SLACK", 1.0)
    config = SandboxConfig(kill_grace=0.5)
    with DockerSandbox("stuck-1", config, client=docker_client) as sandbox:
        assert sandbox.container_id is not None
        container = docker_client.containers.get(sandbox.container_id)
        paused = threading.Event()

        def pause_once_started() -> None:
            for _ in range(1000):  # each look is a docker exec: bounded, not timed
                if container.exec_run(["test", "-e", "/tmp/started"]).exit_code == 0:
                    container.pause()
                    paused.set()
                    return

        pauser = threading.Thread(target=pause_once_started)
        pauser.start()
        try:
            with pytest.raises(CommandTimeout) as err:
                sandbox.exec("touch /tmp/started; sleep 100", timeout=5)
            assert err.value.run_id == "stuck-1"
            assert paused.is_set()
        finally:
            pauser.join()
            if paused.is_set():
                container.unpause()


def test_a_disk_workspace_works_too(
    docker_client: docker.DockerClient, sample_workspace: WorkspaceArchive
) -> None:
    config = SandboxConfig(workspace_size_mb=None)
    with DockerSandbox("disk-1", config, workspace=sample_workspace, client=docker_client) as sb:
        assert sb.exec("df --output=fstype /workspace | tail -1").stdout.strip() != "tmpfs"
        sb.write_file("new.txt", b"new\n")
        assert b"+++ b/new.txt" in sb.export_patch()


def test_no_shared_memory_by_default_and_bounded_on_request(
    docker_client: docker.DockerClient,
) -> None:
    with DockerSandbox("shm-1", client=docker_client) as sandbox:
        assert sandbox.exec("test -d /dev/shm").exit_code != 0
    with DockerSandbox("shm-2", SandboxConfig(shm_size_mb=8), client=docker_client) as sandbox:
        assert sandbox.exec("echo x > /dev/shm/small").ok
        fill = sandbox.exec("head -c 9M /dev/zero > /dev/shm/big")
        assert fill.exit_code != 0
        assert "No space left on device" in fill.stderr


def test_an_export_without_a_repository_is_refused(docker_client: docker.DockerClient) -> None:
    with (
        DockerSandbox("norepo-1", client=docker_client) as sandbox,
        pytest.raises(SandboxError, match="without a repository"),
    ):
        sandbox.export_patch()
