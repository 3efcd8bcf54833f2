"""Crash recovery on fast parts: a job that dies during agent, checks or publish is
found by the sweep, handed back to the queue and resumed from its last completed step,
or failed with the reason after too many attempts. One PR, one commit."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from rq.exceptions import AbandonedJobError
from rq.job import Job

from jobs import attempts, drain, recovery
from jobs.blueprint.context import RunContext
from jobs.blueprint.runner import run_blueprint
from jobs.queue import RunQueue, current_job_key, on_job_failure
from runs.events import ChecksRan, StatusChanged, StepStarted
from runs.record import Run, RunStatus, Step
from sandboxes.owner import machine_token
from sandboxes.protocol import ExecResult, Sandbox
from tests.blueprint.conftest import CLEAN_REQUEST, REPO, Harness, script
from tests.blueprint.helpers import commits


class Crash(BaseException):
    """The worker dies here."""


def queue_of(harness: Harness) -> RunQueue:
    return RunQueue(harness.connection, harness.store, name="q")


def sweep(harness: Harness, max_attempts: int = 3) -> list[recovery.Recovery]:
    return recovery.sweep(harness.store, queue_of(harness), max_attempts=max_attempts)


def crash_once(harness: Harness, arm: Callable[[], None], disarm: Callable[[], None]) -> Run:
    """Run until the armed crash, recover, run again; return the final run."""
    arm()
    run = harness.create(CLEAN_REQUEST)
    with pytest.raises(Crash):
        harness.run(run.id)
    disarm()
    assert harness.store.get(run.id).status is RunStatus.RUNNING
    [found] = sweep(harness)
    assert found.outcome == "requeued"
    queued = harness.store.get(run.id)
    assert queued.status is RunStatus.QUEUED
    job = queue_of(harness).job(queued)
    assert job is not None
    assert job.id == f"agents-run-{run.id}-1-r1"
    return harness.run(run.id)


def assert_one_pr_one_commit(harness: Harness, run: Run) -> None:
    assert run.status is RunStatus.AWAITING_DECISION, run.error
    assert run.attempts == 2
    assert run.artifacts.completed_steps == [
        Step.PREPARE,
        Step.PLAN,
        Step.AGENT,
        Step.CHECKS,
        Step.REVIEW,
        Step.PUBLISH,
        Step.WATCH_CI,
    ]
    assert len(harness.forge.list_prs(REPO)) == 1
    assert len(commits(harness.forge.repo_path(REPO), run.artifacts.branch or "")) == 1


def steps_after_resume(harness: Harness, run_id: int) -> list[str]:
    events = harness.store.events(run_id)
    resumed = max(
        i for i, e in enumerate(events) if isinstance(e, StatusChanged) and e.to == "running"
    )
    return [e.step for e in events[resumed:] if isinstance(e, StepStarted)]


def test_a_crash_during_the_agent_resumes_the_agent_step(harness: Harness) -> None:
    harness.script(script("clean"))
    original = harness.models.open
    calls = {"n": 0}

    def dying_open(run: Run):  # type: ignore[no-untyped-def]
        cm = original(run)
        model = cm.__enter__()
        complete = model.complete

        def complete_or_die(request: Any, **kw: Any) -> Any:
            calls["n"] += 1
            if calls["n"] == 3:
                raise Crash()
            return complete(request, **kw)

        model.complete = complete_or_die  # type: ignore[method-assign]
        return _Entered(model)

    final = crash_once(
        harness,
        lambda: setattr(harness.models, "open", dying_open),
        lambda: setattr(harness.models, "open", original),
    )
    assert_one_pr_one_commit(harness, final)
    assert steps_after_resume(harness, final.id) == [
        "agent",
        "checks",
        "review",
        "publish",
        "watch_ci",
    ]
    # The agent step started over: 2 calls before the crash, then all 6.
    assert len(harness.models.requests) == 8
    reasons = [
        (e.reason or "") for e in harness.store.events(final.id) if isinstance(e, StatusChanged)
    ]
    assert any("stopped sending heartbeats during agent; resuming at agent" in r for r in reasons)


def test_a_crash_right_after_the_agent_saved_its_pass_does_not_run_it_again(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The soak found this window: the job died after the agent step's result was saved
    and before the step was marked complete. The resumed job ran the pass again, and a
    replayed model, already past the pass's calls, diverged."""
    harness.script(script("clean"))
    real_save = RunContext.save
    armed = {"on": True}

    def save_then_die(self: RunContext, change: Any, events: Any = ()) -> Run:
        saved = real_save(self, change, events)
        if (
            armed["on"]
            and saved.artifacts.summary
            and Step.CHECKS not in (saved.artifacts.completed_steps)
        ):
            raise Crash()  # the agent's result is written; nothing after it ran
        return saved

    final = crash_once(
        harness,
        lambda: monkeypatch.setattr(RunContext, "save", save_then_die),
        lambda: armed.update(on=False),
    )
    assert_one_pr_one_commit(harness, final)
    assert steps_after_resume(harness, final.id) == ["checks", "review", "publish", "watch_ci"]
    assert len(harness.models.requests) == 6  # every scripted call once, none repeated


