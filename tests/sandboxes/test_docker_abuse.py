"""Abuse inside one sandbox stays inside it: the host and a neighbour keep working."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable, Iterator

import docker
import pytest

from sandboxes.config import SandboxConfig
from sandboxes.docker_sandbox import DockerSandbox
from sandboxes.protocol import ExecResult

# serial: the neighbour's responsiveness is a timing figure, and other tests' load would
# be counted against the hog.
pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.serial]

LIMITS = SandboxConfig(
    memory_mb=512,
    pids=128,
    tmp_size_mb=16,
    home_size_mb=32,
    workspace_size_mb=64,
    kill_grace=1,
)


@pytest.fixture(scope="module")
def victim(docker_client: docker.DockerClient) -> Iterator[DockerSandbox]:
    with DockerSandbox("abuse-victim", LIMITS, client=docker_client) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def neighbour(docker_client: docker.DockerClient) -> Iterator[DockerSandbox]:
    with DockerSandbox("abuse-neighbour", LIMITS, client=docker_client) as sandbox:
        yield sandbox


def alongside(neighbour: DockerSandbox, abuse: Callable[[], ExecResult]) -> ExecResult:
    """Run ``abuse`` while checking, over and over, that the neighbour and the host work."""
    outcome: list[ExecResult] = []
    worker = threading.Thread(target=lambda: outcome.append(abuse()))
    worker.start()
    checks = 0
    while worker.is_alive() or checks == 0:
        assert neighbour.exec("echo alive", timeout=30).stdout == "alive\n"
        assert subprocess.run(["true"], check=False).returncode == 0
        checks += 1
    worker.join()
    return outcome[0]


def still_usable(sandbox: DockerSandbox) -> None:
    """The sandbox answers, and nothing is left of the abuse but the sandbox's own processes."""
    result = sandbox.exec("echo usable; ps -eo args --no-headers")
    assert result.ok, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "usable"
    # init, the lifetime sleep, this command's wrapper and watcher (maybe caught between
    # setsid and exec), ps itself, and zombies about to be reaped.
    ours = ("/sbin/docker-init", "sleep ", "/bin/sh -c", "sh -c", "setsid sh -c", "ps -eo", "[")
    leftovers = [line for line in lines[1:] if not line.startswith(ours)]
    assert leftovers == [], lines


def test_fork_bomb_is_held_by_the_pid_limit(
    victim: DockerSandbox, neighbour: DockerSandbox, docker_client: docker.DockerClient
) -> None:
    assert victim.container_id is not None
    peak: list[int] = []

    def bomb() -> ExecResult:
        return victim.exec(
            "python3 -c 'import os\nwhile True:\n    try: os.fork()\n    except OSError: pass'",
            timeout=8,
        )

    def sample_pids() -> None:
        time.sleep(3)
        stats = docker_client.api.stats(victim.container_id, stream=False, one_shot=True)
        peak.append(stats["pids_stats"]["current"])

    sampler = threading.Thread(target=sample_pids)
    sampler.start()
    result = alongside(neighbour, bomb)
    sampler.join()

    assert result.timed_out
    assert LIMITS.pids * 0.8 <= peak[0] <= LIMITS.pids  # it hit the limit and stopped there
    still_usable(victim)


def test_memory_hog_is_oom_killed(victim: DockerSandbox, neighbour: DockerSandbox) -> None:
    result = alongside(
        neighbour, lambda: victim.exec("python3 -c 'x = bytearray(2 * 1024**3)'", timeout=60)
    )
    assert result.oom_killed
    assert result.exit_code == 137
    assert not result.ok
    still_usable(victim)


#: Four processes that burn CPU until /tmp/stop appears, then end cleanly.
CPU_HOG = (
    "rm -f /tmp/stop; pids=''; for i in 1 2 3 4; do yes > /dev/null & pids=\"$pids $!\"; done; "
    "while [ ! -e /tmp/stop ]; do sleep 0.1; done; kill $pids; wait; echo stopped"
)


