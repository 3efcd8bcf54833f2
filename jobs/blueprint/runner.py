"""The blueprint: a run's steps, in order, each checkpointed on the run record.

::

    queued|rework ──job starts──▶ running
        prepare ─▶ plan ─▶ agent ─▶ checks (fix rounds ≤ N, debugger) ─▶ review
        (+1 round if blocked) ─▶ publish ─▶ watch_ci ─▶ awaiting_decision

The plan step and the budget's cap pause a run for a person (``awaiting_plan``,
``awaiting_budget``) at a checkpoint; the job ends (:class:`Paused`), and the answer
queues the run again to resume there. A run stopped at its budget skips what is left
of plan, agent, checks and review, and publishes what exists as a draft.

A step that completes is added to ``artifacts.completed_steps`` (for the current
iteration, ``artifacts.steps_iteration``) in the same write as its results, and a job
that resumes a run skips the steps already there. Within a step, every model pass
saves its patch and the model calls used, so re-running the step starts from the last
of those; a pass stopped by a draining worker also saves its conversation, and the
next job continues it (:mod:`jobs.drain`). A run that cannot go on ends ``failed``
with the reason in its thread.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from jobs import drain
from jobs.attempts import Heartbeat, hand_back, same_attempt
from jobs.blueprint.context import RunContext
from jobs.blueprint.deps import Deps
from jobs.blueprint.providers import CountingModel
from jobs.blueprint.sandbox import SandboxSession
from jobs.blueprint.steps.agent import agent
from jobs.blueprint.steps.checks import checks
from jobs.blueprint.steps.plan import plan_first
from jobs.blueprint.steps.prepare import prepare
from jobs.blueprint.steps.publish import publish
from jobs.blueprint.steps.review import review
from jobs.blueprint.steps.watch_ci import watch_ci
from jobs.github_events import answer_on_pr
from process import logs
from process.exceptions import (
    AgentError,
    Draining,
    ForgeError,
    InvalidTransition,
    Paused,
    RepoCacheError,
    SandboxError,
    SandboxGone,
    SandboxLost,
    StepFailed,
    Superseded,
)
from process.settings import AgentLimits
from runs.artifacts import Cost
from runs.counters import Counters
from runs.record import Run, RunStatus, Step

if TYPE_CHECKING:
    from jobs.queue import RunQueue

log = logging.getLogger(__name__)

StepFn = Callable[[RunContext, SandboxSession], None]

STEPS: tuple[tuple[Step, StepFn], ...] = (
    (Step.PREPARE, prepare),
    (Step.PLAN, plan_first),
    (Step.AGENT, agent),
    (Step.CHECKS, checks),
    (Step.REVIEW, review),
    (Step.PUBLISH, publish),
    (Step.WATCH_CI, watch_ci),
)

#: Steps a run stopped at its budget (Stop here) skips: it publishes what exists.
SKIPPED_WHEN_STOPPED = frozenset({Step.PLAN, Step.AGENT, Step.CHECKS, Step.REVIEW})

#: Errors that end a run with their message as the reason (anything else is a bug, and
#: the RQ failure callback records it).
EXPECTED = (StepFailed, AgentError, ForgeError, SandboxError, RepoCacheError)


#: The steps an evaluation task's run skips: it never pushes, so there is no PR or CI.
NOT_EVALUATED = frozenset({Step.PUBLISH, Step.WATCH_CI})


def steps_of(run: Run) -> tuple[tuple[Step, StepFn], ...]:
    """The steps ``run`` goes through: all of them, or up to the review for an eval task."""
    if run.evaluation:
        return tuple((step, fn) for step, fn in STEPS if step not in NOT_EVALUATED)
    return STEPS


def next_step(run: Run) -> Step | None:
    done = set(run.artifacts.completed_steps)
    return next((step for step, _ in steps_of(run) if step not in done), None)


def begin_iteration(run: Run) -> None:
    """A new iteration starts from the pushed head, with its feedback; nothing else
    carries over but what earlier iterations did."""
    a = run.artifacts
    if a.summary:
        a.earlier_summaries.append(a.summary)
    a.completed_steps = []
    a.steps_iteration = run.iteration
    a.start_commit = a.head_sha
    for name in (
        "patch",
        "summary",
        "notes_for_reviewer",
        "review",
        "ci",
        "agent_resume",
        "root_cause",
        "budget_ask",
        "environment",
    ):
        setattr(a, name, None)
    a.check_reports = []
    a.todos, a.debugged, a.specialists = [], [], {}
    a.fix_rounds_spent = a.review_rounds = a.model_calls = 0
    a.turns_spent = a.extra_turns = a.on_edit_runs = 0
    a.extra_dollars = a.on_edit_seconds = 0.0
    a.spent = Cost()
    a.escalated = a.review_fixed = a.budget_stopped = a.review_comments_posted = False


def fresh_iteration(run: Run) -> bool:
    """The next job starts this iteration (rather than resuming it)."""
    return run.attempts == 0 or run.artifacts.steps_iteration != run.iteration


def expected_attempt(run: Run) -> int:
    return 1 if fresh_iteration(run) else run.attempts + 1


def _take(run: Run, budget: AgentLimits) -> None:
    """Start an attempt: a new iteration's first, or a resumed one's next."""
    if fresh_iteration(run):
        if run.iteration > 1:
            begin_iteration(run)
        run.artifacts.steps_iteration = run.iteration
        run.artifacts.feedback = list(run.pending_feedback)
        run.pending_feedback = []
        run.attempts = 1
        run.handbacks = {}
    else:
        run.attempts += 1
    run.budget = budget
    run.error = None


def start(deps: Deps, run_id: int, *, by: str) -> Run | None:
    """Take the run (queued, rework, or handed back by recovery) or None if not ours."""
    store = deps.store
    run = store.get(run_id)
    if run.status not in (RunStatus.QUEUED, RunStatus.REWORK):
        log.info("run #%d is %s; nothing for this job to do", run_id, run.status.value)
        return None
    budget = deps.agent.limits
    reason = None
    if not fresh_iteration(run):
        step = next_step(run)
        where = step.value if step else "the end"
        reason = f"resuming at {where} (attempt {run.attempts + 1})"
    try:
        return store.transition(
            run_id,
            RunStatus.RUNNING,
            by=by,
            reason=reason,
            expect=run.status,
            change=lambda r: _take(r, budget),
        )
    except InvalidTransition:
        log.info("run #%d was taken or changed by someone else first", run_id)
        return None


def fail(deps: Deps, run_id: int, attempt: int, by: str, reason: str) -> None:
    try:
        deps.store.transition(
            run_id,
            RunStatus.FAILED,
            by=by,
            reason=reason,
            expect=RunStatus.RUNNING,
            change=same_attempt(attempt),
        )
    except InvalidTransition:
        log.info("run #%d is no longer ours; not failing it (%s)", run_id, reason)


def await_decision(deps: Deps, ctx: RunContext) -> Run:
    check = same_attempt(ctx.attempt)

    def waiting(run: Run) -> None:
        check(run)
        run.step = Step.AWAIT_DECISION

    try:
        return deps.store.transition(
            ctx.run_id,
            RunStatus.AWAITING_DECISION,
            by=ctx.by,
            reason="pull request ready for a decision",
            expect=RunStatus.RUNNING,
            change=waiting,
        )
    except InvalidTransition as err:
        raise Superseded(str(err)) from None


def end_evaluation(deps: Deps, ctx: RunContext) -> Run:
    """An eval task's run is done once reviewed: ``evaluated``, with nothing published."""
    try:
        return deps.store.transition(
            ctx.run_id,
            RunStatus.EVALUATED,
            by=ctx.by,
            reason="evaluation task done; nothing is published",
            expect=RunStatus.RUNNING,
            change=same_attempt(ctx.attempt),
        )
    except InvalidTransition as err:
        raise Superseded(str(err)) from None


