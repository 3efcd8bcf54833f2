"""Decisions asked for in Slack or on the CLI: approve, rework, cancel, steer, resume.

Each asks :mod:`jobs.decisions.rules` whether the user may, then changes the run with
one checked transition or one uniquely named job, so two clicks, a click and a reply,
or two workers have one effect.
"""

from __future__ import annotations

from collections.abc import Iterable

from jobs.decisions.paused import revise_plan
from jobs.decisions.rules import (
    _STATE,
    Action,
    Outcome,
    _awaiting,
    _feedback_problem,
    _load,
    _refused,
    _stale,
    _unused,
)
from jobs.queue import OVER as _OVER
from jobs.queue import RunQueue
from process.exceptions import InvalidTransition, RunNotFound
from runs.record import RunStatus, approval_in_progress
from runs.store import RunStore


def request_approval(
    queue: RunQueue,
    run_id: int,
    user: str,
    *,
    approvers: Iterable[str],
    iteration: int | None = None,
) -> Outcome:
    """Approve: enqueue the job that marks the PR ready or merges it (the worker holds
    the forge token; see :func:`approve_on_forge`)."""
    run = _awaiting(queue.store, run_id, user, Action.APPROVE, approvers, iteration)
    if isinstance(run, Outcome):
        return run
    if queue.request_approval(run, by=user) is None:
        return Outcome(False, "duplicate", f"{run.label} is already being approved.", run)
    return Outcome(True, "approving", f"Approving {run.label}.", run)


def may_rework(
    store: RunStore,
    run_id: int,
    user: str,
    *,
    approvers: Iterable[str],
    iteration: int | None = None,
) -> Outcome:
    """Whether a rework may be asked for now (before asking the user what to change)."""
    run = _awaiting(store, run_id, user, Action.REWORK, approvers, iteration)
    if isinstance(run, Outcome):
        return run
    return Outcome(True, "ask", f"What should change in {run.label}?", run)


def request_rework(
    queue: RunQueue,
    run_id: int,
    user: str,
    feedback: str,
    *,
    approvers: Iterable[str],
    iteration: int | None = None,
) -> Outcome:
    """Rework: the next iteration, on the same branch, with ``feedback`` (credited)."""
    feedback = feedback.strip()
    run = _awaiting(queue.store, run_id, user, Action.REWORK, approvers, iteration)
    if isinstance(run, Outcome):
        return _unused(run)
    problem = _feedback_problem(run, feedback)
    if problem is not None:
        return problem
    try:
        reworked = queue.request_rework(run.id, by=user, feedback=feedback)
    except InvalidTransition:
        current = queue.store.get(run.id)
        why = (
            "is being approved; it can't be reworked now."
            if approval_in_progress(current)
            else f"is no longer awaiting a decision (it is {current.status.value})."
        )
        return _unused(Outcome(False, "stale", f"{run.label} {why}", current))
    return Outcome(
        True,
        "reworking",
        f"Starting iteration {reworked.iteration} of {run.label} with your feedback.",
        reworked,
        quoted=feedback,
    )


def cancel(queue: RunQueue, run_id: int, user: str, *, approvers: Iterable[str]) -> Outcome:
    """Cancel a run that is not final: its job is stopped and its sandboxes removed.
    Refused while an approve holds the run's guard (the PR may be merging)."""
    run = _load(queue.store, run_id)
    if isinstance(run, Outcome):
        return run
    refused = _refused(user, Action.CANCEL, run, approvers)
    if refused is not None:
        return refused
    if run.status.is_final:
        return _stale(run)
    try:
        cancelled = queue.cancel(run.id, by=user)
    except InvalidTransition:
        current = queue.store.get(run.id)
        if approval_in_progress(current):
            return Outcome(
                False, "approving", f"{run.label} is being approved; it can't be cancelled now."
            )
        return _stale(current)
    return Outcome(True, "cancelled", f"Cancelled {run.label}.", cancelled)