def test_cpu_hog_leaves_the_neighbour_responsive(
    victim: DockerSandbox, neighbour: DockerSandbox, docker_client: docker.DockerClient
) -> None:
    """The hog burns until the neighbour has answered three times, so it cannot end
    first: a starved neighbour meets its own 30 s timeout while the hog still runs."""
    assert victim.container_id is not None

    def throttled() -> int:
        stats = docker_client.api.stats(victim.container_id, stream=False, one_shot=True)
        return int(stats["cpu_stats"]["throttling_data"]["throttled_periods"])

    before = throttled()
    outcome: list[ExecResult] = []
    hog = threading.Thread(target=lambda: outcome.append(victim.exec(CPU_HOG, timeout=600)))
    hog.start()
    try:
        for _ in range(600):  # until the four burners run (bounded; each look is an exec)
            burners = victim.exec("ps -eo comm --no-headers").stdout.split().count("yes")
            if burners == 4:
                break
        assert burners == 4
        for _ in range(3):
            assert neighbour.exec("echo alive", timeout=30).stdout == "alive\n"
            assert subprocess.run(["true"], check=False).returncode == 0
            assert hog.is_alive()  # the neighbour answered while the hog burned
        assert throttled() > before  # the victim's CPU limit is what held the hog
    finally:
        victim.exec("touch /tmp/stop")
        hog.join()
    assert outcome[0].ok, outcome[0]
    assert outcome[0].stdout == "stopped\n"
    still_usable(victim)


def test_sleep_past_its_timeout_is_killed(victim: DockerSandbox, neighbour: DockerSandbox) -> None:
    result = alongside(neighbour, lambda: victim.exec("sleep 1000", timeout=2))
    assert result.timed_out
    assert result.exit_code == 124
    processes = victim.exec("ps -eo args --no-headers").stdout.splitlines()
    assert "sleep 1000" not in processes
    still_usable(victim)


def test_there_is_no_network(victim: DockerSandbox) -> None:
    interfaces = victim.exec("ls /sys/class/net").stdout.split()
    assert interfaces == ["lo"]
    gateway = "172.17.0.1"  # the default bridge's gateway on the engine's host
    for target in ("1.1.1.1", gateway):
        probe = victim.exec(
            f"python3 -c 'import socket; socket.create_connection((\"{target}\", 80), timeout=3)'"
        )
        assert probe.exit_code != 0
        assert "unreachable" in probe.stderr.lower()
    dns = victim.exec("getent hosts example.com")
    assert dns.exit_code != 0


def test_none_of_the_workers_environment_gets_in(
    docker_client: docker.DockerClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTS_ABUSE_CANARY", "canary-4f9d2c")
    with DockerSandbox("abuse-env", LIMITS, client=docker_client) as sandbox:
        inside = dict(line.split("=", 1) for line in sandbox.exec("env").stdout.splitlines())
    image_env = docker_client.images.get(LIMITS.image).attrs["Config"]["Env"]
    explained = dict(e.split("=", 1) for e in image_env)
    explained.update(HOME=LIMITS.home, LANG="C.UTF-8", PWD="/workspace")
    shell_and_engine = {"HOSTNAME", "SHLVL", "_", "AGENTS_EXEC"}

    assert "AGENTS_ABUSE_CANARY" not in inside
    assert "canary-4f9d2c" not in inside.values()
    unexplained = {
        name: value
        for name, value in inside.items()
        if name not in shell_and_engine and explained.get(name) != value
    }
    assert unexplained == {}


@pytest.mark.parametrize(
    "path",
    [
        "/etc/agents-test",
        "/usr/agents-test",
        "/usr/local/bin/agents-test",
        "/opt/agents/home/agents-test",
        "/var/tmp/agents-test",
        "/root/agents-test",
        "/agents-test",
        "/dev/agents-test",
        "/dev/shm/agents-test",
        "/proc/agents-test",
        "/sys/fs/cgroup/agents-test",
    ],
)
def test_writes_outside_the_scratch_areas_fail(victim: DockerSandbox, path: str) -> None:
    result = victim.exec(f"echo x > {path}")
    assert result.exit_code != 0, path


def test_scratch_areas_are_writable_and_bounded(victim: DockerSandbox) -> None:
    for directory, size_mb in (("/workspace", 64), ("/tmp", 16), (LIMITS.home, 32)):
        assert victim.exec(f"echo x > {directory}/small && rm {directory}/small").ok
        fill = victim.exec(f"head -c {size_mb + 1}M /dev/zero > {directory}/big")
        assert fill.exit_code != 0
        assert "No space left on device" in fill.stderr
        assert victim.exec(f"rm -f {directory}/big").ok