def _complete(ctx: RunContext, step: Step) -> None:
    def completed(run: Run) -> None:
        if step not in run.artifacts.completed_steps:  # a step may complete itself
            run.artifacts.completed_steps.append(step)

    ctx.save(completed)


def run_steps(ctx: RunContext, session: SandboxSession, *, drainable: bool = False) -> None:
    """Run the steps not completed yet. ``drainable``: once the worker has been asked
    to shut down (:mod:`jobs.drain`), stop at the next checkpoint, raising
    :class:`~process.exceptions.Draining`: before a step, between two turns of an agent pass,
    or between two CI polls."""
    deps = ctx.deps
    ctx.drainable = drainable
    for step, fn in steps_of(ctx.run()):
        run = ctx.run()
        if step in run.artifacts.completed_steps:
            continue
        if run.artifacts.budget_stopped and step in SKIPPED_WHEN_STOPPED:
            _complete(ctx, step)
            continue
        if drainable and drain.requested():
            raise Draining(step)
        try:
            run = deps.store.set_step(ctx.run_id, step, by=ctx.by)
        except InvalidTransition as err:  # cancelled or failed since the check above
            raise Superseded(str(err)) from None
        if deps.on_step is not None:
            deps.on_step(run, step)
        with logs.bind(step=step.value):
            with _timed(deps, step):
                _run_step(ctx, session, step, fn)
            _complete(ctx, step)


