"""Every hardening default, read back from `docker inspect` and from inside the container."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from datetime import datetime, timedelta

import docker
import pytest

from sandboxes import labels
from sandboxes.config import SandboxConfig
from sandboxes.docker_sandbox import DockerSandbox
from sandboxes.owner import Owner

pytestmark = pytest.mark.docker

CONFIG = SandboxConfig(
    memory_mb=1024, cpus=0.5, pids=200, tmp_size_mb=64, workspace_size_mb=256, max_lifetime=900
)


@pytest.fixture(scope="module")
def hardened(docker_client: docker.DockerClient) -> Iterator[DockerSandbox]:
    with DockerSandbox("hardening-1", CONFIG, client=docker_client) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def inspect(hardened: DockerSandbox, docker_client: docker.DockerClient) -> dict[str, object]:
    assert hardened.container_id is not None
    attrs: dict[str, object] = docker_client.api.inspect_container(hardened.container_id)
    return attrs


def host_config(inspect: dict[str, object]) -> dict[str, object]:
    value = inspect["HostConfig"]
    assert isinstance(value, dict)
    return value


def test_no_network(inspect: dict[str, object]) -> None:
    assert host_config(inspect)["NetworkMode"] == "none"


def test_all_capabilities_dropped_and_no_new_privileges(inspect: dict[str, object]) -> None:
    assert host_config(inspect)["CapDrop"] == ["ALL"]
    assert not host_config(inspect)["CapAdd"]
    assert "no-new-privileges:true" in host_config(inspect)["SecurityOpt"]  # type: ignore[operator]
    assert host_config(inspect)["Privileged"] is False


def test_read_only_root_with_limited_tmp_and_a_workspace_volume(inspect: dict[str, object]) -> None:
    hc = host_config(inspect)
    assert hc["ReadonlyRootfs"] is True
    assert "size=64m" in hc["Tmpfs"]["/tmp"]  # type: ignore[index]
    assert not hc["Binds"]  # no host bind mounts
    mounts = inspect["Mounts"]
    assert isinstance(mounts, list)
    assert [(m["Type"], m["Destination"], m["RW"]) for m in mounts] == [
        ("volume", "/workspace", True)
    ]


def test_non_root_user(inspect: dict[str, object]) -> None:
    assert inspect["Config"]["User"] == "1000:1000"  # type: ignore[index]


def test_memory_cpu_and_pid_limits(inspect: dict[str, object]) -> None:
    hc = host_config(inspect)
    assert hc["Memory"] == 1024 * 1024 * 1024
    assert hc["MemorySwap"] == hc["Memory"]  # no swap on top
    assert hc["NanoCpus"] == 500_000_000
    assert hc["PidsLimit"] == 200


def test_init_reaps_zombies_and_the_lifetime_is_built_in(inspect: dict[str, object]) -> None:
    hc = host_config(inspect)
    assert hc["Init"] is True
    assert hc["AutoRemove"] is True
    assert inspect["Config"]["Cmd"] == ["sleep", "900"]  # type: ignore[index]


def test_labels_say_whose_and_until_when(inspect: dict[str, object]) -> None:
    found = inspect["Config"]["Labels"]  # type: ignore[index]
    assert found[labels.RUN_ID] == "hardening-1"
    assert found[labels.OWNER] == f"{socket.gethostname()}:{os.getpid()}"
    assert found[labels.OWNER_PROCESS] == Owner.current().token
    created = datetime.fromisoformat(found[labels.CREATED_AT])
    expires = datetime.fromisoformat(found[labels.EXPIRES_AT])
    assert expires - created == timedelta(seconds=900)
    assert created.tzinfo is not None


def test_environment_is_the_images_plus_ours_and_nothing_else(
    inspect: dict[str, object], docker_client: docker.DockerClient
) -> None:
    image_env = docker_client.images.get(CONFIG.image).attrs["Config"]["Env"]
    expected = dict(e.split("=", 1) for e in image_env)
    expected.update(HOME=CONFIG.home, LANG="C.UTF-8")  # PATH is the image's
    env = dict(e.split("=", 1) for e in inspect["Config"]["Env"])  # type: ignore[index]
    assert env == expected


def test_inside_the_process_has_no_privileges(hardened: DockerSandbox) -> None:
    status = hardened.exec("id -u; id -g; grep -E '^(CapEff|CapBnd|NoNewPrivs):' /proc/self/status")
    lines = status.stdout.split()
    assert lines[:2] == ["1000", "1000"]
    assert dict(zip(lines[2::2], lines[3::2], strict=True)) == {
        "CapBnd:": "0000000000000000",
        "CapEff:": "0000000000000000",
        "NoNewPrivs:": "1",
    }
    init = hardened.exec("cat /proc/1/cmdline | tr '\\0' ' '")
    assert init.stdout.startswith("/sbin/docker-init")


def test_the_workspace_belongs_to_the_sandbox_user(hardened: DockerSandbox) -> None:
    result = hardened.exec("stat -c '%u %a' /workspace; df -m /workspace | tail -1")
    owner, size = result.stdout.splitlines()
    assert owner == "1000 755"
    assert size.split()[0] == "tmpfs"
    assert int(size.split()[1]) == 256
