"""Decisions asked for on GitHub (a webhook, handled on a worker): a comment or a
review asking for a change, and the pull request merged or closed on the forge."""

from __future__ import annotations

from typing import TYPE_CHECKING

from jobs.decisions.rules import Outcome, _feedback_problem, _load, _stale
from jobs.queue import RunQueue
from process.exceptions import ForgeError, InvalidTransition
from runs.events import GitHubActivity
from runs.record import RunStatus, approval_in_progress

if TYPE_CHECKING:
    from jobs.forge.protocol import Forge


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
