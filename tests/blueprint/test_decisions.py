"""Approve, rework and cancel: who may, what they do, and that twice is once."""

from __future__ import annotations

import pytest
from rq import SimpleWorker
from rq.job import JobStatus
from rq.registry import StartedJobRegistry

from jobs import decisions, recovery
from jobs.queue import APPROVE_RESUMES, RunQueue
from runs.events import StatusChanged
from runs.record import Run, RunStatus
from tests.blueprint.conftest import CLEAN_REQUEST, REPO, Harness, script


@pytest.fixture
def awaiting(harness: Harness) -> Run:
    harness.script(script("clean"))
    run = harness.run(harness.create(CLEAN_REQUEST, requester="U1").id)
    assert run.status is RunStatus.AWAITING_DECISION
    return run


def queue_of(harness: Harness) -> RunQueue:
    return RunQueue(harness.connection, harness.store, name="q")


def notes(harness: Harness, run_id: int, kind: str) -> list[str]:
    return [e.text for e in harness.store.events(run_id) if e.kind == kind]


def test_approve_marks_the_pr_ready_and_twice_is_once(harness: Harness, awaiting: Run) -> None:
    config = harness.deps.config
    approved = decisions.approve_on_forge(harness.store, harness.forge, config, awaiting.id, "U1")
    assert approved.status is RunStatus.APPROVED
    assert approved.status_by == "U1"
    pr = harness.forge.get_pr(REPO, 1)
    assert not pr.draft
    assert pr.state == "open"
    assert not pr.merged
    again = decisions.approve_on_forge(harness.store, harness.forge, config, awaiting.id, "U1")
    assert again.status is RunStatus.APPROVED
    statuses = [e.to for e in harness.store.events(awaiting.id) if isinstance(e, StatusChanged)]
    assert statuses.count("approved") == 1


def test_approve_can_merge(harness: Harness, awaiting: Run) -> None:
    harness.configure(approve_action="merge")
    config = harness.deps.config
    decisions.approve_on_forge(harness.store, harness.forge, config, awaiting.id, "U1")
    decisions.approve_on_forge(harness.store, harness.forge, config, awaiting.id, "U1")
    pr = harness.forge.get_pr(REPO, 1)
    assert pr.merged
    assert pr.merge_sha
    from tests.blueprint.helpers import git

    bare = harness.forge.repo_path(REPO)
    assert git(bare, "rev-parse", "main") == pr.merge_sha
    assert "max_attempts" in git(bare, "show", "main:retrying/retry.py")


def test_only_the_requester_or_an_approver_may_approve(harness: Harness, awaiting: Run) -> None:
    config = harness.deps.config
    stranger = decisions.approve_on_forge(harness.store, harness.forge, config, awaiting.id, "U666")
    assert stranger.status is RunStatus.AWAITING_DECISION
    assert notes(harness, awaiting.id, "decision_refused") == [
        "<@U666> may not approve #1: only the requester or an approver can"
    ]
    harness.configure(approvers=("U7",))
    approved = decisions.approve_on_forge(
        harness.store, harness.forge, harness.deps.config, awaiting.id, "U7"
    )
    assert approved.status is RunStatus.APPROVED
    assert approved.status_by == "U7"


def test_github_write_access_can_be_required(harness: Harness, awaiting: Run) -> None:
    harness.configure(require_github_write=True, user_map={"U1": "octocat"})
    config = harness.deps.config
    harness.forge.set_permission(REPO, "octocat", "read")
    refused = decisions.approve_on_forge(harness.store, harness.forge, config, awaiting.id, "U1")
    assert refused.status is RunStatus.AWAITING_DECISION
    assert notes(harness, awaiting.id, "decision_refused") == [
        "GitHub user octocat has no write access to acme/retrying"
    ]
    harness.configure(require_github_write=True, user_map={})
    unmapped = decisions.approve_on_forge(
        harness.store, harness.forge, harness.deps.config, awaiting.id, "U1"
    )
    assert unmapped.status is RunStatus.AWAITING_DECISION
    harness.configure(require_github_write=True, user_map={"U1": "octocat"})
    harness.forge.set_permission(REPO, "octocat", "write")
    ok = decisions.approve_on_forge(
        harness.store, harness.forge, harness.deps.config, awaiting.id, "U1"
    )
    assert ok.status is RunStatus.APPROVED


