"""SIGKILL the worker inside each step, five times per step, with real parts: real Redis,
real `agents worker` processes (RQ), Docker sandboxes, the replay model, and a fake
GitHub reached through real PyGithub and git over HTTP, with CI.

Five runs go through a pool of three fault-hooked workers (``fault_worker``). Each run
is stopped once inside every step it has (prepare, agent, checks, publish, watch_ci),
always on a later attempt than the one before, and each time the test SIGKILLs the
worker and its work horse, then starts a fresh worker in its place. The survivors'
recovery sweep hands the run to the next worker, which resumes it. The fake GitHub also
fails three of the pull-request creations (two 502s, one 500 after the PR was made).

Every run must end awaiting a decision with all its steps done, one branch, one commit
and one PR, and no container may be left once the reaper has run.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest
import redis

from fakes.github.server import FakeGitHub
from jobs.forge.local import LocalForge
from jobs.queue import RunQueue
from runs.record import RunStatus, Step
from runs.store import RunStore
from tests.blueprint.conftest import CLEAN_REQUEST, REPO, SAMPLE
from tests.blueprint.e2e import Workers, docker_client, github_env, require_image, wait_for
from tests.blueprint.helpers import commits
from tests.reliability import fault_worker
from tests.reliability.figures import record
from tests.reliability.harness import (
    GreenCI,
    describe,
    final_or_resumable,
    kill_worker_of,
    paused,
    reap_and_count,
    record_fault,
    start_fault_worker,
)

pytestmark = [pytest.mark.redis, pytest.mark.docker, pytest.mark.slow]

TOKEN = "ghs_faultT0KEN0123456789abcdefabcdef"
KILLED_STEPS = (Step.PREPARE, Step.AGENT, Step.CHECKS, Step.PUBLISH, Step.WATCH_CI)
ALL_STEPS = [
    Step.PREPARE,
    Step.PLAN,
    Step.AGENT,
    Step.CHECKS,
    Step.REVIEW,
    Step.PUBLISH,
    Step.WATCH_CI,
]
RUNS = 5
POOL = 3


def test_sigkill_inside_every_step_resumes_every_run_with_one_pr(
    real_redis_conn: redis.Redis, workers: Workers, tmp_path: Path
) -> None:
    client = docker_client()
    require_image(client)
    started = time.monotonic()
    bare = LocalForge(tmp_path / "origin").create_repo(REPO, source=SAMPLE)
    store = RunStore(real_redis_conn)
    queue = RunQueue(real_redis_conn, store, name="faults-kill")
    kills: Counter[Step] = Counter()
    with FakeGitHub(token=TOKEN) as fake, GreenCI(fake, REPO):
        fake.add_repo(REPO, bare=bare)
        fake.fail_next("POST", r"/pulls$", 502, count=2)
        fake.fail_next("POST", r"/pulls$", 500, after=True)
        env = github_env(tmp_path, "faults-kill", fake.base_url, TOKEN, AGENTS_MAX_ATTEMPTS="8")
        spawned = 0
        for _ in range(POOL):
            start_fault_worker(workers, env, f"kill-{spawned}")
            spawned += 1
        run_ids = []
        for _ in range(RUNS):
            run = store.create(requester="U1", repo=REPO, request=CLEAN_REQUEST)
            fault_worker.plan(real_redis_conn, run.id, kill=KILLED_STEPS)
            queue.enqueue(run)
            run_ids.append(run.id)

        def step_through() -> bool:
            """Kill whatever stopped at its hook; True once every run has settled."""
            for run_id in run_ids:
                where = paused(real_redis_conn, run_id)
                if where is None:
                    continue
                step, horse = where
                real_redis_conn.delete(fault_worker.paused_key(run_id))
                assert store.get(run_id).step is step
                kill_worker_of(workers, horse)
                kills[step] += 1
                nonlocal spawned
                start_fault_worker(workers, env, f"kill-{spawned}")
                spawned += 1
            return all(
                store.get(r).status in (RunStatus.AWAITING_DECISION, RunStatus.FAILED)
                for r in run_ids
            )

        wait_for(step_through, "every run to be killed in each step and to settle", 420)
        pulls = fake.pulls(REPO)
        statuses = [c.status for c in fake.calls("POST") if c.path.endswith("/pulls")]

    finals = [store.get(run_id) for run_id in run_ids]
    for final in finals:
        assert final.status is RunStatus.AWAITING_DECISION, (final.id, final.error)
        assert final.artifacts.completed_steps == ALL_STEPS
        assert final.attempts == len(KILLED_STEPS) + 1
        assert real_redis_conn.scard(fault_worker.kill_key(final.id)) == 0
    assert kills == {step: RUNS for step in KILLED_STEPS}

    # One PR per run, on the run's own branch, with one commit; the faults were met.
    branches = sorted(p["head"]["ref"] for p in pulls)
    assert branches == sorted(f.artifacts.branch or "" for f in finals)
    duplicates = len(pulls) - len(set(branches))
    assert duplicates == 0
    for branch in branches:
        assert len(commits(bare, branch)) == 1
    assert statuses.count(502) == 2
    assert statuses.count(500) == 1

    # The killed horses' sandboxes stay until the reaper runs; then there are none.
    left = reap_and_count(client, store, run_ids)
    client.close()
    assert left == 0

    states = describe(final_or_resumable(store, run_ids))
    record_fault(
        "GitHub 5xx while creating the PR",
        "fake GitHub: two 502 and one 500 after the PR was made, on `POST /pulls`, in "
        "the runs of the SIGKILL table",
        RUNS,
        f"retried, the lost response found by branch: {len(pulls)} PRs for {RUNS} runs, "
        f"{duplicates} duplicates",
        rank=12,
    )
    record(
        "faults-kill-steps",
        "SIGKILL inside each step",
        ["step", "kills", "runs", "final states", "duplicate PRs", "containers left after reaper"],
        [[step.value, kills[step], RUNS, states, duplicates, left] for step in KILLED_STEPS],
        notes=(
            f"{RUNS} runs on a pool of {POOL} fault-hooked `agents worker` processes, real "
            "Redis, Docker sandboxes, the replay model and the fake GitHub with CI. Each "
            "run was SIGKILLed (worker and work horse) once inside every step listed, "
            f"{sum(kills.values())} kills in all, each resumed by another worker: every run "
            f"took {len(KILLED_STEPS) + 1} attempts. The same runs met 3 injected "
            "pull-request creation faults (two 502, one 500 after the PR was made). "
            f"Took {time.monotonic() - started:.0f} s."
        ),
        order=10,
    )