class _Entered:
    def __init__(self, model: Any) -> None:
        self.model = model

    def __enter__(self) -> Any:
        return self.model

    def __exit__(self, *exc: object) -> None:
        return None


class DyingSandbox:
    """A sandbox whose check commands kill the worker while ``armed``."""

    armed = True

    def __init__(self, inner: Sandbox) -> None:
        self.inner = inner
        self.run_id = inner.run_id

    def exec(
        self,
        cmd: str | Sequence[str],
        timeout: float | None = None,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> ExecResult:
        if DyingSandbox.armed and isinstance(cmd, str) and "--junitxml" in cmd:
            raise Crash()
        return self.inner.exec(cmd, timeout=timeout, cwd=cwd, env=env)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_a_crash_during_the_checks_resumes_at_the_checks(harness: Harness) -> None:
    harness.script(script("clean"))
    factory = harness.deps.sandboxes

    def dying(run_id: str, config: Any, workspace: Any) -> Any:
        return DyingSandbox(factory(run_id, config, workspace))

    harness.deps.sandboxes = dying

    def disarm() -> None:
        DyingSandbox.armed = False

    DyingSandbox.armed = True
    final = crash_once(harness, lambda: None, disarm)
    assert_one_pr_one_commit(harness, final)
    assert steps_after_resume(harness, final.id) == ["checks", "review", "publish", "watch_ci"]
    assert len(harness.models.requests) == 6  # the agent was not asked again
    # The new sandbox got the saved change back: the checks ran on it and passed.
    checks = [e for e in harness.store.events(final.id) if isinstance(e, ChecksRan)]
    assert [(c.passed, c.text) for c in checks] == [(True, "pytest passed (8 tests)")]


def test_a_crash_during_publish_makes_no_second_commit_or_pr(harness: Harness) -> None:
    harness.script(script("clean"))
    forge = harness.forge
    create_pr = forge.create_pr
    armed = {"on": True}

    def dying_create_pr(*args: Any, **kw: Any) -> Any:
        if armed["on"]:
            raise Crash()  # after the push, before the PR
        return create_pr(*args, **kw)

    forge.create_pr = dying_create_pr  # type: ignore[method-assign]
    final = crash_once(harness, lambda: None, lambda: armed.update(on=False))
    assert_one_pr_one_commit(harness, final)
    assert steps_after_resume(harness, final.id) == ["publish", "watch_ci"]


def test_after_max_attempts_the_run_fails_with_the_reason(harness: Harness) -> None:
    harness.script(script("clean"))

    def die(run: Run, step: Step) -> None:
        if step is Step.CHECKS:
            raise Crash()

    harness.deps.on_step = die
    run = harness.create(CLEAN_REQUEST)
    for attempt in (1, 2):
        with pytest.raises(Crash):
            harness.run(run.id)
        [found] = sweep(harness, max_attempts=2)
        assert found.outcome == ("requeued" if attempt == 1 else "failed")
        if attempt == 1:
            assert harness.store.get(run.id).status is RunStatus.QUEUED
    failed = harness.store.get(run.id)
    assert failed.status is RunStatus.FAILED
    assert failed.error is not None
    assert "during checks" in failed.error
    assert "jobs have died 2 time(s) (the limit is 2); giving up" in failed.error


def _plain(value: Any) -> Any:
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if k != "cache_control"}
    return value


class DrainAt:
    """The harness's scripted models; the worker is asked to drain once the call
    numbered ``at`` (counted over the iteration) has been answered."""

    def __init__(self, inner: Any, at: int) -> None:
        self.inner = inner
        self.at = at

    @contextmanager
    def open(self, run: Run) -> Iterator[Any]:
        at = self.at

        class Model:
            def __init__(self, model: Any) -> None:
                self.model = model

            def complete(self, request: Any, **kw: Any) -> Any:
                response = self.model.complete(request, **kw)
                if self.model.position == at:
                    drain.request()  # as the worker's signal would, mid-turn
                return response

        with self.inner.open(run) as model:
            yield Model(model)


