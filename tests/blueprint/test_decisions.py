"""Approve, rework and cancel: who may, what they do, and that twice is once."""

from __future__ import annotations

import pytest

from core.events import EventType
from core.run import Run, RunStatus
from jobs.blueprint import decisions
from jobs.queue import RunQueue
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
    return [e.data["text"] for e in harness.store.events(run_id) if e.data.get("kind") == kind]


def test_approve_marks_the_pr_ready_and_twice_is_once(harness: Harness, awaiting: Run) -> None:
    config = harness.deps.config
    approved = decisions.approve(harness.store, harness.forge, config, awaiting.id, "U1")
    assert approved.status is RunStatus.APPROVED
    assert approved.status_by == "U1"
    pr = harness.forge.get_pr(REPO, 1)
    assert not pr.draft
    assert pr.state == "open"
    assert not pr.merged
    again = decisions.approve(harness.store, harness.forge, config, awaiting.id, "U1")
    assert again.status is RunStatus.APPROVED
    statuses = [
        e.data["to"] for e in harness.store.events(awaiting.id) if e.type is EventType.STATUS
    ]
    assert statuses.count("approved") == 1


def test_approve_can_merge(harness: Harness, awaiting: Run) -> None:
    harness.configure(approve_action="merge")
    config = harness.deps.config
    decisions.approve(harness.store, harness.forge, config, awaiting.id, "U1")
    decisions.approve(harness.store, harness.forge, config, awaiting.id, "U1")
    pr = harness.forge.get_pr(REPO, 1)
    assert pr.merged
    assert pr.merge_sha
    from tests.blueprint.helpers import git

    bare = harness.forge.repo_path(REPO)
    assert git(bare, "rev-parse", "main") == pr.merge_sha
    assert "max_attempts" in git(bare, "show", "main:retrying/retry.py")


def test_only_the_requester_or_an_approver_may_approve(harness: Harness, awaiting: Run) -> None:
    config = harness.deps.config
    stranger = decisions.approve(harness.store, harness.forge, config, awaiting.id, "U666")
    assert stranger.status is RunStatus.AWAITING_DECISION
    assert notes(harness, awaiting.id, "approve_refused") == [
        "<@U666> may not approve #1: only the requester or an approver can"
    ]
    harness.configure(approvers=("U7",))
    approved = decisions.approve(
        harness.store, harness.forge, harness.deps.config, awaiting.id, "U7"
    )
    assert approved.status is RunStatus.APPROVED
    assert approved.status_by == "U7"


def test_github_write_access_can_be_required(harness: Harness, awaiting: Run) -> None:
    harness.configure(require_github_write=True, user_map={"U1": "octocat"})
    config = harness.deps.config
    harness.forge.set_permission(REPO, "octocat", "read")
    refused = decisions.approve(harness.store, harness.forge, config, awaiting.id, "U1")
    assert refused.status is RunStatus.AWAITING_DECISION
    assert notes(harness, awaiting.id, "approve_refused") == [
        "GitHub user octocat has no write access to acme/retrying"
    ]
    harness.configure(require_github_write=True, user_map={})
    unmapped = decisions.approve(
        harness.store, harness.forge, harness.deps.config, awaiting.id, "U1"
    )
    assert unmapped.status is RunStatus.AWAITING_DECISION
    harness.configure(require_github_write=True, user_map={"U1": "octocat"})
    harness.forge.set_permission(REPO, "octocat", "write")
    ok = decisions.approve(harness.store, harness.forge, harness.deps.config, awaiting.id, "U1")
    assert ok.status is RunStatus.APPROVED


def test_approve_refuses_a_run_that_is_not_awaiting_a_decision(harness: Harness) -> None:
    run = harness.create("anything")
    same = decisions.approve(harness.store, harness.forge, harness.deps.config, run.id, "U1")
    assert same.status is RunStatus.QUEUED
    assert (
        "only a run awaiting a decision can be approved"
        in notes(harness, run.id, "approve_refused")[0]
    )


def test_rework_starts_the_next_iteration(harness: Harness, awaiting: Run) -> None:
    queue = queue_of(harness)
    config = harness.deps.config
    reworked = decisions.rework(queue, config, awaiting.id, "U1", "add a changelog")
    assert reworked.status is RunStatus.REWORK
    assert reworked.iteration == 2
    assert reworked.attempts == 0
    assert reworked.pending_feedback == ["add a changelog"]
    job = queue.job(reworked)
    assert job is not None
    assert job.id == "agents-run-1-2"
    twice = decisions.rework(queue, config, awaiting.id, "U1", "add a changelog")
    assert twice.iteration == 2
    assert queue.queue.count == 1
    refused = decisions.rework(queue, config, awaiting.id, "U666", "no")
    assert refused.pending_feedback == ["add a changelog"]


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
    cancelled = decisions.cancel(queue_of(harness), run.id, "U9")
    assert cancelled.status is RunStatus.CANCELLED
    assert cancelled.status_by == "U9"
    again = decisions.cancel(queue_of(harness), run.id, "U10")
    assert again.status_by == "U9"
