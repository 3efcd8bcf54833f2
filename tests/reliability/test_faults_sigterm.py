"""SIGTERM a worker in the middle of a run: a warm shutdown that does not wait for the
whole run. The worker passes the request to its work horse (``jobs.drain``); the job
finishes the step it is in, hands the run back to the queue at the next checkpoint,
and another worker resumes it there. Real Redis, real `agents worker` processes,
Docker, the replay model and the local forge."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import redis

from core.events import EventType
from core.run import RunStatus, Step
from core.store import RunStore
from jobs.forge.local import LocalForge
from jobs.queue import RunQueue
from tests.blueprint.conftest import CLEAN_REQUEST, REPO, SAMPLE
from tests.blueprint.e2e import (
    Workers,
    docker_client,
    require_image,
    wait_for,
    wait_status,
    worker_env,
)
from tests.blueprint.helpers import commits
from tests.reliability import fault_worker
from tests.reliability.harness import (
    paused,
    record_fault,
    start_fault_worker,
    store_containers,
    workers,
)

pytestmark = [pytest.mark.redis, pytest.mark.docker, pytest.mark.slow]
__all__ = ["workers"]  # the fixture

ALL_STEPS = [Step.PREPARE, Step.AGENT, Step.CHECKS, Step.REVIEW, Step.PUBLISH, Step.WATCH_CI]


def test_sigterm_finishes_the_step_and_another_worker_resumes_the_run(
    real_redis_conn: redis.Redis, workers: Workers, tmp_path: Path
) -> None:
    client = docker_client()
    require_image(client)
    forge = LocalForge(tmp_path / "forge")
    forge.create_repo(REPO, source=SAMPLE)
    store = RunStore(real_redis_conn)
    queue = RunQueue(real_redis_conn, store, name="faults-term")
    env = worker_env(tmp_path, "faults-term")

    first = start_fault_worker(workers, env, "term-first")
    run = store.create(requester="U1", repo=REPO, request=CLEAN_REQUEST)
    fault_worker.plan(real_redis_conn, run.id, hold=[Step.AGENT])
    queue.enqueue(run)
    wait_for(lambda: paused(real_redis_conn, run.id) is not None, "the run to be in its agent step")
    assert store.get(run.id).step is Step.AGENT

    second = start_fault_worker(workers, env, "term-second")
    first.terminate()  # SIGTERM: the held job goes on once the request reaches it
    try:
        code = first.wait(timeout=180)
    except subprocess.TimeoutExpired:
        pytest.fail("the SIGTERMed worker did not shut down after its step")
    assert code == 0

    final = wait_status(store, run.id, RunStatus.AWAITING_DECISION, RunStatus.FAILED)
    assert final.status is RunStatus.AWAITING_DECISION, final.error
    assert final.artifacts.completed_steps == ALL_STEPS
    assert final.attempts == 2
    assert second.poll() is None  # the other worker is still serving

    events = store.events(run.id)
    handed = [
        e
        for e in events
        if e.type is EventType.STATUS and e.data.get("to") == RunStatus.QUEUED.value
    ]
    assert [e.data.get("reason") for e in handed] == [
        "its worker is shutting down; resuming at checks on another worker"
    ]
    assert "term-first" in handed[0].by
    # The agent step ran once, to its end, on the first worker; the rest on the second.
    steps = [(e.data["step"], e.by) for e in events if e.type is EventType.STEP]
    assert [s for s, _ in steps] == [s.value for s in ALL_STEPS]
    assert all("term-first" in by for s, by in steps[:2])
    assert all("term-second" in by for s, by in steps[2:])
    [pr] = forge.list_prs(REPO)
    assert len(commits(forge.repo_path(REPO), pr.branch)) == 1
    assert store_containers(client, store, [run.id]) == []  # each job removed its own sandbox
    client.close()

    record_fault(
        "SIGTERM (warm shutdown)",
        "SIGTERM to an `agents worker` while its run is in the agent step",
        1,
        "the step finished, the run was handed back at checks and resumed by another "
        "worker: awaiting decision, 1 PR, 1 commit, 0 containers left; the worker exited 0",
        rank=1,
    )