def test_a_drain_stops_between_agent_turns_and_is_not_a_crash(harness: Harness) -> None:
    """A worker drains during the agent step: the pass stops after its turn, saves its
    patch and conversation, and the run goes back to the queue at the agent step. The
    next job continues that conversation; the hand-back is not one of the crashes
    ``max_attempts`` allows, so one more crash is still resumed with a limit of 2."""
    harness.script(script("clean"))
    harness.deps.models = DrainAt(harness.models, at=2)  # the turn that edits retry.py
    queue = queue_of(harness)

    def on_step(run: Run, step: Step) -> None:
        if step is Step.CHECKS and run.attempts == 2:
            raise Crash()

    harness.deps.on_step = on_step
    run = harness.create(CLEAN_REQUEST)
    try:
        handed = run_blueprint(harness.deps, run.id, by="test", queue=queue)
    finally:
        drain.reset()
    assert handed.status is RunStatus.QUEUED
    assert handed.step is Step.AGENT
    assert handed.artifacts.completed_steps == [Step.PREPARE, Step.PLAN]
    assert handed.handbacks == {"drain": 1}
    assert handed.artifacts.model_calls == 2
    pending = handed.artifacts.agent_resume
    assert pending is not None
    assert pending.step == "agent"
    assert pending.turns == 2
    assert handed.error is None
    _, second = harness.models.requests
    # the second turn's edits are kept, for the next job's sandbox
    assert "+++ b/retrying/retry.py" in (handed.artifacts.patch or "")
    job = queue.job(handed)
    assert job is not None
    assert job.id == f"agents-run-{run.id}-1-r1"
    reasons = [
        e.reason
        for e in harness.store.events(run.id)
        if isinstance(e, StatusChanged) and e.to == "queued"
    ]
    assert (
        reasons[-1]
        == "its worker is shutting down; resuming at agent (after turn 2) on another worker"
    )

    with pytest.raises(Crash):  # attempt 2: the pass goes on, then the job dies in checks
        run_blueprint(harness.deps, run.id, by="test", queue=queue)
    resumed = harness.models.requests[2]
    assert resumed["system"] == second["system"]
    # The same conversation, continued (prompt-cache markers move to the last message).
    assert _plain(resumed["messages"][: len(second["messages"])]) == _plain(second["messages"])
    assert len(resumed["messages"]) == len(second["messages"]) + 2  # turn 2 and its results
    [found] = sweep(harness, max_attempts=2)
    assert found.outcome == "requeued", found.reason  # 2 attempts, 1 crash

    final = run_blueprint(harness.deps, run.id, by="test", queue=queue)
    assert final.status is RunStatus.AWAITING_DECISION, final.error
    assert final.attempts == 3
    assert final.handbacks == {"drain": 1}
    assert final.artifacts.agent_resume is None
    assert len(harness.models.requests) == len(script("clean"))  # no call made twice
    assert len(commits(harness.forge.repo_path(REPO), final.artifacts.branch or "")) == 1


def _heartbeat(harness: Harness, run_id: int, attempt: int, owner: str, token: str) -> None:
    value = json.dumps({"owner": owner, "token": token, "attempt": attempt, "job": None})
    harness.connection.set(attempts.heartbeat_key(harness.store, run_id, attempt), value, ex=60)


def _running(harness: Harness) -> Run:
    run = harness.create("anything")
    return harness.store.transition(
        run.id, RunStatus.RUNNING, by="w", change=lambda r: setattr(r, "attempts", 1)
    )


def test_a_live_heartbeat_keeps_the_run(harness: Harness) -> None:
    run = _running(harness)
    with attempts.Heartbeat(harness.store, run.id, attempt=1, ttl=30):
        assert recovery.abandoned(harness.store, run) is None
        assert sweep(harness) == []
    # Stopping the heartbeat removes it: the run looks abandoned at once.
    assert recovery.abandoned(harness.store, run) == "its worker stopped sending heartbeats"


def test_a_dead_owner_on_this_machine_is_seen_at_once(harness: Harness) -> None:
    run = _running(harness)
    dead = subprocess.Popen(["true"])
    dead.wait()
    _heartbeat(harness, run.id, 1, f"{os.uname().nodename}:{dead.pid}", f"{machine_token()}/1")
    reason = recovery.abandoned(harness.store, run)
    assert reason is not None
    assert "died" in reason


def test_an_owner_on_another_machine_counts_while_its_heartbeat_lasts(harness: Harness) -> None:
    run = _running(harness)
    _heartbeat(harness, run.id, 1, "elsewhere:4242", "other-boot/ns/99")
    assert recovery.abandoned(harness.store, run) is None


def test_two_sweeps_recover_a_run_once(harness: Harness) -> None:
    run = _running(harness)
    first = recovery.recover(
        harness.store, queue_of(harness), run.id, reason="dead", attempts=1, max_attempts=3
    )
    second = recovery.recover(
        harness.store, queue_of(harness), run.id, reason="dead", attempts=1, max_attempts=3
    )
    assert first is not None
    assert second is None
    assert queue_of(harness).queue.count == 1