def _run_step(ctx: RunContext, session: SandboxSession, step: Step, fn: StepFn) -> None:
    try:
        fn(ctx, session)
    except SandboxGone as err:
        raise SandboxLost(step, err) from err


@contextmanager
def _timed(deps: Deps, step: Step) -> Iterator[None]:
    """Add how long the step took, and whether it raised, to the fleet's totals."""
    counters = Counters(deps.store.redis, prefix=deps.store.prefix)
    started = time.monotonic()
    try:
        yield
    except BaseException:
        counters.observe_step(step.value, time.monotonic() - started, outcome="failed")
        raise
    counters.observe_step(step.value, time.monotonic() - started)


def _steps(deps: Deps, taken: Run, by: str, *, drainable: bool) -> Run:
    with deps.models.open(taken) as model:
        counting = CountingModel(model, start=taken.artifacts.model_calls)
        ctx = RunContext(deps, taken.id, attempt=taken.attempts, by=by, model=counting)
        session = SandboxSession(ctx)
        try:
            run_steps(ctx, session, drainable=drainable)
        finally:
            session.close()
        if taken.evaluation:
            return end_evaluation(deps, ctx)
        waiting = await_decision(deps, ctx)
        answer_on_pr(deps.forge, waiting)  # when GitHub asked for this iteration
        return waiting


def run_blueprint(
    deps: Deps,
    run_id: int,
    *,
    by: str = "worker",
    job_id: str | None = None,
    queue: RunQueue | None = None,
) -> Run:
    """Run (or resume) ``run_id`` until it awaits a decision or ends; returns the run.

    Expected failures end the run ``failed`` with their message; a run that is
    cancelled or taken over meanwhile is left as it is. Anything else propagates (the
    RQ failure callback records it). With ``queue``, a worker asked to shut down stops
    the run at its next checkpoint and hands it back to that queue (not a crash: the
    attempt does not count against ``max_attempts``).
    """
    store = deps.store
    attempt = expected_attempt(store.get(run_id))
    ttl = deps.config.heartbeat_seconds
    with (
        logs.bind(run_id=run_id),
        Heartbeat(store, run_id, attempt=attempt, ttl=ttl, job_id=job_id) as heartbeat,
    ):
        taken = start(deps, run_id, by=by)
        if taken is None:
            return store.get(run_id)
        if taken.attempts != attempt:  # someone changed the run in between
            heartbeat.attempt = taken.attempts
            heartbeat.beat()
        try:
            return _steps(deps, taken, by, drainable=queue is not None)
        except Draining as err:
            assert queue is not None
            hand_back(
                store, queue, run_id, attempts=taken.attempts, reason=str(err), by=by, cause="drain"
            )
        except SandboxLost as err:
            # Resumed by a new job, as after a crash: a new sandbox from the run record.
            # Not a crash either, but bounded: a sandbox that keeps vanishing fails the run.
            lost = taken.handbacks.get("sandbox", 0) + 1
            if queue is not None and lost < deps.config.max_attempts:
                why = f"{err}; resuming at {err.step} in a new sandbox"
                attempts = taken.attempts
                hand_back(
                    store, queue, run_id, attempts=attempts, reason=why, by=by, cause="sandbox"
                )
            else:
                fail(deps, run_id, taken.attempts, by, str(err))
        except EXPECTED as err:
            log.info("run #%d failed: %s", run_id, err)
            fail(deps, run_id, taken.attempts, by, _reason(err))
        except Superseded as err:
            log.info("run #%d: stopping, %s", run_id, err)
        except Paused as err:
            log.info("run #%d: paused, %s", run_id, err)
    return store.get(run_id)


def _reason(err: Exception) -> str:
    if isinstance(err, AgentError):
        return f"the agent stopped ({err.reason}): {err}"
    return str(err)
