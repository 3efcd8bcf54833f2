"""Who may do what to a run: the rule, and the answers every decision shares.

The rule is one: a run's requester and the operator's approvers (``AGENTS_APPROVERS``)
may approve, rework, cancel and steer it, approve or revise its plan, and extend or
stop it at its budget; nobody else changes it (:func:`may`). Each answer is an
:class:`Outcome`; the refusals here (not yours, stale, an older button, too much
feedback) read the same whichever surface asked.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from enum import StrEnum

from process.exceptions import RunNotFound
from runs.record import Run, RunStatus, approval_in_progress
from runs.store import RunStore

#: The most characters of feedback a run takes at once (a mention, a reply, a modal).
MAX_FEEDBACK_CHARS = 4000


class Action(StrEnum):
    APPROVE = "approve"
    REWORK = "rework"
    CANCEL = "cancel"
    STEER = "steer"
    RESUME = "resume"
    APPROVE_PLAN = "approve the plan of"
    REVISE_PLAN = "revise the plan of"
    EXTEND_BUDGET = "extend the budget of"
    STOP_AT_BUDGET = "stop"


@dataclass(frozen=True)
class Outcome:
    """What a decision did. ``text`` is for the person who asked, in plain words;
    ``quoted`` is the feedback it used, for a surface to show everyone (escaped its own
    way: a Slack thread, a PR comment)."""

    done: bool
    kind: str
    text: str
    run: Run | None = None
    quoted: str | None = None


_STATE = {
    RunStatus.APPROVED: "already approved",
    RunStatus.CANCELLED: "already cancelled",
    RunStatus.FAILED: "already finished (it failed)",
    RunStatus.REWORK: "already being reworked",
    RunStatus.RUNNING: "still working",
    RunStatus.QUEUED: "still queued",
    RunStatus.AWAITING_DECISION: "awaiting a decision",
    RunStatus.AWAITING_PLAN: "waiting for its plan to be approved",
    RunStatus.AWAITING_BUDGET: "paused at its budget",
    RunStatus.MERGED: "already merged",
    RunStatus.CLOSED: "already closed (its pull request was closed)",
}


def may(user: str, action: Action, run: Run, approvers: Iterable[str]) -> bool:
    """Whether ``user`` may ``action`` ``run``: its requester, or an approver."""
    del action  # one rule for every action today; the argument says which one is asked
    return user == run.requester or user in set(approvers)


def _refused(user: str, action: Action, run: Run, approvers: Iterable[str]) -> Outcome | None:
    if may(user, action, run, approvers):
        return None
    return Outcome(
        False,
        "refused",
        f"Only <@{run.requester}> (who asked) or an approver can {action.value} "
        f"{run.label}. Nothing was changed.",
        run,
    )


def _stale(run: Run) -> Outcome:
    text = f"{run.label} is {_STATE.get(run.status, run.status.value)}."
    if run.status.is_final:
        text += (
            " Its buttons do nothing now. To ask for something new, mention me in a new message."
        )
    return Outcome(False, "stale", text, run)


def _older(run: Run, iteration: int | None) -> Outcome | None:
    """A button drawn for an earlier iteration must not decide about a later one."""
    if iteration is None or iteration == run.iteration:
        return None
    return Outcome(
        False,
        "older",
        f"That button is from iteration {iteration}; {run.label} is on iteration "
        f"{run.iteration} now. Use the buttons on its latest message. Nothing was changed.",
        run,
    )


def _load(store: RunStore, run_id: int) -> Run | Outcome:
    try:
        return store.get(run_id)
    except RunNotFound:
        return Outcome(False, "missing", f"There is no run #{run_id} (or its record expired).")


def _in_status(
    store: RunStore,
    run_id: int,
    user: str,
    action: Action,
    approvers: Iterable[str],
    status: RunStatus,
) -> Run | Outcome:
    """The run, if ``user`` may ``action`` it and it is in ``status`` (paused for that)."""
    run = _load(store, run_id)
    if isinstance(run, Outcome):
        return run
    refused = _refused(user, action, run, approvers)
    if refused is not None:
        return refused
    if run.status is not status:
        return _stale(run)
    return run


def _awaiting(
    store: RunStore,
    run_id: int,
    user: str,
    action: Action,
    approvers: Iterable[str],
    iteration: int | None,
) -> Run | Outcome:
    """The run, if ``user`` may ``action`` it and it awaits a decision on ``iteration``."""
    run = _in_status(store, run_id, user, action, approvers, RunStatus.AWAITING_DECISION)
    if isinstance(run, Outcome):
        return run
    older = _older(run, iteration)
    if older is not None:
        return older
    if action is not Action.APPROVE and approval_in_progress(run):
        return Outcome(
            False, "approving", f"{run.label} is being approved; it can't be reworked now.", run
        )
    return run


def _unused(outcome: Outcome) -> Outcome:
    """A refusal of something said with feedback says the feedback was not used."""
    if outcome.done or outcome.kind in ("empty", "too_long"):
        return outcome
    return replace(outcome, text=f"{outcome.text} Your feedback was not used.")


def _feedback_problem(run: Run, feedback: str) -> Outcome | None:
    if not feedback:
        return Outcome(False, "empty", f"Tell me what to change in {run.label}.", run)
    if len(feedback) > MAX_FEEDBACK_CHARS:
        return Outcome(
            False,
            "too_long",
            f"That message is {len(feedback):,} characters; I take at most "
            f"{MAX_FEEDBACK_CHARS:,} for {run.label}, so I didn't use it. Put the details in "
            "an issue or a file in the repository and point me at it.",
            run,
        )
    return None