def steer(
    queue: RunQueue,
    run_id: int,
    user: str,
    text: str,
    *,
    approvers: Iterable[str],
) -> Outcome:
    """A message for a run from someone in its thread (or on its PR).

    Awaiting a decision, it asks for a rework. Queued or working, it is kept, with who
    wrote it, for the run's next iteration. Only those who may decide steer; anyone
    else is told so and the run is unchanged.
    """
    run = _load(queue.store, run_id)
    if isinstance(run, Outcome):
        return run
    if run.status.is_final:
        return _stale(run)
    refused = _refused(user, Action.STEER, run, approvers)
    if refused is not None:
        return _unused(refused)
    if run.status is RunStatus.AWAITING_DECISION:
        return request_rework(queue, run_id, user, text, approvers=approvers)
    if run.status is RunStatus.AWAITING_PLAN:
        return revise_plan(queue, run_id, user, text, approvers=approvers)
    feedback = text.strip()
    problem = _feedback_problem(run, feedback)
    if problem is not None:
        return problem
    try:
        queue.store.update(run.id, lambda r: r.add_feedback(user, feedback))
    except RunNotFound:
        return Outcome(False, "missing", f"{run.label} no longer exists.")
    return Outcome(
        True,
        "steered",
        f"{run.label} is still working; your message is queued for its next iteration.",
        run,
        quoted=feedback,
    )


def resume(
    queue: RunQueue,
    run_id: int,
    user: str,
    *,
    approvers: Iterable[str],
    max_attempts: int,
) -> Outcome:
    """Resume a run whose work was lost, now, instead of at the next recovery sweep.

    The same hand-backs a worker's sweep makes (:mod:`jobs.recovery`), for one run: a
    running run whose worker died goes back to the queue from its last checkpoint, a
    queued run whose job was lost is enqueued again, and an approve whose job died is
    carried out again. A run whose work is alive, or that is final, is left as it is.
    """
    from jobs.recovery import abandoned, recover

    run = _load(queue.store, run_id)
    if isinstance(run, Outcome):
        return run
    refused = _refused(user, Action.RESUME, run, approvers)
    if refused is not None:
        return refused
    if run.status.is_final:
        return Outcome(
            False,
            "stale",
            f"{run.label} is {run.status.value}; a finished run can't be resumed. "
            "To ask for it again, start a new run.",
            run,
        )
    if run.status is RunStatus.RUNNING:
        reason = abandoned(queue.store, run)
        if reason is None:
            return Outcome(False, "alive", f"{run.label} is still working; nothing to resume.", run)
        done = recover(
            queue.store,
            queue,
            run.id,
            reason=f"{reason} (resumed by {user})",
            attempts=run.attempts,
            max_attempts=max_attempts,
            by=user,
        )
        if done is None:
            return _stale(queue.store.get(run.id))
        return Outcome(
            done.outcome == "requeued", done.outcome, f"{run.label}: {done.reason}.", run
        )
    if run.status in (RunStatus.AWAITING_PLAN, RunStatus.AWAITING_BUDGET):
        return Outcome(
            False,
            "paused",
            f"{run.label} is {_STATE[run.status]}; it holds no work to lose. Answer its "
            "question in the thread.",
            run,
        )
    if run.status is RunStatus.AWAITING_DECISION:
        if queue.resume_approval(run.id) is not None:
            return Outcome(True, "approving", f"Approving {run.label} again.", run)
        return Outcome(
            False, "awaiting", f"{run.label} is awaiting a decision: approve or rework it.", run
        )
    job = queue.job(run)
    if job is not None and job.get_status(refresh=True) not in _OVER:
        return Outcome(
            False, "waiting", f"{run.label} is {_STATE[run.status]}; its job is there.", run
        )
    queue.enqueue(run, replace_finished=True)
    return Outcome(True, "resumed", f"Enqueued {run.label} again (its job was lost).", run)
