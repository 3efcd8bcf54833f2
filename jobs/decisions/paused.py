"""Answers to a paused run's question: its plan (approve, revise) and its budget
(extend, stop here). The pause's effect is carried out by :mod:`jobs.pauses`; an
answer that lost a race (another click, an older button) says what is current."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from jobs import pauses
from jobs.decisions.rules import (
    Action,
    Outcome,
    _feedback_problem,
    _in_status,
    _stale,
    _unused,
)
from jobs.queue import RunQueue
from process.exceptions import InvalidTransition
from runs.record import Run, RunStatus
from runs.store import RunStore


def _changed(queue: RunQueue, run: Run) -> Outcome:
    """The answer lost a race (another click, an older button): say what is current."""
    current = queue.store.get(run.id)
    if current.status is run.status:
        return Outcome(
            False,
            "older",
            f"That button is from an earlier question about {run.label}; use the latest "
            "one. Nothing was changed.",
            current,
        )
    return _stale(current)


def _carried(
    queue: RunQueue, run: Run, carry_out: Callable[[], Run], kind: str, text: str
) -> Outcome:
    """A pause's answer carried out (:mod:`jobs.pauses`), or what is current if it lost
    the race."""
    try:
        done = carry_out()
    except InvalidTransition:
        return _changed(queue, run)
    return Outcome(True, kind, text, done)


def approve_plan(
    queue: RunQueue,
    run_id: int,
    user: str,
    *,
    approvers: Iterable[str],
    version: int | None = None,
) -> Outcome:
    """Approve plan: it becomes the builder's contract, and the run builds."""
    run = _in_status(
        queue.store, run_id, user, Action.APPROVE_PLAN, approvers, RunStatus.AWAITING_PLAN
    )
    if isinstance(run, Outcome):
        return run
    return _carried(
        queue,
        run,
        lambda: pauses.carry_out_plan_approval(queue, run.id, user, version),
        "plan_approved",
        f"Approved the plan of {run.label}; building it.",
    )


def may_revise_plan(
    store: RunStore,
    run_id: int,
    user: str,
    *,
    approvers: Iterable[str],
    version: int | None = None,
) -> Outcome:
    """Whether the plan may be revised now (before asking what to change)."""
    run = _in_status(store, run_id, user, Action.REVISE_PLAN, approvers, RunStatus.AWAITING_PLAN)
    if isinstance(run, Outcome):
        return run
    latest = run.artifacts.latest_plan
    if version is not None and version != latest:
        return Outcome(
            False,
            "older",
            f"That button is from plan v{version}; {run.label} has plan v{latest} now. "
            "Nothing was changed.",
            run,
        )
    return Outcome(True, "ask", f"What should change in the plan of {run.label}?", run)


def revise_plan(
    queue: RunQueue,
    run_id: int,
    user: str,
    feedback: str,
    *,
    approvers: Iterable[str],
    version: int | None = None,
) -> Outcome:
    """Revise plan: the planner writes the next version with ``feedback`` (credited)."""
    feedback = feedback.strip()
    run = _in_status(
        queue.store, run_id, user, Action.REVISE_PLAN, approvers, RunStatus.AWAITING_PLAN
    )
    if isinstance(run, Outcome):
        return _unused(run)
    problem = _feedback_problem(run, feedback)
    if problem is not None:
        return problem
    try:
        done = pauses.carry_out_plan_revision(queue, run.id, user, feedback, version)
    except InvalidTransition:
        return _unused(_changed(queue, run))
    return Outcome(
        True,
        "plan_revising",
        f"Writing the next version of the plan of {run.label} with your feedback.",
        done,
        quoted=feedback,
    )


def extend_budget(
    queue: RunQueue,
    run_id: int,
    user: str,
    *,
    approvers: Iterable[str],
    asked_at: str | None = None,
) -> Outcome:
    """Extend: raise the cap that was reached and carry on. Never past the operator's
    hard cap (``AGENTS_MAX_DOLLARS_HARD``): at it, the answer is no."""
    run = _in_status(
        queue.store, run_id, user, Action.EXTEND_BUDGET, approvers, RunStatus.AWAITING_BUDGET
    )
    if isinstance(run, Outcome):
        return run
    ask = run.artifacts.budget_ask
    if ask is None or not ask.can_extend:
        cap = ask.hard_cap if ask else 0.0
        return Outcome(
            False,
            "hard_cap",
            f"{run.label} is at the operator's hard cap of ${cap:.2f} "
            "(AGENTS_MAX_DOLLARS_HARD), which can't be extended. Stop here publishes what "
            "it has.",
            run,
        )
    return _carried(
        queue,
        run,
        lambda: pauses.carry_out_extension(queue, run.id, user, asked_at),
        "extended",
        f"Extended the budget of {run.label}; carrying on.",
    )


def stop_at_budget(
    queue: RunQueue,
    run_id: int,
    user: str,
    *,
    approvers: Iterable[str],
    asked_at: str | None = None,
) -> Outcome:
    """Stop here: publish what exists as a draft, or nothing, per ``escalation``."""
    run = _in_status(
        queue.store, run_id, user, Action.STOP_AT_BUDGET, approvers, RunStatus.AWAITING_BUDGET
    )
    if isinstance(run, Outcome):
        return run
    return _carried(
        queue,
        run,
        lambda: pauses.carry_out_stop(queue, run.id, user, asked_at),
        "stopped",
        f"Stopping {run.label} at its budget.",
    )
