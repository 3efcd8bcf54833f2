"""Answers to a paused run: the plan (approve, revise) and the budget (extend, stop).

A run waits for these at a checkpoint (``awaiting_plan``, ``awaiting_budget``) with no
worker held; each answer is one checked transition that records it (with who gave it,
in the same write as its event) and queues the run to resume where it paused, or ends
it. :mod:`jobs.decisions` says who may answer; this module only carries it out, so the
bot (buttons, the modal, thread replies) and the worker's sweep (the budget question's
timeout) do it the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from jobs.queue import RunQueue
from process.exceptions import InvalidTransition
from runs.artifacts import BudgetAsk
from runs.events import BudgetDecided, Event, PlanDecided
from runs.record import Feedback, Run, RunStatus, utcnow

log = logging.getLogger(__name__)


def _resume(
    queue: RunQueue,
    run_id: int,
    user: str,
    *,
    reason: str,
    paused: RunStatus,
    change: Callable[[Run], None],
    event: Event,
) -> Run:
    """The answer recorded (one checked transition from ``paused``, with its event) and
    the run queued to resume where it paused."""
    done = queue.store.transition(
        run_id,
        RunStatus.QUEUED,
        by=user,
        reason=reason,
        expect=paused,
        change=change,
        events=[event],
    )
    queue.enqueue(done, replace_finished=True)
    return done


def _plan_version(run: Run, version: int | None) -> int:
    """The latest plan's version; a button drawn for an older one is refused."""
    latest = run.artifacts.latest_plan
    if not latest or (version is not None and version != latest):
        raise InvalidTransition(run.id, f"plan v{latest}", f"plan v{version}")
    return latest


def carry_out_plan_approval(
    queue: RunQueue, run_id: int, user: str, version: int | None = None
) -> Run:
    """The latest plan becomes the builder's contract; the run goes on to build."""

    def approved(run: Run) -> None:
        run.artifacts.plan_approved = _plan_version(run, version)

    number = version or queue.store.get(run_id).artifacts.latest_plan
    return _resume(
        queue,
        run_id,
        user,
        reason=f"plan v{number} approved by {user}",
        paused=RunStatus.AWAITING_PLAN,
        change=approved,
        event=PlanDecided(
            by=user, action="approve", version=number, text=f"plan v{number} approved"
        ),
    )


def carry_out_plan_revision(
    queue: RunQueue, run_id: int, user: str, feedback: str, version: int | None = None
) -> Run:
    """Ask for the next version of the plan, with ``feedback`` (credited to ``user``)."""

    def revised(run: Run) -> None:
        _plan_version(run, version)
        run.artifacts.plan_feedback.append(Feedback(by=user, text=feedback))

    number = version or queue.store.get(run_id).artifacts.latest_plan
    return _resume(
        queue,
        run_id,
        user,
        reason=f"revision of plan v{number} asked by {user}",
        paused=RunStatus.AWAITING_PLAN,
        change=revised,
        event=PlanDecided(
            by=user,
            action="revise",
            version=number,
            feedback=feedback,
            text=f"revision of plan v{number} asked",
        ),
    )


def _open_ask(run: Run, asked_at: str | None) -> BudgetAsk:
    ask = run.artifacts.budget_ask
    if ask is None or (asked_at is not None and ask.at != asked_at):
        raise InvalidTransition(run.id, "another budget question", "an answer to this one")
    return ask


def carry_out_extension(
    queue: RunQueue, run_id: int, user: str, asked_at: str | None = None
) -> Run:
    """Raise the cap that was reached by the amount the question offered (never past
    the hard cap: a question at it offers nothing), and resume the run."""

    def extended(run: Run) -> None:
        ask = _open_ask(run, asked_at)
        if not ask.can_extend:
            raise InvalidTransition(run_id, "at the hard cap", "extended")
        amount = ask.extend_by
        if ask.limit_kind == "dollars":
            run.artifacts.extra_dollars = round(run.artifacts.extra_dollars + amount, 2)
        else:
            run.artifacts.extra_turns += int(amount)
        run.artifacts.budget_ask = None

    current = queue.store.get(run_id)
    asked = current.artifacts.budget_ask
    kind = asked.limit_kind if asked else None
    amount = asked.extend_by if asked else 0.0
    text = (
        f"budget extended by ${amount:.2f}"
        if kind == "dollars"
        else f"budget extended by {int(amount)} turns"
    )
    return _resume(
        queue,
        run_id,
        user,
        reason=f"{text} by {user}",
        paused=RunStatus.AWAITING_BUDGET,
        change=extended,
        event=BudgetDecided(by=user, action="extend", text=text),
    )


def carry_out_stop(
    queue: RunQueue, run_id: int, user: str, asked_at: str | None = None, *, timeout: bool = False
) -> Run:
    """Stop here: publish what exists as a draft, or nothing, as the repository's
    ``escalation`` says (``stop``), and nothing when there is no change yet."""
    run = queue.store.get(run_id)
    a = run.artifacts
    escalation = str((a.config or {}).get("escalation", "draft"))
    nothing = not (a.patch or "").strip() and a.pr_number is None
    who = "nobody answered in time" if timeout else f"stopped by {user}"
    action = "timeout" if timeout else "stop"
    if escalation == "stop" or nothing:
        why = "there is no change yet" if nothing else "escalation: stop"
        text = f"stopped at its budget ({who}); nothing was published ({why})"

        def ended(run: Run) -> None:
            _open_ask(run, asked_at)

        return queue.store.transition(
            run_id,
            RunStatus.FAILED,
            by=user,
            reason=text,
            expect=RunStatus.AWAITING_BUDGET,
            change=ended,
            events=[BudgetDecided(by=user, action=action, text=text)],
        )

    def stopped(run: Run) -> None:
        _open_ask(run, asked_at)
        run.artifacts.budget_stopped = True
        run.artifacts.budget_ask = None
        run.artifacts.agent_resume = None

    text = f"stopped at its budget ({who}); publishing what exists as a draft"
    return _resume(
        queue,
        run_id,
        user,
        reason=text,
        paused=RunStatus.AWAITING_BUDGET,
        change=stopped,
        event=BudgetDecided(by=user, action=action, text=text),
    )


def expired_asks(queue: RunQueue, timeout_seconds: float, now: datetime | None = None) -> list[int]:
    """Stop every run whose budget question has waited ``timeout_seconds`` for an
    answer (the worker's sweep calls this); returns their ids."""
    stopped = []
    moment = now or utcnow()
    for run in queue.store.list_by_status(RunStatus.AWAITING_BUDGET, limit=500):
        if not queue.serves(run):
            continue  # another queue's workers sweep it, and run it on their queue
        ask = run.artifacts.budget_ask
        if ask is None:
            continue
        try:
            asked = datetime.fromisoformat(ask.at)
        except ValueError:
            continue
        if moment - asked < timedelta(seconds=timeout_seconds):
            continue
        try:
            carry_out_stop(queue, run.id, "timeout", ask.at, timeout=True)
        except InvalidTransition:
            continue  # answered meanwhile
        log.info("run #%d: its budget question timed out; stopped", run.id)
        stopped.append(run.id)
    return stopped
