"""Restart dockerd in the middle of a run. The engine is a private dockerd (own socket,
data root, exec root and containerd; no bridge, no iptables), reached by the worker
through ``DOCKER_HOST``; the shared engine is never touched.

The run's job stops inside its checks step (a fault-hooked worker), the engine is
restarted under it, and the job goes on. Its container did not survive the restart
(no live-restore): the job hands the run back with the reason, and a new job resumes
it at checks in a new sandbox, as after a crash. No container may be left once the
reaper has run.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
import redis

from runs.events import StatusChanged
from runs.record import RunStatus, Step
from sandboxes import labels
from tests.blueprint.conftest import CLEAN_REQUEST, REPO
from tests.blueprint.e2e import (
    Workers,
    docker_client,
    require_image,
    wait_for,
    wait_status,
    worker_env,
)
from tests.reliability import fault_worker
from tests.reliability.harness import (
    PrivateDockerd,
    paused,
    private_dockerd,
    reap_and_count,
    record_fault,
    sample_on_local_forge,
    start_fault_worker,
    store_containers,
)

# serial: a private dockerd and its containerd start within a deadline, which a loaded
# machine can miss.
pytestmark = [pytest.mark.redis, pytest.mark.docker, pytest.mark.slow, pytest.mark.serial]


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[PrivateDockerd]:
    shared = docker_client()
    require_image(shared)
    try:
        with private_dockerd(tmp_path, shared) as started:
            yield started
    finally:
        shared.close()


def test_a_dockerd_restart_mid_run_resumes_the_run_and_leaves_no_container(
    real_redis_conn: redis.Redis, engine: PrivateDockerd, workers: Workers, tmp_path: Path
) -> None:
    forge, store, queue = sample_on_local_forge(real_redis_conn, tmp_path, "faults-dockerd")
    env = worker_env(tmp_path, "faults-dockerd", DOCKER_HOST=engine.host)
    start_fault_worker(workers, env, "dockerd")

    run = store.create(requester="U1", repo=REPO, request=CLEAN_REQUEST)
    fault_worker.plan(real_redis_conn, run.id, gate=[Step.CHECKS])
    queue.enqueue(run)
    wait_for(lambda: paused(real_redis_conn, run.id) is not None, "the run to be in its checks")
    with engine.client() as client:
        assert (
            store_containers(client, store, [run.id]) != []
        )  # the sandbox is on the private engine

    engine.restart()
    fault_worker.open_gate(real_redis_conn, run.id)

    final = wait_status(store, run.id, RunStatus.AWAITING_DECISION, RunStatus.FAILED)
    assert final.status is RunStatus.AWAITING_DECISION, final.error
    assert final.attempts == 2
    [handed] = [
        e.reason
        for e in store.events(run.id)
        if isinstance(e, StatusChanged) and e.to == RunStatus.QUEUED.value
    ]
    assert handed.startswith("the sandbox went away during checks (")
    assert handed.endswith("; resuming at checks in a new sandbox")
    assert len(forge.list_prs(REPO)) == 1
    outcome = f"was handed back (“{handed}”) and resumed: awaiting a decision, 1 PR"

    with engine.client() as client:
        wait_for(lambda: _no_running(client, run.id), "the job to let go of its sandbox")
        left = reap_and_count(client, store, [run.id])
    assert left == 0
    record_fault(
        "dockerd restart",
        "private dockerd (via `DOCKER_HOST`) restarted while the run was in its checks step",
        1,
        f"the run {outcome}; {left} containers left after the reaper",
        rank=3,
    )


def _no_running(client: docker.DockerClient, run_id: int) -> bool:
    """No container of the run is still running (the job's own cleanup may remove it)."""
    return all(
        c.status != "running"
        for c in client.containers.list(
            all=True, filters={"label": f"{labels.RUN_ID}={run_id}"}, ignore_removed=True
        )
    )
