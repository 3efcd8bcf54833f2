"""Budgets that ask before they stop: the worker's half.

When a pass reaches the run's dollar or turn cap (the loop raises
:class:`~process.exceptions.CapReached` with its checkpoint), the run does not fail:
in one write it saves the pass's checkpoint and moves to ``awaiting_budget`` with a
question for its thread, "#42 has spent $4.80 of $5.00. Extend by $5?", and the job
ends. The answers are :mod:`jobs.pauses` (Extend, Stop here, and the timeout); Extend
queues the run again, and its next job continues the same pass with the larger cap.

An extension adds the repository's cap again, but dollars never go past the operator's
hard cap (``AGENTS_MAX_DOLLARS_HARD``): at it, only Stop here is offered.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NoReturn

from jobs.attempts import same_attempt
from jobs.blueprint.context import RunContext
from process.exceptions import DollarLimit, InvalidTransition, LimitsExceeded, Paused, Superseded
from runs.artifacts import BudgetAsk
from runs.events import BudgetAsked
from runs.record import Run, RunStatus, utcnow


def money(dollars: float) -> str:
    """``$5`` for whole dollars, ``$4.80`` otherwise."""
    return f"${dollars:.0f}" if abs(dollars - round(dollars)) < 0.005 else f"${dollars:.2f}"


def ask(ctx: RunContext, run: Run, cap: LimitsExceeded) -> BudgetAsk:
    """The question to ask, as it is kept on the run (``artifacts.budget_ask``)."""
    limits = ctx.agent_config().limits
    base = ctx.base_limits()
    spent_dollars = ctx.budget.cost.dollars
    if isinstance(cap, DollarLimit):
        limit = limits.max_dollars
        extend_by = round(max(0.0, min(base.max_dollars, limits.max_dollars_hard - limit)), 2)
        can_extend = extend_by >= 0.01
        text = f"{run.label} has spent ${spent_dollars:.2f} of ${limit:.2f}."
        if can_extend:
            text += f" Extend by {money(extend_by)}?"
        else:
            text += (
                f" That is the operator's hard cap ({money(limits.max_dollars_hard)}, "
                "AGENTS_MAX_DOLLARS_HARD), which can't be extended."
            )
        kind, spent = "dollars", spent_dollars
    else:
        limit = float(limits.max_turns)
        extend_by = float(base.max_turns)
        can_extend = True
        text = (
            f"{run.label} has used {ctx.budget.turns} of {limits.max_turns} model turns "
            f"(${spent_dollars:.2f} spent). Extend by {base.max_turns} turns?"
        )
        kind, spent = "turns", float(ctx.budget.turns)
    return BudgetAsk(
        limit_kind=kind,
        spent=spent,
        limit=limit,
        extend_by=extend_by,
        can_extend=can_extend,
        hard_cap=limits.max_dollars_hard,
        text=text,
        step=run.step.value if run.step else None,
        at=utcnow().isoformat(),
    )


def pause_for_budget(ctx: RunContext, cap: LimitsExceeded, save: Callable[[Run], None]) -> NoReturn:
    """Save the stopped pass (``save``) and pause the run with its question, in one
    checked write; the job then ends (:class:`Paused`)."""
    run = ctx.run()
    question = ask(ctx, run, cap)
    check = same_attempt(ctx.attempt)

    def paused(run: Run) -> None:
        check(run)
        save(run)
        run.artifacts.budget_ask = question
        # A deliberate stop, not a crash: it does not count against max_attempts.
        run.handbacks["budget"] = run.handbacks.get("budget", 0) + 1

    event = BudgetAsked(
        by=ctx.by,
        limit_kind=question.limit_kind,
        spent=question.spent,
        limit=question.limit,
        extend_by=question.extend_by,
        can_extend=question.can_extend,
        text=question.text,
    )
    try:
        ctx.store.transition(
            ctx.run_id,
            RunStatus.AWAITING_BUDGET,
            by=ctx.by,
            reason=f"paused at its {question.limit_kind} cap",
            expect=RunStatus.RUNNING,
            change=paused,
            events=[event],
        )
    except InvalidTransition as err:
        raise Superseded(str(err)) from None
    raise Paused(question.text)