def test_approve_refuses_a_run_that_is_not_awaiting_a_decision(harness: Harness) -> None:
    run = harness.create("anything")
    same = decisions.approve_on_forge(
        harness.store, harness.forge, harness.deps.config, run.id, "U1"
    )
    assert same.status is RunStatus.QUEUED
    assert (
        "only a run awaiting a decision can be approved"
        in notes(harness, run.id, "decision_refused")[0]
    )


def test_rework_starts_the_next_iteration(harness: Harness, awaiting: Run) -> None:
    queue = queue_of(harness)
    config = harness.deps.config
    outcome = decisions.request_rework(
        queue, awaiting.id, "U1", "add a changelog", approvers=config.approvers
    )
    assert (outcome.done, outcome.kind, outcome.quoted) == (True, "reworking", "add a changelog")
    reworked = outcome.run
    assert reworked is not None
    assert reworked.status is RunStatus.REWORK
    assert reworked.iteration == 2
    assert reworked.attempts == 0
    assert [f.text for f in reworked.pending_feedback] == ["add a changelog"]
    job = queue.job(reworked)
    assert job is not None
    assert job.id == "agents-run-1-2"
    twice = decisions.request_rework(
        queue, awaiting.id, "U1", "add a changelog", approvers=config.approvers
    )
    assert (twice.done, twice.kind) == (False, "stale")
    assert queue.store.get(awaiting.id).iteration == 2
    assert queue.queue.count == 1
    refused = decisions.request_rework(queue, awaiting.id, "U666", "no", approvers=[])
    assert (refused.done, refused.kind) == (False, "refused")
    assert [(f.by, f.text) for f in queue.store.get(awaiting.id).pending_feedback] == [
        ("U1", "add a changelog")
    ]


@pytest.mark.parametrize(
    "status", [RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.AWAITING_DECISION, RunStatus.REWORK]
)
def test_cancel_works_in_every_non_final_state(harness: Harness, status: RunStatus) -> None:
    run = harness.create("anything")
    path = {
        RunStatus.QUEUED: [],
        RunStatus.RUNNING: [RunStatus.RUNNING],
        RunStatus.AWAITING_DECISION: [RunStatus.RUNNING, RunStatus.AWAITING_DECISION],
        RunStatus.REWORK: [RunStatus.RUNNING, RunStatus.AWAITING_DECISION, RunStatus.REWORK],
    }[status]
    for step in path:
        harness.store.transition(run.id, step, by="test")
    cancelled = decisions.cancel_on_worker(queue_of(harness), run.id, "U9")
    assert cancelled.status is RunStatus.CANCELLED
    assert cancelled.status_by == "U9"
    again = decisions.cancel_on_worker(queue_of(harness), run.id, "U10")
    assert again.status_by == "U9"


def test_an_approve_whose_worker_died_after_merging_is_finished_by_the_sweep(
    harness: Harness, awaiting: Run
) -> None:
    """The worker was killed between the merge and the run's move to approved: the run
    still awaits a decision, its guard held by a job RQ shows as started on a worker
    that is gone. The sweep enqueues the approve again; run, it finds the PR merged
    and completes."""
    harness.configure(approve_action="merge")
    config = harness.deps.config
    queue = queue_of(harness)
    job = queue.request_approval(awaiting, by="U1")
    assert job is not None
    # What the dead job got done: the guard, and the merge.
    assert decisions.claim_approval(harness.store, awaiting.id, awaiting.iteration, "U1")
    harness.forge.mark_ready(REPO, 1)
    harness.forge.merge(REPO, 1)
    job.worker_name = "host.4242"  # no such worker is registered any more
    job.save()
    job.set_status(JobStatus.STARTED)

    [resumed] = recovery.sweep(harness.store, queue, max_attempts=3)

    assert (resumed.run_id, resumed.outcome) == (awaiting.id, "approve resumed")
    again = queue.job_for_approval(awaiting)
    assert again.get_status() is JobStatus.QUEUED
    assert tuple(again.args) == (awaiting.id, "U1")
    assert recovery.sweep(harness.store, queue, max_attempts=3) == []  # it is queued now
    # The worker that takes it runs jobs.entrypoints.approve_job, i.e.:
    final = decisions.approve_on_forge(harness.store, harness.forge, config, *again.args)
    assert final.status is RunStatus.APPROVED
    assert harness.forge.get_pr(REPO, 1).merged


