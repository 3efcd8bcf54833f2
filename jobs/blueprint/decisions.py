"""What a human decides once a run awaits a decision: approve, rework, or cancel.

Each is safe to run twice: approve checks the run's status and the PR's state before
each write, so two clicks have one effect; rework and cancel are single checked
transitions.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from jobs.blueprint.config import BlueprintConfig
from jobs.forge.protocol import Forge
from jobs.forge.steps import finish_pr as forge_approve
from jobs.forge.steps import may_approve
from jobs.queue import RunQueue
from process.exceptions import ForgeError, InvalidTransition
from runs.events import Event, EventType
from runs.record import Run, RunStatus, utcnow
from runs.store import RunStore
from sandboxes import engine
from sandboxes.reaper import Reaper

log = logging.getLogger(__name__)


def may_decide(user: str, run: Run, approvers: Iterable[str]) -> bool:
    """The requester and the configured approvers decide."""
    return user == run.requester or user in set(approvers)


def _note(
    store: RunStore, run_id: int, by: str, kind: str, text: str, mentions: Iterable[str] = ()
) -> None:
    """A note for the thread. ``mentions`` are the Slack user ids the bot itself wrote
    as ``<@id>`` in ``text``: the reporter keeps those live and escapes the rest."""
    data: dict[str, object] = {"kind": kind, "text": text}
    if mentions:
        data["mentions"] = sorted(set(mentions))
    store.append_event(run_id, Event(type=EventType.MESSAGE, by=by, data=data))


def _claim(store: RunStore, run_id: int, iteration: int, user: str) -> bool:
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


def approve(store: RunStore, forge: Forge, config: BlueprintConfig, run_id: int, user: str) -> Run:
    """Mark the PR ready for review or merge it, then move the run to ``approved``.

    Between its checks and the forge call the run holds the approve guard, taken by a
    checked write: a rework that lands before it makes the approve stand down, and one
    that comes after it is refused. Any refusal or forge error releases it.
    """
    run = store.get(run_id)
    if run.status is RunStatus.APPROVED:
        return run
    if run.status is not RunStatus.AWAITING_DECISION:
        _note(
            store,
            run_id,
            user,
            "approve_refused",
            f"{run.label} is {run.status.value}; only a run awaiting a decision can be approved",
        )
        return run
    if not may_decide(user, run, config.approvers):
        _note(
            store,
            run_id,
            user,
            "approve_refused",
            f"<@{user}> may not approve {run.label}: only the requester or an approver can",
            mentions=[user],
        )
        return run
    number = run.artifacts.pr_number
    if number is None:
        _note(store, run_id, user, "approve_refused", f"{run.label} has no pull request")
        return run
    if not _claim(store, run_id, run.iteration, user):
        current = store.get(run_id)
        _note(
            store,
            run_id,
            user,
            "approve_refused",
            f"{run.label} changed before it could be approved (it is now "
            f"{current.status.value.replace('_', ' ')}, iteration {current.iteration}); "
            "nothing was merged",
        )
        return current
    try:
        if config.require_github_write:
            login = config.user_map.get(user)
            if login is None:
                _note(
                    store,
                    run_id,
                    user,
                    "approve_refused",
                    f"<@{user}> has no GitHub login mapped, and approving needs write "
                    f"access on GitHub (AGENTS_REQUIRE_GITHUB_WRITE). Ask an admin to add "
                    f"`{user}=<github-login>` to AGENTS_USER_MAP; nothing was changed",
                    mentions=[user],
                )
                _release(store, run_id)
                return run
            if not may_approve(forge, run.repo, login):
                _note(
                    store,
                    run_id,
                    user,
                    "approve_refused",
                    f"GitHub user {login} has no write access to {run.repo}",
                )
                _release(store, run_id)
                return run
        pr = forge_approve(
            forge,
            run.repo,
            number,
            action=config.approve_action,
            merge_method=config.merge_method,
            expected_sha=run.artifacts.head_sha,
        )
    except ForgeError as err:
        store.append_event(
            run_id,
            Event(type=EventType.ERROR, by=user, data={"kind": "approve_failed", "text": str(err)}),
        )
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


def rework(queue: RunQueue, config: BlueprintConfig, run_id: int, user: str, feedback: str) -> Run:
    """Record the feedback and start the next iteration on the same branch."""
    run = queue.store.get(run_id)
    if not may_decide(user, run, config.approvers):
        _note(
            queue.store,
            run_id,
            user,
            "rework_refused",
            f"<@{user}> may not rework {run.label}: only the requester or an approver can",
            mentions=[user],
        )
        return run
    try:
        return queue.request_rework(run_id, by=user, feedback=feedback)
    except InvalidTransition:
        log.info("run #%d is no longer awaiting a decision; rework ignored", run_id)
        return queue.store.get(run_id)


def remove_sandboxes(run_id: int, *, wait: float = 10.0) -> int:
    """Remove the run's sandbox containers whose owner (the stopped job) has died.

    Only what the reaper would remove too: run ids repeat across stores sharing one
    Docker engine, and a live owner's container is not ours to take.
    """
    client = engine.try_connect()
    if client is None:
        log.info("no Docker to clean up run #%d's sandboxes", run_id)
        return 0
    try:
        return len(Reaper(client).remove_run(str(run_id), wait=wait))
    finally:
        client.close()


def cancel(queue: RunQueue, run_id: int, user: str) -> Run:
    """Cancel the run if it is not final (recording who), stop its job, remove its sandbox.
    Refused while an approve holds the run's guard (see ``RunQueue.cancel``)."""
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
            _note(
                store,
                run_id,
                user,
                "sandbox_removed",
                f"removed {removed} sandbox container(s) of {run.label}",
            )
    return run
