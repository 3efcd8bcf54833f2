"""review: a reviewer call in a fresh context. A blocking verdict buys one more fix
round (then the checks again, and a second, final review). The notes go in the PR."""

from __future__ import annotations

from jobs.agent.recorders import StoreRecorder
from jobs.blueprint.context import RunContext
from jobs.blueprint.providers import CountingModel
from jobs.blueprint.reviewer import review_diff as call_reviewer
from jobs.blueprint.sandbox import SandboxSession
from jobs.blueprint.steps.agent import agent_pass, finish_pass, record_prompt
from jobs.blueprint.steps.checks import checks as run_checks_step
from jobs.blueprint.steps.checks import latest_results, stable
from jobs.checks import CheckResult, excerpt
from runs.events import Reviewed
from runs.record import Run


def checks_text(results: list[CheckResult]) -> str:
    """The check results as the reviewer sees them: outcome and failing tests."""
    if not results:
        return "No checks are configured or detected for this repository."
    lines = []
    for r in results:
        state = "passed" if r.passed else "failed"
        lines.append(f"- `{r.command}`: {state} (exit {r.exit_code})")
        for failure in r.failures:
            label = " (pre-existing: also fails on the base commit)" if failure.preexisting else ""
            message = stable(excerpt(failure.message, 400))
            lines.append(f"  - {failure.test_id}{label}: {message}")
    return "\n".join(lines)


def _review_once(ctx: RunContext) -> None:
    run = ctx.run()
    deps = ctx.deps
    model_id = deps.agent.roles.model_reviewer
    result = call_reviewer(
        ctx.model,
        model_id=model_id,
        prices=deps.agent.price_table,
        max_tokens=deps.agent.max_output_tokens,
        request=run.request,
        diff=run.artifacts.patch or "",
        checks=checks_text(latest_results(run)),
        diff_chars=deps.config.review_diff_chars,
    )
    StoreRecorder(ctx.store, run.id, by="agent:reviewer").on_cost(result.cost)
    counted = ctx.model if isinstance(ctx.model, CountingModel) else None

    def reviewed(run: Run) -> None:
        run.artifacts.review_rounds += 1
        run.artifacts.review = {
            "verdict": result.verdict,
            "notes": result.notes,
            "round": run.artifacts.review_rounds,
            "model": model_id,
        }
        if counted is not None:
            run.artifacts.model_calls = counted.calls
            record_prompt(run, "reviewer", counted.last_prompt_hash)

    event = Reviewed(
        by="agent:reviewer",
        verdict=result.verdict,
        text=f"review: {result.verdict}" + (f": {result.notes}" if result.notes else ""),
    )
    ctx.save(reviewed, [event])


def _fix_for_review(ctx: RunContext, session: SandboxSession) -> None:
    run = ctx.run()
    notes = (run.artifacts.review or {}).get("notes") or "(no notes)"
    fixed = agent_pass(
        ctx,
        session,
        "A reviewer blocked your change. Address the review, keep the checks passing:\n\n"
        + str(notes),
    )

    def after(run: Run) -> None:
        finish_pass(run, fixed)
        run.artifacts.review_fixed = True

    ctx.save(after)


def review(ctx: RunContext, session: SandboxSession) -> None:
    a = ctx.run().artifacts
    if a.review_rounds == 0:
        _review_once(ctx)
    a = ctx.run().artifacts
    blocked = (a.review or {}).get("verdict") == "block"
    if not blocked or a.review_rounds > 1:
        return
    if not a.review_fixed:
        _fix_for_review(ctx, session)
    run_checks_step(ctx, session, phase="after review")
    _review_once(ctx)
