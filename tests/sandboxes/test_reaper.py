from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import docker
import docker.errors
import fakeredis
import pytest

from sandboxes import labels
from sandboxes.config import DEFAULT_IMAGE
from sandboxes.docker_sandbox import DockerSandbox
from sandboxes.owner import Owner
from sandboxes.pool import WarmPool
from sandboxes.reaper import (
    REASON_EXPIRED,
    REASON_FINAL,
    REASON_OWNER_DEAD,
    REASON_POOL_IDLE,
    Reaper,
    ReaperThread,
    Removal,
)

# serial: the reaper judges every labelled container and volume on the engine, so
# other tests' sandboxes (a just-killed worker's, a left-behind volume) would be its too.
pytestmark = pytest.mark.serial

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2030, 1, 1, tzinfo=UTC)

CHILD = """
import sys, time
from sandboxes.docker_sandbox import DockerSandbox
boxes = [DockerSandbox(f"orphan-{n}") for n in range(3)]
for box in boxes:
    box.start()
print(" ".join(box.container_id for box in boxes), flush=True)
time.sleep(600)
"""


def container_labels(owner: Owner, expires: datetime, run_id: str = "r1") -> dict[str, str]:
    expires = expires.replace(microsecond=0)
    found = labels.sandbox_labels(run_id, owner, expires - timedelta(hours=1), 3600)
    assert labels.parse_time(found[labels.EXPIRES_AT]) == expires
    return found


def dead_owner() -> Owner:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    owner = Owner(Owner.current().host, child.pid, Owner.current().token.rpartition("/")[0] + "/1")
    child.wait()
    return owner


def exists(client: docker.DockerClient, container_id: str) -> bool:
    try:
        client.containers.get(container_id)
    except docker.errors.NotFound:
        return False
    return True


# -- deciding, without Docker -------------------------------------------------------


def test_a_live_owners_unexpired_container_stays() -> None:
    reaper = Reaper(client=None, clock=lambda: NOW)  # type: ignore[arg-type]
    assert reaper.reason(container_labels(Owner.current(), NOW + timedelta(seconds=1))) is None


def test_expired_dead_owner_and_final_run_are_reasons() -> None:
    reaper = Reaper(client=None, clock=lambda: NOW, is_final=lambda r: r == "done")  # type: ignore[arg-type]
    later = NOW + timedelta(hours=1)
    assert reaper.reason(container_labels(Owner.current(), NOW)) == REASON_EXPIRED
    assert reaper.reason(container_labels(dead_owner(), later)) == REASON_OWNER_DEAD
    assert reaper.reason(container_labels(Owner.current(), later, "done")) == REASON_FINAL
    assert reaper.reason(container_labels(Owner.current(), later, "open")) is None


def test_an_owner_on_another_host_is_judged_by_expiry_only() -> None:
    reaper = Reaper(client=None, clock=lambda: NOW)  # type: ignore[arg-type]
    elsewhere = Owner("another-host", 1, "x/y/1")
    assert reaper.reason(container_labels(elsewhere, NOW + timedelta(minutes=1))) is None
    assert reaper.reason(container_labels(elsewhere, NOW)) == REASON_EXPIRED


def test_containers_without_our_labels_are_never_judged() -> None:
    reaper = Reaper(client=None, is_final=lambda r: True)  # type: ignore[arg-type]
    assert reaper.reason({"com.example": "x"}) is None
    assert reaper.reason({labels.RUN_ID: "r", labels.EXPIRES_AT: "garbage"}) == REASON_FINAL


def test_an_idle_pool_container_is_judged_by_its_own_store_only() -> None:
    """A pool's claims are in its store's Redis: to another store's reaper a claimed
    container looks idle. It is left to its own store; expiry still holds for all."""
    pool = WarmPool(client=None, connection=fakeredis.FakeRedis())  # type: ignore[arg-type]
    reaper = Reaper(client=None, store="mine", pool=pool)  # type: ignore[arg-type]
    now = datetime.now(UTC)

    def pool_labels(store: str, created: datetime, expires: datetime) -> dict[str, str]:
        return {
            labels.POOL: "p1",
            labels.RUN_ID: "",
            labels.STORE: store,
            labels.CREATED_AT: created.isoformat(timespec="seconds"),
            labels.EXPIRES_AT: expires.isoformat(timespec="seconds"),
        }

    long_idle = now - timedelta(seconds=pool.idle_seconds + 60)
    later = now + timedelta(hours=1)
    assert reaper.reason(pool_labels("mine", long_idle, later), "c1") == REASON_POOL_IDLE
    assert reaper.reason(pool_labels("theirs", long_idle, later), "c2") is None
    assert reaper.reason(pool_labels("mine", now, later), "c3") is None
    expired = pool_labels("theirs", long_idle, now - timedelta(seconds=1))
    assert reaper.reason(expired, "c4") == REASON_EXPIRED


def test_the_periodic_thread_keeps_going_after_a_failure() -> None:
    calls: list[int] = []
    twice = threading.Event()

    class Flaky(Reaper):
        def reap(self) -> list[Removal]:
            calls.append(1)
            if len(calls) >= 2:
                twice.set()
            raise RuntimeError("Docker hiccup")

    thread = ReaperThread(Flaky(client=None), interval=0.05)  # type: ignore[arg-type]
    thread.start()
    assert twice.wait(10)
    thread.stop(timeout=10)
    count = len(calls)
    assert not thread._thread.is_alive()
    assert len(calls) == count


