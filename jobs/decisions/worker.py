"""The worker-side halves of decisions: the approve job (it holds the forge token and
may check write access on GitHub, ``AGENTS_REQUIRE_GITHUB_WRITE``) and the cancel job
(only a worker reaches the run's sandboxes)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from jobs.decisions.rules import Action, may
from jobs.queue import RunQueue
from process.exceptions import ForgeError, InvalidTransition
from runs.artifacts import ApproveGuard
from runs.events import ApproveFailed, DecisionRefused, SandboxesRemoved
from runs.record import Run, RunStatus, utcnow
from runs.store import RunStore

if TYPE_CHECKING:
    from jobs.blueprint.config import BlueprintConfig
    from jobs.forge.protocol import Forge

log = logging.getLogger(__name__)


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
        run.artifacts.approving = ApproveGuard(
            by=user, iteration=iteration, at=utcnow().isoformat()
        )

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
