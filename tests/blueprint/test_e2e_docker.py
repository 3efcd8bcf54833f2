"""Acceptance, end to end with real parts: real Redis, real `agents worker` processes
(RQ), Docker sandboxes, the replay model and the local forge, on the sample repository.

One worker serves the happy paths (a clean change approved by merging, a change that
fails its checks once, a rework); the crash test SIGKILLs workers mid-step.
The transcripts were recorded in Docker (see examples/transcripts/README.md).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import redis
from rq.job import Job, JobStatus

from jobs.blueprint.body import section_titles
from jobs.forge.local import LocalForge
from jobs.queue import RunQueue
from runs.events import ChecksRan, StatusChanged
from runs.record import RunStatus, Step
from runs.store import RunStore
from sandboxes.reaper import Reaper
from tests.blueprint.conftest import (
    CLEAN_REQUEST,
    FIX_ONCE_REQUEST,
    REPO,
    REWORK_FEEDBACK,
    SAMPLE,
)
from tests.blueprint.crash_job import paused_key
from tests.blueprint.e2e import (
    Workers,
    containers_of,
    docker_client,
    kill,
    kill_group,
    require_image,
    wait_for,
    wait_status,
    worker_env,
)
from tests.blueprint.helpers import commits, git

pytestmark = [pytest.mark.redis, pytest.mark.docker, pytest.mark.slow]

ALL_STEPS = [
    Step.PREPARE,
    Step.PLAN,
    Step.AGENT,
    Step.CHECKS,
    Step.REVIEW,
    Step.PUBLISH,
    Step.WATCH_CI,
]


@pytest.fixture
def docker_ready() -> None:
    client = docker_client()
    try:
        require_image(client)
    finally:
        client.close()


def test_requests_become_prs_then_approve_merges_and_rework_adds_a_commit(
    real_redis_conn: redis.Redis, workers: Workers, tmp_path: Path, docker_ready: None
) -> None:
    forge = LocalForge(tmp_path / "forge")
    forge.create_repo(REPO, source=SAMPLE)
    store = RunStore(real_redis_conn)
    queue = RunQueue(real_redis_conn, store, name="e2e")
    workers.start(worker_env(tmp_path, "e2e", AGENTS_APPROVE_ACTION="merge"), "e2e")
    bare = forge.repo_path(REPO)

    # All three start from the same main: a later run on a merged main would be
    # a different task than the recorded one.
    clean = store.create(requester="U1", repo=REPO, request=CLEAN_REQUEST)
    fixed = store.create(requester="U1", repo=REPO, request=FIX_ONCE_REQUEST)
    third = store.create(requester="U1", repo=REPO, request=CLEAN_REQUEST)
    for run in (clean, fixed, third):
        queue.enqueue(run)

    # A clean change: a draft PR with the expected diff and body, awaiting a decision.
    done = wait_status(store, clean.id, RunStatus.AWAITING_DECISION, RunStatus.FAILED)
    assert done.status is RunStatus.AWAITING_DECISION, done.error
    assert done.artifacts.completed_steps == ALL_STEPS
    pr = forge.get_pr(REPO, done.artifacts.pr_number or 0)
    assert pr.draft
    assert pr.branch == f"agents/1-{store.nonce}-make-the-retry-limit-configurable"
    diff = git(bare, "diff", f"main...{pr.branch}")
    assert "+    max_attempts: int = MAX_ATTEMPTS," in diff
    assert "+def test_the_limit_is_configurable() -> None:" in diff
    assert section_titles(pr.body) == [
        "Summary",
        "Checks",
        "Review",
        "Notes from the agent",
        "Cost",
        "Reproducibility",
    ]
    assert "passed (8 tests)" in pr.body
    manifest = done.artifacts.manifest
    assert manifest is not None
    assert manifest.image == worker_image()
    assert str(manifest.image_id).startswith("sha256:")
    assert manifest.sandbox == "docker"

    # A change that fails its checks once, then is fixed.
    second = wait_status(store, fixed.id, RunStatus.AWAITING_DECISION, RunStatus.FAILED)
    assert second.status is RunStatus.AWAITING_DECISION, second.error
    assert second.artifacts.fix_rounds_spent == 1
    checks = [e for e in store.events(fixed.id) if isinstance(e, ChecksRan)]
    assert [c.passed for c in checks] == [False, True]
    assert checks[0].fix_round == 1

    # Rework: a second commit on the same branch, the PR updated, no force-push.
    first = wait_status(store, third.id, RunStatus.AWAITING_DECISION, RunStatus.FAILED)
    assert first.status is RunStatus.AWAITING_DECISION, first.error
    head = first.artifacts.head_sha or ""

    # Approve merges (only now: the other runs must all start from the same main);
    # a second click changes nothing.
    assert queue.request_approval(done, by="U1") is not None
    assert queue.request_approval(done, by="U1") is None
    approved = wait_status(store, clean.id, RunStatus.APPROVED)
    assert approved.status_by == "U1"
    merged = forge.get_pr(REPO, pr.number)
    assert merged.merged
    assert git(bare, "rev-parse", "main") == merged.merge_sha
    assert "max_attempts" in git(bare, "show", "main:retrying/retry.py")

    # A rework, as the bot asks for one.
    queue.request_rework(third.id, by="U1", feedback=REWORK_FEEDBACK)
    wait_for(lambda: store.get(third.id).iteration == 2, "the rework to start")
    again = wait_status(store, third.id, RunStatus.AWAITING_DECISION, RunStatus.FAILED)
    assert again.status is RunStatus.AWAITING_DECISION, again.error
    assert again.iteration == 2
    branch = again.artifacts.branch or ""
    assert branch == first.artifacts.branch
    messages = commits(bare, branch, base=first.artifacts.base_commit or "main")
    assert len(messages) == 2
    assert f"Agents-Run: #3@{store.nonce} iteration 2" in messages[1]
    git(bare, "merge-base", "--is-ancestor", head, again.artifacts.head_sha or "")
    reworked = forge.get_pr(REPO, again.artifacts.pr_number or 0)
    assert reworked.number == first.artifacts.pr_number
    assert reworked.head_sha == again.artifacts.head_sha
    assert "CHANGELOG.md" in git(bare, "show", "--stat", "--format=", reworked.head_sha)
    assert REWORK_FEEDBACK in reworked.body

    # Every sandbox was removed by the run that made it.
    client = docker_client()
    try:
        assert containers_of(client, store, [clean.id, fixed.id, third.id]) == []
    finally:
        client.close()


def worker_image() -> str:
    from tests.blueprint.e2e import SANDBOX_IMAGE

    return SANDBOX_IMAGE


def test_a_worker_killed_during_agent_checks_or_publish_is_recovered(
    real_redis_conn: redis.Redis, workers: Workers, tmp_path: Path, docker_ready: None
) -> None:
    """Four runs on four workers, each stopped mid-step: three workers die (SIGKILL,
    with their work horses), and one run is cancelled while its worker lives on."""
    forge = LocalForge(tmp_path / "forge")
    forge.create_repo(REPO, source=SAMPLE)
    store = RunStore(real_redis_conn)
    runs: dict[str, int] = {}
    paused: dict[str, subprocess.Popen[bytes]] = {}
    queues: dict[str, RunQueue] = {}
    for name, where in (
        ("agent", "agent"),
        ("checks", "checks"),
        ("publish", "publish"),
        ("cancel", "checks"),
    ):
        queues[name] = RunQueue(
            real_redis_conn, store, name=f"crash-{name}", job_func="tests.blueprint.crash_job.run"
        )
        run = store.create(requester="U1", repo=REPO, request=CLEAN_REQUEST)
        queues[name].enqueue(run)
        env = worker_env(
            tmp_path, f"crash-{name}", AGENTS_TEST_PAUSE_AT=where, AGENTS_RECOVERY_INTERVAL="3600"
        )
        paused[name] = workers.start(env, f"crash-{name}")
        runs[name] = run.id

    horses = {}
    for name, run_id in runs.items():
        wait_for(
            lambda run_id=run_id: real_redis_conn.get(paused_key(run_id)) is not None,
            f"run #{run_id} to stop in its step ({name})",
        )
        horses[name] = int(real_redis_conn.get(paused_key(run_id)) or 0)
        workers.horses.append(horses[name])
        run = store.get(run_id)
        assert run.status is RunStatus.RUNNING
        assert run.step is Step(name if name != "cancel" else "checks")

    # Cancel: the job is stopped, its sandbox removed by the cleanup job, and who
    # cancelled is recorded. No reaper involved.
    cancel_id = runs.pop("cancel")
    client = docker_client()
    try:
        assert containers_of(client, store, [cancel_id]) != []
        queues["cancel"].cancel(cancel_id, by="U9")
        job = Job.fetch(f"agents-run-{cancel_id}-1", connection=real_redis_conn)
        wait_for(lambda: job.get_status(refresh=True) == JobStatus.STOPPED, "the job to stop")
        wait_for(lambda: containers_of(client, store, [cancel_id]) == [], "the sandbox to go")
    finally:
        client.close()
    cancelled = store.get(cancel_id)
    assert cancelled.status is RunStatus.CANCELLED
    assert cancelled.status_by == "U9"
    wait_for(
        lambda: any(e.kind == "sandboxes_removed" for e in store.events(cancel_id)),
        "the cleanup to be recorded",
    )

    # The machine dies: the other workers and their work horses, with no clean-up.
    for name in runs:
        kill_group(paused[name].pid)
        paused[name].wait()
        kill(horses[name])

    # A worker of each pool comes back (a sweep resumes only its own queue's runs).
    for name in runs:
        workers.start(worker_env(tmp_path, f"crash-{name}"), f"resume-{name}")
    for where, run_id in runs.items():
        final = wait_status(store, run_id, RunStatus.AWAITING_DECISION, RunStatus.FAILED)
        assert final.status is RunStatus.AWAITING_DECISION, (where, final.error)
        assert final.attempts == 2
        assert final.artifacts.completed_steps == ALL_STEPS
        reasons = [
            (e.reason or "")
            for e in store.events(run_id)
            if isinstance(e, StatusChanged) and e.to == "queued"
        ]
        assert len(reasons) == 1
        assert f"during {where}; resuming at {where}" in reasons[0]

    # Exactly one PR and one commit per run.
    prs = forge.list_prs(REPO)
    assert sorted(pr.branch for pr in prs) == sorted(
        f"agents/{run_id}-{store.nonce}-make-the-retry-limit-configurable"
        for run_id in runs.values()
    )
    for pr in prs:
        assert len(commits(forge.repo_path(REPO), pr.branch)) == 1

    # The dead horses' containers are left behind until the reaper runs; then none.
    client = docker_client()
    try:
        Reaper(client).reap()
        assert containers_of(client, store, [*runs.values(), cancel_id]) == []
    finally:
        client.close()