def test_a_queued_run_whose_job_is_lost_is_enqueued_again(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recovery, "QUEUED_GRACE", timedelta(0))
    run = harness.create("anything")  # created, never enqueued (the bot died)
    [found] = sweep(harness)
    assert found.reason == "its job was lost"
    assert queue_of(harness).job(run) is not None
    assert sweep(harness) == []  # now it has a job


def _failed_job(harness: Harness, job_id: str, run_id: int) -> Job:
    job = Job.create(
        "jobs.entrypoints.run_job",
        args=(run_id,),
        id=job_id,
        connection=harness.connection,
        meta={"run_id": run_id},
    )
    job.save()
    return job


def test_an_abandoned_job_does_not_fail_its_run(harness: Harness) -> None:
    run = _running(harness)
    harness.connection.set(current_job_key("agents", run.id), "agents-run-1-1")
    job = _failed_job(harness, "agents-run-1-1", run.id)
    on_job_failure(job, harness.connection, AbandonedJobError, AbandonedJobError(), None)
    assert harness.store.get(run.id).status is RunStatus.RUNNING


def test_a_superseded_job_does_not_fail_its_run(harness: Harness) -> None:
    run = _running(harness)
    harness.connection.set(current_job_key("agents", run.id), "agents-run-1-1-r1")
    job = _failed_job(harness, "agents-run-1-1", run.id)
    on_job_failure(job, harness.connection, RuntimeError, RuntimeError("late"), None)
    assert harness.store.get(run.id).status is RunStatus.RUNNING
    current = _failed_job(harness, "agents-run-1-1-r1", run.id)
    on_job_failure(current, harness.connection, RuntimeError, RuntimeError("boom"), None)
    failed = harness.store.get(run.id)
    assert failed.status is RunStatus.FAILED
    assert failed.error == "RuntimeError: boom"


def test_a_cancelled_run_stops_at_the_next_step(harness: Harness) -> None:
    harness.script(script("clean"))

    def cancel_during(run: Run, step: Step) -> None:
        if step is Step.CHECKS:
            harness.store.transition(run.id, RunStatus.CANCELLED, by="U9")

    harness.deps.on_step = cancel_during
    run = harness.create(CLEAN_REQUEST)
    final = harness.run(run.id)
    assert final.status is RunStatus.CANCELLED
    assert final.status_by == "U9"
    assert harness.forge.list_prs(REPO) == []
    assert Step.CHECKS not in final.artifacts.completed_steps


def test_a_sandbox_that_keeps_vanishing_fails_the_run(harness: Harness) -> None:
    """Each time the checks start, their sandbox is gone (an engine that keeps
    restarting): the run is handed back to resume in a new sandbox, and after
    ``max_attempts`` losses it fails with the reason instead of looping for ever."""
    harness.script(script("clean"))
    made: list[Sandbox] = []
    current: list[Step] = []
    inner = harness.deps.sandboxes

    def factory(run_id: str, config: Any, workspace: Any) -> Sandbox:
        sandbox = inner(run_id, config, workspace)
        made.append(sandbox)
        if current[-1] is Step.CHECKS:
            sandbox.close()
        return sandbox

    def on_step(run: Run, step: Step) -> None:
        current.append(step)
        if step is Step.CHECKS:
            for sandbox in made:
                sandbox.close()

    harness.deps.sandboxes = factory
    harness.deps.on_step = on_step
    harness.configure(max_attempts=3)
    queue = queue_of(harness)
    run = harness.create(CLEAN_REQUEST)
    calls_after_agent = None
    for lost in (1, 2):
        handed = run_blueprint(harness.deps, run.id, by="test", queue=queue)
        assert handed.status is RunStatus.QUEUED, handed.error
        assert handed.step is Step.CHECKS
        assert handed.handbacks == {"sandbox": lost}
        assert Step.AGENT in handed.artifacts.completed_steps
        assert queue.job(handed) is not None
        if calls_after_agent is None:
            calls_after_agent = len(harness.models.requests)
    final = run_blueprint(harness.deps, run.id, by="test", queue=queue)
    assert final.status is RunStatus.FAILED
    assert final.error is not None
    assert final.error.startswith("the sandbox went away during checks (")
    assert final.handbacks == {"sandbox": 2}
    assert final.attempts == 3
    assert Step.CHECKS not in final.artifacts.completed_steps
    assert len(harness.models.requests) == calls_after_agent  # the agent ran once
    reasons = [
        e.reason
        for e in harness.store.events(run.id)
        if isinstance(e, StatusChanged) and e.to == "queued"
    ]
    assert len(reasons) == 2
    assert all("resuming at checks in a new sandbox" in str(r) for r in reasons)
