"""``agents rework|approve|cancel|resume|logs``, run as real subprocesses against real
Redis: the same decisions as the Slack thread, said in a terminal."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest
import redis
from rq import Queue
from rq.job import Job

from cli.commands.decide import parse_run_id, plain
from jobs.queue import job_id_for
from runs.record import Run, RunStatus
from runs.store import RunStore
from tests.cli.test_cli import REPO_ROOT, agents
from tests.conftest import TEST_REDIS_URL, real_redis

pytestmark = pytest.mark.redis

ENV = {"REDIS_URL": TEST_REDIS_URL, "AGENTS_APPROVERS": "UBOSS"}


@pytest.fixture
def store() -> Iterator[RunStore]:
    conn = real_redis()
    yield RunStore(conn)
    conn.flushdb()
    conn.close()


def awaiting(store: RunStore, requester: str = "U1") -> Run:
    run = store.create(requester=requester, repo="acme/api", request="make it configurable")
    store.transition(run.id, RunStatus.RUNNING, by="w")
    return store.transition(run.id, RunStatus.AWAITING_DECISION, by="w")


def job_ids(store: RunStore) -> list[str]:
    return [str(i) for i in Queue("agents", connection=store.redis).get_job_ids()]


def test_rework_by_the_requester_starts_the_next_iteration(store: RunStore) -> None:
    run = awaiting(store)
    result = agents("rework", f"#{run.id}", "rename the flag", "--as", "U1", env=ENV)
    assert result.returncode == 0, result.stderr
    assert f"Starting iteration 2 of #{run.id}" in result.stdout
    after = store.get(run.id)
    assert after.status is RunStatus.REWORK
    assert after.iteration == 2
    assert [(f.by, f.text) for f in after.pending_feedback] == [("U1", "rename the flag")]
    assert job_ids(store) == [f"agents-run-{run.id}-2"]


def test_rework_by_someone_else_changes_nothing(store: RunStore) -> None:
    run = awaiting(store)
    result = agents("rework", str(run.id), "rename the flag", "--as", "U2", env=ENV)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"Only U1 (who asked) or an approver can rework #{run.id}. Nothing was changed. "
        "Your feedback was not used."
    )
    assert store.get(run.id).status is RunStatus.AWAITING_DECISION
    assert job_ids(store) == []


def test_approve_by_an_approver_enqueues_the_approve_job(store: RunStore) -> None:
    run = awaiting(store)
    result = agents("approve", str(run.id), "--as", "UBOSS", env=ENV)
    assert result.returncode == 0, result.stderr
    assert f"Approving #{run.id}." in result.stdout
    assert job_ids(store) == [f"agents-approve-{run.id}-1"]
    job = Job.fetch(f"agents-approve-{run.id}-1", connection=store.redis)
    assert job.args == (run.id, "UBOSS")
    again = agents("approve", str(run.id), "--as", "UBOSS", env=ENV)
    assert again.returncode == 1
    assert "already being approved" in again.stderr


def test_cancel_a_queued_run_takes_its_job_off_the_queue(store: RunStore) -> None:
    from jobs.queue import RunQueue

    run = store.create(requester="cli", repo="acme/api", request="x")
    RunQueue(store.redis, store).enqueue(run)
    assert job_ids(store) == [f"agents-run-{run.id}-1"]
    result = agents("cancel", str(run.id), env=ENV)  # as `cli`, the requester
    assert result.returncode == 0, result.stderr
    assert store.get(run.id).status is RunStatus.CANCELLED
    assert job_ids(store) == []
    twice = agents("cancel", str(run.id), env=ENV)
    assert twice.returncode == 1
    assert f"#{run.id} is already cancelled." in twice.stderr


def test_resume_hands_a_dead_workers_run_back_to_the_queue(store: RunStore) -> None:
    run = store.create(requester="U1", repo="acme/api", request="x")
    store.transition(run.id, RunStatus.RUNNING, by="w")  # no heartbeat: its worker is gone
    result = agents("resume", str(run.id), "--as", "U1", env=ENV)
    assert result.returncode == 0, result.stderr
    assert "resumed by U1" in result.stdout
    after = store.get(run.id)
    assert after.status is RunStatus.QUEUED
    assert job_ids(store) == [job_id_for(run.id, after.iteration, after.attempts)]
    assert any(
        e.kind == "status" and e.by == "U1" and "resuming at prepare" in e.line
        for e in store.events(run.id)
    )


def test_resume_refuses_a_finished_run_and_a_stranger(store: RunStore) -> None:
    run = store.create(requester="U1", repo="acme/api", request="x")
    store.transition(run.id, RunStatus.FAILED, by="w", reason="boom")
    final = agents("resume", str(run.id), "--as", "U1", env=ENV)
    assert final.returncode == 1
    assert "a finished run can't be resumed" in final.stderr
    other = store.create(requester="U1", repo="acme/api", request="y")
    stranger = agents("resume", str(other.id), "--as", "U7", env=ENV)
    assert stranger.returncode == 1
    assert "Only U1 (who asked) or an approver can resume" in stranger.stderr
    assert store.get(other.id).status is RunStatus.QUEUED


@pytest.mark.parametrize("verb", ["rework", "approve", "cancel", "resume", "logs"])
def test_a_bad_run_id_is_one_line_and_exit_2(verb: str) -> None:
    extra = ["feedback"] if verb == "rework" else []
    result = agents(verb, "²", *extra, env={"REDIS_URL": "redis://127.0.0.1:1/0"})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"agents {verb}: '²' is not a run id; try `agents {verb} 42`"
    ]


def test_a_missing_run_is_said_plainly(store: RunStore) -> None:
    result = agents("approve", "99", env=ENV)
    assert result.returncode == 1
    assert result.stderr.strip() == "There is no run #99 (or its record expired)."
    logs = agents("logs", "99", env=ENV)
    assert logs.returncode == 1
    assert logs.stderr.strip() == "agents logs: there is no run #99 (or its record expired)"


def test_logs_print_the_event_log(store: RunStore) -> None:
    run = store.create(requester="U1", repo="acme/api", request="make it configurable")
    store.transition(run.id, RunStatus.FAILED, by="worker-1", reason="the model said no")
    result = agents("logs", str(run.id), env=ENV)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].split(None, 1)[1] == "created        U1: acme/api: make it configurable"
    assert lines[1].endswith("status         worker-1: queued -> failed: the model said no")


def test_logs_follow_until_the_run_is_finished(store: RunStore) -> None:
    run = store.create(requester="U1", repo="acme/api", request="x")
    env = {"PYTHONPATH": str(REPO_ROOT), **ENV}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "logs", str(run.id), "-f"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()  # the log so far is printed before following
        assert "created" in first
        store.transition(run.id, RunStatus.RUNNING, by="worker-2")
        assert "queued -> running" in proc.stdout.readline()
        store.transition(run.id, RunStatus.CANCELLED, by="U1", reason="not needed")
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert out.strip().endswith("running -> cancelled: not needed")


def test_parse_run_id_and_plain() -> None:
    assert parse_run_id("#42") == 42
    assert parse_run_id(" 7 ") == 7
    assert parse_run_id("٣") is None  # a digit, but not ASCII
    assert parse_run_id("4x") is None
    assert plain("Only <@U1> (who asked)") == "Only U1 (who asked)"
    assert isinstance(redis.Redis, type)