# -- on a real engine ---------------------------------------------------------------


@pytest.fixture
def live_sibling(docker_client: docker.DockerClient) -> Iterator[DockerSandbox]:
    with DockerSandbox("reaper-sibling", client=docker_client) as sandbox:
        yield sandbox


@pytest.mark.docker
@pytest.mark.slow
def test_sandboxes_of_a_killed_worker_are_reaped_and_a_live_one_is_not(
    docker_client: docker.DockerClient, live_sibling: DockerSandbox
) -> None:
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    orphans = child.stdout.readline().split()
    child.stdout.close()
    assert len(orphans) == 3
    assert all(exists(docker_client, c) for c in orphans)

    child.send_signal(signal.SIGKILL)
    child.wait()
    removed = Reaper(docker_client).reap()

    ours = {r.container_id: r for r in removed if r.container_id in orphans}
    assert set(ours) == set(orphans)
    assert {r.reason for r in ours.values()} == {REASON_OWNER_DEAD}
    assert {r.run_id for r in ours.values()} == {"orphan-0", "orphan-1", "orphan-2"}
    assert not any(exists(docker_client, c) for c in orphans)
    assert live_sibling.container_id is not None
    assert exists(docker_client, live_sibling.container_id)
    assert live_sibling.exec("echo still here").stdout == "still here\n"


@pytest.mark.docker
def test_expired_and_final_containers_are_reaped(
    docker_client: docker.DockerClient, live_sibling: DockerSandbox
) -> None:
    now = datetime.now(UTC)
    expired = docker_client.containers.create(
        DEFAULT_IMAGE, ["true"], labels=container_labels(Owner.current(), now, "reaper-expired")
    )
    final = docker_client.containers.create(
        DEFAULT_IMAGE,
        ["true"],
        labels=container_labels(Owner.current(), now + timedelta(hours=1), "reaper-final"),
    )
    try:
        removed = Reaper(docker_client, is_final=lambda r: r == "reaper-final").reap()
        reasons = {r.container_id: r.reason for r in removed}
        assert reasons.get(str(expired.id)) == REASON_EXPIRED
        assert reasons.get(str(final.id)) == REASON_FINAL
        assert live_sibling.container_id not in reasons
    finally:
        for container in (expired, final):
            if exists(docker_client, str(container.id)):
                container.remove(force=True)


@pytest.mark.docker
def test_the_verdict_is_taken_again_at_the_moment_of_removal(
    docker_client: docker.DockerClient,
) -> None:
    """A candidate from the list that is no longer due when its turn comes is left alone."""
    container = docker_client.containers.create(
        DEFAULT_IMAGE,
        ["true"],
        labels=container_labels(Owner.current(), datetime.now(UTC) + timedelta(hours=1), "flip"),
    )
    answers = iter([True, False])  # final when listed, no longer final when removed

    def is_final(run_id: str) -> bool | None:
        return next(answers) if run_id == "flip" else None

    try:
        removed = Reaper(docker_client, is_final=is_final).reap()
        assert str(container.id) not in {r.container_id for r in removed}
        assert exists(docker_client, str(container.id))
    finally:
        container.remove(force=True)


@pytest.mark.docker
def test_workspace_volumes_left_behind_are_pruned_and_used_ones_kept(
    docker_client: docker.DockerClient, live_sibling: DockerSandbox
) -> None:
    def volumes_of(container_id: str) -> list[str]:
        mounts = docker_client.api.inspect_container(container_id)["Mounts"]
        return [m["Name"] for m in mounts if m["Type"] == "volume"]

    assert live_sibling.container_id is not None
    in_use = volumes_of(live_sibling.container_id)
    with DockerSandbox("volume-left-behind", client=docker_client) as sandbox:
        assert sandbox.container_id is not None
        left_behind = volumes_of(sandbox.container_id)
        docker_client.containers.get(sandbox.container_id).remove(force=True)  # no -v
    assert docker_client.volumes.get(left_behind[0]).attrs["Labels"] == {
        labels.RUN_ID: "volume-left-behind"
    }

    pruned = Reaper(docker_client).prune_volumes()

    assert left_behind[0] in pruned
    assert not set(in_use) & set(pruned)
    assert docker_client.volumes.get(in_use[0]) is not None


def test_the_store_only_speaks_for_its_own_runs() -> None:
    from datetime import UTC, datetime

    from sandboxes import labels as sandbox_labels
    from sandboxes.owner import Owner
    from sandboxes.reaper import REASON_FINAL, Reaper

    now = datetime.now(UTC)
    ours = sandbox_labels.sandbox_labels("7", Owner.current(), now, 3600, "redis:6379/0/agents")
    theirs = sandbox_labels.sandbox_labels("7", Owner.current(), now, 3600, "other/0/agents-cli")
    reaper = Reaper(None, is_final=lambda run_id: run_id == "7", store="redis:6379/0/agents")  # type: ignore[arg-type]
    assert reaper.reason(ours) == REASON_FINAL
    assert reaper.reason(theirs) is None