def test_an_approve_whose_worker_died_before_taking_the_guard_is_resumed(
    harness: Harness, awaiting: Run
) -> None:
    """Killed between RQ starting the job and the job's first write: the run holds no
    guard, so only RQ's started registry knows an approve was under way. Without the
    sweep the click is lost, and clicking again finds the same job id taken."""
    queue = queue_of(harness)
    job = queue.request_approval(awaiting, by="U1")
    assert job is not None
    # What RQ does when it hands the job to a horse; then the worker is killed.
    worker = SimpleWorker([queue.queue], connection=harness.connection, name="host.4242")
    worker.register_birth()
    worker.prepare_execution(job)
    job.worker_name = worker.name
    job.save()
    job.set_status(JobStatus.STARTED)
    worker.register_death()
    assert job.id in StartedJobRegistry(queue=queue.queue)

    [resumed] = recovery.sweep(harness.store, queue, max_attempts=3)

    assert (resumed.run_id, resumed.outcome) == (awaiting.id, "approve resumed")
    again = queue.job_for_approval(awaiting)
    assert again.get_status() is JobStatus.QUEUED
    assert tuple(again.args) == (awaiting.id, "U1")


def test_an_approve_that_ended_without_the_guard_waits_for_a_click(
    harness: Harness, awaiting: Run
) -> None:
    """A job that ended (refused, or the forge failed) is not a crash: no resume."""
    queue = queue_of(harness)
    job = queue.request_approval(awaiting, by="U1")
    assert job is not None
    job.set_status(JobStatus.FAILED)
    assert recovery.sweep(harness.store, queue, max_attempts=3) == []
    assert queue.job_for_approval(awaiting).get_status() is JobStatus.FAILED


def test_an_approve_that_keeps_dying_is_resumed_a_bounded_number_of_times(
    harness: Harness, awaiting: Run
) -> None:
    queue = queue_of(harness)
    assert decisions.claim_approval(harness.store, awaiting.id, awaiting.iteration, "U1")
    outcomes = []
    for _ in range(APPROVE_RESUMES + 2):
        job = queue.job_for_approval(awaiting) or queue.request_approval(awaiting, by="U1")
        assert job is not None
        job.set_status(JobStatus.FAILED)  # died again
        outcomes.append(len(recovery.sweep(harness.store, queue, max_attempts=3)))
    assert outcomes == [1] * APPROVE_RESUMES + [0, 0]


@pytest.mark.parametrize("working_on_it", [True, False])
def test_a_live_approve_is_left_alone(harness: Harness, awaiting: Run, working_on_it: bool) -> None:
    """Alive means: its worker is registered and working on this job. A worker restarted
    under the same name (same host, same pid) is not the one that took it."""
    queue = queue_of(harness)
    job = queue.request_approval(awaiting, by="U1")
    assert job is not None
    assert decisions.claim_approval(harness.store, awaiting.id, awaiting.iteration, "U1")
    worker = SimpleWorker([queue.queue], connection=harness.connection, name="host.4242")
    worker.register_birth()
    if working_on_it:
        worker.prepare_execution(job)  # what RQ does when it hands the job to a horse
    job.worker_name = worker.name
    job.save()
    job.set_status(JobStatus.STARTED)

    resumed = recovery.sweep(harness.store, queue, max_attempts=3)

    assert len(resumed) == (0 if working_on_it else 1)
    again = queue.job_for_approval(awaiting)
    assert again is not None
    assert again.get_status() is (JobStatus.STARTED if working_on_it else JobStatus.QUEUED)
