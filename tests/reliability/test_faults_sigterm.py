"""SIGTERM a worker in the middle of a run: a warm shutdown that does not wait for the
whole run, nor for the step. The worker passes the request to its work horse
(``jobs.drain``); the job stops at its next checkpoint (here: the end of the agent's
current turn, inside the agent step), hands the run back to the queue, and another
worker resumes that step's conversation. Real Redis, real `agents worker` processes,
Docker, the replay model (which refuses any request the recording does not have at
that point) and the local forge."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import redis

from jobs import attempts
from jobs.forge.local import LocalForge
from jobs.queue import RunQueue
from runs.events import AgentTurn, StatusChanged, StepStarted
from runs.record import RunStatus, Step
from runs.store import RunStore
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

ALL_STEPS = [
    Step.PREPARE,
    Step.PLAN,
    Step.AGENT,
    Step.CHECKS,
    Step.REVIEW,
    Step.PUBLISH,
    Step.WATCH_CI,
]


def test_sigterm_stops_the_agent_at_a_turn_and_another_worker_resumes_it(
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
    # Held once the model has answered the agent step's first call, until the drain.
    fault_worker.plan(real_redis_conn, run.id, hold=[Step.AGENT])
    queue.enqueue(run)
    wait_for(lambda: paused(real_redis_conn, run.id) is not None, "the run to be in its agent step")
    assert store.get(run.id).step is Step.AGENT

    second = start_fault_worker(workers, env, "term-second")
    first.terminate()  # SIGTERM: the held job goes on once the request reaches it
    try:
        code = first.wait(timeout=180)
    except subprocess.TimeoutExpired:
        pytest.fail("the SIGTERMed worker did not shut down at its next checkpoint")
    assert code == 0

    final = wait_status(store, run.id, RunStatus.AWAITING_DECISION, RunStatus.FAILED)
    assert final.status is RunStatus.AWAITING_DECISION, final.error
    assert final.artifacts.completed_steps == ALL_STEPS
    assert final.artifacts.agent_resume is None
    # Two jobs, one of them handed back on purpose: no crash attempt was burnt.
    assert final.attempts == 2
    assert final.handbacks == {"drain": 1}
    assert attempts.crashes(final) == 1  # the job that finished it
    assert second.poll() is None  # the other worker is still serving

    events = store.events(run.id)
    handed = [e for e in events if isinstance(e, StatusChanged) and e.to == RunStatus.QUEUED.value]
    assert [e.reason for e in handed] == [
        "its worker is shutting down; resuming at agent (after turn 1) on another worker"
    ]
    assert "term-first" in handed[0].by
    # The agent step began on the first worker and was finished on the second, which
    # then ran the rest.
    steps = [(e.step, e.by) for e in events if isinstance(e, StepStarted)]
    # (plan does nothing for this short request, but it is a step all the same)
    assert [s for s, _ in steps] == [
        "prepare",
        "plan",
        "agent",
        *(s.value for s in ALL_STEPS[2:]),
    ]
    assert all("term-first" in by for s, by in steps[:3])
    assert all("term-second" in by for s, by in steps[3:])
    # Handed back at the turn boundary: turn 1 before the hand-back, the conversation
    # continued from turn 2 after it (the replay model takes no other request), and no
    # model call was made twice.
    at = events.index(handed[0])
    builder_turns = [e.turn for e in events if isinstance(e, AgentTurn) and e.by == "agent:builder"]
    before = [e.turn for e in events[:at] if isinstance(e, AgentTurn) and e.by == "agent:builder"]
    assert before == [1]
    assert builder_turns == list(range(1, len(builder_turns) + 1))
    assert len(builder_turns) > 1
    [pr] = forge.list_prs(REPO)
    assert len(commits(forge.repo_path(REPO), pr.branch)) == 1
    assert store_containers(client, store, [run.id]) == []  # each job removed its own sandbox
    client.close()

    record_fault(
        "SIGTERM (warm shutdown)",
        "SIGTERM to an `agents worker` while its run is in the agent step",
        1,
        "the agent stopped after its current turn, the run was handed back mid-step (not "
        "counted as a crash) and another worker continued the agent's conversation: "
        "awaiting decision, 1 PR, 1 commit, 0 containers left; the worker exited 0",
        rank=1,
    )
