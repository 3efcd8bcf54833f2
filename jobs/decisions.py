"""Who may do what to a run, and what happens then: the one place that decides.

Every surface asks here: the Slack buttons, the rework modal, replies in a run's thread,
``/agents cancel``, the CLI, and the worker's approve job. Each answer is an
:class:`Outcome`: whether anything changed, what to tell the person who asked (an
ephemeral note, a CLI line, a PR comment: the surface chooses), and what to say in the
thread for everyone when something did change.

The rule is one: a run's requester and the operator's approvers (``AGENTS_APPROVERS``)
may approve, rework, cancel and steer it, approve or revise its plan, and extend or
stop it at its budget; nobody else changes it. On top of that,
approving may also need write access on GitHub (``AGENTS_REQUIRE_GITHUB_WRITE``), which
only the worker can check, so it is checked in :func:`approve_on_forge`.

Each change is one checked transition or one uniquely named job, so two clicks, a
click and a reply, or two workers have one effect.

Longer than most modules on purpose: every surface's decisions and their worker-side
halves (the approve job, the cancel clean-up) stay together, so the rule and its
effects are read in one place.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TYPE_CHECKING

from jobs import pauses
from jobs.queue import OVER as _OVER
from jobs.queue import RunQueue
from process.exceptions import ForgeError, InvalidTransition, RunNotFound
from runs.events import ApproveFailed, DecisionRefused, GitHubActivity, SandboxesRemoved
from runs.record import Run, RunStatus, approval_in_progress, utcnow
from runs.store import RunStore

if TYPE_CHECKING:
    from jobs.blueprint.config import BlueprintConfig
    from jobs.forge.protocol import Forge

log = logging.getLogger(__name__)

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


def _awaiting(
    store: RunStore,
    run_id: int,
    user: str,
    action: Action,
    approvers: Iterable[str],
    iteration: int | None,
) -> Run | Outcome:
    """The run, if ``user`` may ``action`` it and it awaits a decision on ``iteration``."""
    run = _load(store, run_id)
    if isinstance(run, Outcome):
        return run
    refused = _refused(user, action, run, approvers)
    if refused is not None:
        return refused
    if run.status is not RunStatus.AWAITING_DECISION:
        return _stale(run)
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


# -- asked for on a surface -----------------------------------------------------------


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


# -- a paused run: its plan, its budget ------------------------------------------------


def _paused(
    store: RunStore,
    run_id: int,
    user: str,
    action: Action,
    approvers: Iterable[str],
    status: RunStatus,
) -> Run | Outcome:
    """The run, if ``user`` may ``action`` it and it is paused for that (``status``)."""
    run = _load(store, run_id)
    if isinstance(run, Outcome):
        return run
    refused = _refused(user, action, run, approvers)
    if refused is not None:
        return refused
    if run.status is not status:
        return _stale(run)
    return run


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
    run = _paused(
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
    run = _paused(store, run_id, user, Action.REVISE_PLAN, approvers, RunStatus.AWAITING_PLAN)
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
    run = _paused(queue.store, run_id, user, Action.REVISE_PLAN, approvers, RunStatus.AWAITING_PLAN)
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
    run = _paused(
        queue.store, run_id, user, Action.EXTEND_BUDGET, approvers, RunStatus.AWAITING_BUDGET
    )
    if isinstance(run, Outcome):
        return run
    ask = run.artifacts.budget_ask or {}
    if not ask.get("can_extend"):
        cap = float(ask.get("hard_cap") or 0)
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
    run = _paused(
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


# -- asked for on GitHub (a webhook, handled on a worker) ----------------------------


def github_user(login: str) -> str:
    """How a GitHub account is named as the author of a change to a run."""
    return f"github:{login}"


def from_github(
    queue: RunQueue, forge: Forge, run_id: int, login: str, feedback: str, *, url: str | None
) -> Outcome:
    """A comment or a review on the run's pull request asking for a change.

    On GitHub the rule is GitHub's own: write access to the repository (what the
    Approve button needs with ``AGENTS_REQUIRE_GITHUB_WRITE``). Awaiting a decision, it
    is a rework of the same run; queued or working, it is kept for the next iteration.
    Anything else is recorded on the run, with why, and changes nothing.
    """
    from jobs.forge.protocol import can_write

    run = _load(queue.store, run_id)
    if isinstance(run, Outcome):
        return run
    by = github_user(login)
    store = queue.store

    def ignored(why: str) -> Outcome:
        store.append_event(
            run.id, GitHubActivity(by=by, login=login, action="ignored", text=why, url=url)
        )
        return Outcome(False, "ignored", why, run)

    if run.status.is_final:
        return ignored(f"{run.label} is {run.status.value}; the comment by @{login} was not used")
    try:
        permission = forge.permission(run.repo, login)
    except ForgeError as err:
        return ignored(f"could not read @{login}'s permission on {run.repo} ({err}); not used")
    if not can_write(permission):
        return ignored(
            f"@{login} has no write access to {run.repo} ({permission}); their comment was not used"
        )
    feedback = feedback.strip()
    problem = _feedback_problem(run, feedback)
    if problem is not None:
        return ignored(f"the comment by @{login} was not used: {problem.text}")
    shown = feedback if len(feedback) <= 300 else feedback[:299] + "…"
    if run.status is RunStatus.AWAITING_DECISION:
        try:
            reworked = queue.request_rework(run.id, by=by, feedback=feedback)
        except InvalidTransition:
            current = store.get(run.id)
            return ignored(
                f"{run.label} could not be reworked (it is {current.status.value}"
                f"{', being approved' if approval_in_progress(current) else ''}); the "
                f"comment by @{login} was not used"
            )
        store.append_event(
            run.id,
            GitHubActivity(
                by=by,
                login=login,
                action="rework",
                text=f"rework requested on GitHub by @{login}: {shown}",
                url=url,
            ),
        )
        return Outcome(
            True,
            "reworking",
            f"Starting iteration {reworked.iteration} of {run.label} with @{login}'s feedback.",
            reworked,
            quoted=feedback,
        )
    store.update(
        run.id,
        lambda r: r.add_feedback(by, feedback),
        events=[
            GitHubActivity(
                by=by,
                login=login,
                action="steer",
                text=f"kept for the next iteration, from GitHub by @{login}: {shown}",
                url=url,
            )
        ],
    )
    return Outcome(True, "steered", f"{run.label} is working; the comment is queued.", run)


def pull_request_ended(queue: RunQueue, run_id: int, login: str, *, merged: bool) -> Outcome:
    """The run's pull request was merged or closed on the forge: the run ends ``merged``
    or ``closed`` (from any state a run with a PR can be in, ``approved`` included), and
    a job still working on it is stopped."""
    run = _load(queue.store, run_id)
    if isinstance(run, Outcome):
        return run
    to = RunStatus.MERGED if merged else RunStatus.CLOSED
    what = "merged" if merged else "closed without merging"
    try:
        ended = queue.store.transition(
            run.id, to, by=github_user(login), reason=f"pull request {what} on GitHub by @{login}"
        )
    except InvalidTransition:
        return _stale(queue.store.get(run.id))
    if run.status in (RunStatus.RUNNING, RunStatus.QUEUED, RunStatus.REWORK):
        queue.stop_job(ended, by=github_user(login))
    return Outcome(True, to.value, f"{run.label} is {to.value}.", ended)


# -- carried out on a worker ----------------------------------------------------------


def _refused_on_worker(
    store: RunStore, run_id: int, by: str, text: str, mentions: Iterable[str] = ()
) -> None:
    """Tell the thread why an approve was not carried out. ``mentions`` are the Slack
    user ids written as ``<@id>`` in ``text`` (the reporter keeps those live)."""
    store.append_event(
        run_id,
        DecisionRefused(
            by=by, action=Action.APPROVE.value, text=text, mentions=sorted(set(mentions))
        ),
    )


def claim_approval(store: RunStore, run_id: int, iteration: int, user: str) -> bool:
    """Take the approve guard: one checked write that only succeeds while the run still
    awaits a decision on ``iteration``. From then on a rework is refused (see
    ``RunQueue.request_rework``) until the guard is released or lapses."""

    def claim(run: Run) -> None:
        if run.status is not RunStatus.AWAITING_DECISION or run.iteration != iteration:
            raise InvalidTransition(run_id, run.status.value, "approving")
        run.artifacts.approving = {
            "by": user,
            "iteration": iteration,
            "at": utcnow().isoformat(),
        }

    try:
        store.update(run_id, claim)
    except InvalidTransition:
        return False
    return True


def _release(store: RunStore, run_id: int) -> None:
    def release(run: Run) -> None:
        run.artifacts.approving = None

    store.update(run_id, release)


def approve_on_forge(
    store: RunStore, forge: Forge, config: BlueprintConfig, run_id: int, user: str
) -> Run:
    """Mark the PR ready for review or merge it, then move the run to ``approved``.

    The approve job runs this. Between its checks and the forge call the run holds the
    approve guard, taken by a checked write: a rework that lands before it makes the
    approve stand down, and one that comes after it is refused. Any refusal or forge
    error releases it, and is a note in the thread.
    """
    from jobs.forge.steps import finish_pr, may_approve

    run = store.get(run_id)
    if run.status is RunStatus.APPROVED:
        return run
    if run.status is not RunStatus.AWAITING_DECISION:
        _refused_on_worker(
            store,
            run_id,
            user,
            f"{run.label} is {run.status.value}; only a run awaiting a decision can be approved",
        )
        return run
    if not may(user, Action.APPROVE, run, config.approvers):
        _refused_on_worker(
            store,
            run_id,
            user,
            f"<@{user}> may not approve {run.label}: only the requester or an approver can",
            mentions=[user],
        )
        return run
    number = run.artifacts.pr_number
    if number is None:
        _refused_on_worker(store, run_id, user, f"{run.label} has no pull request")
        return run
    if not claim_approval(store, run_id, run.iteration, user):
        current = store.get(run_id)
        _refused_on_worker(
            store,
            run_id,
            user,
            f"{run.label} changed before it could be approved (it is now "
            f"{current.status.value.replace('_', ' ')}, iteration {current.iteration}); "
            "nothing was merged",
        )
        return current
    try:
        if config.require_github_write:
            login = config.user_map.get(user)
            if login is None:
                _refused_on_worker(
                    store,
                    run_id,
                    user,
                    f"<@{user}> has no GitHub login mapped, and approving needs write "
                    f"access on GitHub (AGENTS_REQUIRE_GITHUB_WRITE). Ask an admin to add "
                    f"`{user}=<github-login>` to AGENTS_USER_MAP; nothing was changed",
                    mentions=[user],
                )
                _release(store, run_id)
                return run
            if not may_approve(forge, run.repo, login):
                _refused_on_worker(
                    store,
                    run_id,
                    user,
                    f"GitHub user {login} has no write access to {run.repo}",
                )
                _release(store, run_id)
                return run
        pr = finish_pr(
            forge,
            run.repo,
            number,
            action=config.approve_action,
            merge_method=config.merge_method,
            expected_sha=run.artifacts.head_sha,
        )
    except ForgeError as err:
        store.append_event(run_id, ApproveFailed(by=user, text=str(err)))
        _release(store, run_id)
        return store.get(run_id)
    done = "merged" if pr.merged else "marked ready for review"
    try:
        return store.transition(
            run_id,
            RunStatus.APPROVED,
            by=user,
            reason=f"approved by {user}: {pr.url} {done}",
            expect=RunStatus.AWAITING_DECISION,
        )
    except InvalidTransition:
        return store.get(run_id)


def remove_sandboxes(run_id: int, *, wait: float = 10.0) -> int:
    """Remove the run's sandbox containers whose owner (the stopped job) has died.

    Only what the reaper would remove too: run ids repeat across stores sharing one
    Docker engine, and a live owner's container is not ours to take.
    """
    from sandboxes import engine
    from sandboxes.reaper import Reaper

    client = engine.try_connect()
    if client is None:
        log.info("no Docker to clean up run #%d's sandboxes", run_id)
        return 0
    try:
        return len(Reaper(client).remove_run(str(run_id), wait=wait))
    finally:
        client.close()


def cancel_on_worker(queue: RunQueue, run_id: int, user: str) -> Run:
    """The cancel job: cancel the run if it is not final yet (recording who), then
    remove its sandboxes, which only a worker can reach."""
    store = queue.store
    run = store.get(run_id)
    if not run.status.is_final:
        try:
            run = queue.cancel(run_id, by=user)
        except InvalidTransition:
            run = store.get(run_id)
    if run.status is RunStatus.CANCELLED:
        removed = remove_sandboxes(run_id)
        if removed:
            store.append_event(
                run_id,
                SandboxesRemoved(
                    by=user,
                    count=removed,
                    text=f"removed {removed} sandbox container(s) of {run.label}",
                ),
            )
    return run
