"""Plan mode with real parts: real Redis, real `agents worker` processes (RQ), the replay
model on a transcript recorded at the start of the test (through the real SDK against
the fake Messages API), the local sandbox and the local forge.

The run plans, is revised, and waits for its plan's approval holding no worker. The
worker is then killed (SIGKILL, its whole process group) and another one started:
nothing is lost, and approving the plan builds the change on the new worker.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from jobs import decisions
from jobs.forge.local import LocalForge
from jobs.queue import RunQueue
from runs.events import PlanDecided, PlanProposed
from runs.record import RunStatus, Step
from runs.store import RunStore
from tests.blueprint.conftest import CLEAN_REQUEST, REPO, SAMPLE
from tests.blueprint.e2e import Workers, kill_group, wait_for, wait_status, worker_env
from tests.blueprint.factory_flows import Flow, record_flow
from tests.blueprint.test_factory import (
    BUILDER,
    CRITERIA_V1,
    CRITERIA_V2,
    FEEDBACK,
    plan_reply,
    verdict,
)

pytestmark = [pytest.mark.redis, pytest.mark.slow]

QUEUE = "plan-restart"


def test_a_worker_restart_while_the_plan_waits_loses_nothing(
    real_redis_conn: redis.Redis, workers: Workers, tmp_path: Path
) -> None:
    flow = Flow(
        "plan-restart",
        CLEAN_REQUEST,
        [
            plan_reply(1, CRITERIA_V1),
            plan_reply(2, CRITERIA_V2),
            *BUILDER,
            verdict("approve", "Fine.", criteria=[{"criterion": 1, "met": True}]),
        ],
        answers=[f"revise-plan:{FEEDBACK}", "approve-plan"],
        plan=True,
    )
    transcript = record_flow(tmp_path / "record", flow)
    forge = LocalForge(tmp_path / "forge")
    forge.create_repo(REPO, source=SAMPLE)
    store = RunStore(real_redis_conn)
    queue = RunQueue(real_redis_conn, store, name=QUEUE)
    env = worker_env(
        tmp_path,
        QUEUE,
        AGENTS_SANDBOX_BACKEND="local",
        AGENTS_REPLAY_TRANSCRIPT=str(transcript.parent),
    )
    first = workers.start(env, "planner-a")

    run = store.create(requester="U-recorder", repo=REPO, request=CLEAN_REQUEST, plan_asked=True)
    queue.enqueue(run)
    waiting = wait_status(store, run.id, RunStatus.AWAITING_PLAN, RunStatus.FAILED)
    assert waiting.status is RunStatus.AWAITING_PLAN, waiting.error
    revised = decisions.revise_plan(queue, run.id, "U-recorder", FEEDBACK, approvers=[])
    assert revised.done, revised.text

    def second_version() -> bool:
        current = store.get(run.id)
        return current.status is RunStatus.AWAITING_PLAN and len(current.artifacts.plans) == 2

    wait_for(second_version, "plan v2", detail=lambda: str(store.get(run.id).error))
    before = store.get(run.id)

    # The worker dies while the run waits for a person: nothing of the run is on it.
    kill_group(first.pid)
    first.wait()
    after = store.get(run.id)
    assert after.status is RunStatus.AWAITING_PLAN
    assert after.artifacts == before.artifacts
    assert after.step is Step.PLAN

    workers.start(env, "planner-b")
    approved = decisions.approve_plan(queue, run.id, "U-recorder", approvers=[])
    assert approved.done, approved.text
    done = wait_status(store, run.id, RunStatus.AWAITING_DECISION, RunStatus.FAILED)
    assert done.status is RunStatus.AWAITING_DECISION, done.error
    assert done.artifacts.plan_approved == 2
    assert [f.text for f in done.artifacts.plan_feedback] == [FEEDBACK]
    # Two deliberate pauses, none of them a crash; the model calls went on in order.
    assert done.handbacks.get("plan") == 2
    events = store.events(run.id)
    assert [e.version for e in events if isinstance(e, PlanProposed)] == [1, 2]
    assert [e.action for e in events if isinstance(e, PlanDecided)] == ["revise", "approve"]
    pr = forge.get_pr(REPO, 1)
    assert "## Plan" in pr.body
    assert "- [x] `call_with_retry(fn, max_attempts=5)` tries five times — met" in pr.body
