"""review: the reviewer and the specialist reviewers the diff calls for, each a
read-only pass in a fresh context (:mod:`jobs.blueprint.reviewer`).

A blocking verdict, or a specialist finding at ``AGENTS_BLOCK_SEVERITY`` or worse,
buys one more fix round (then the checks again, and a second, final round of reviews).
A specialist's blocking finding that is still there after it blocks publishing: the
run ends with the findings as its reason. Milder findings become review comments on
the pull request (:mod:`jobs.blueprint.steps.publish`). Each review is saved as it
ends, so a resumed job runs only the reviews it has not got yet.
"""

from __future__ import annotations

from typing import Any

from jobs.blueprint.context import RunContext
from jobs.blueprint.providers import CountingModel
from jobs.blueprint.reviewer import Review, run_reviewer
from jobs.blueprint.sandbox import SandboxSession
from jobs.blueprint.specialists import Specialist, chosen, is_blocking, where
from jobs.blueprint.steps.agent import agent_pass, finish_pass, record_prompt
from jobs.blueprint.steps.checks import checks as run_checks_step
from jobs.blueprint.steps.checks import latest_results, stable
from jobs.checks import excerpt
from process.exceptions import StepFailed
from runs.artifacts import CheckResult, ReviewOutcome, SpecialistOutcome
from runs.events import Reviewed, SpecialistReviewed
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


def _calls(ctx: RunContext) -> tuple[int | None, str | None]:
    counted = ctx.model if isinstance(ctx.model, CountingModel) else None
    return (counted.calls, counted.last_prompt_hash) if counted else (None, None)


def _saved(run: Run, calls: int | None, digest: str | None, role: str) -> None:
    run.artifacts.agent_resume = None
    if calls is not None:
        run.artifacts.model_calls = calls
        record_prompt(run, role, digest)


def _general(ctx: RunContext, session: SandboxSession, number: int) -> None:
    result = run_reviewer(ctx, session, checks_text(latest_results(ctx.run())))
    calls, digest = _calls(ctx)

    def reviewed(run: Run) -> None:
        run.artifacts.review = ReviewOutcome(
            verdict=result.verdict,
            notes=result.notes,
            round=number,
            model=result.model,
            criteria=result.criteria,
            findings=result.findings,
        )
        _saved(run, calls, digest, "reviewer")

    event = Reviewed(
        by="agent:reviewer",
        verdict=result.verdict,
        text=f"review: {result.verdict}" + (f": {result.notes}" if result.notes else ""),
    )
    ctx.save(reviewed, [event])


def _specialist(
    ctx: RunContext, session: SandboxSession, specialist: Specialist, number: int
) -> None:
    result: Review = run_reviewer(
        ctx, session, checks_text(latest_results(ctx.run())), specialist=specialist
    )
    threshold = ctx.deps.config.block_severity
    blocking = [f for f in result.findings if is_blocking(str(f.get("severity")), threshold)]
    calls, digest = _calls(ctx)

    def reviewed(run: Run) -> None:
        run.artifacts.specialists[specialist.name] = SpecialistOutcome(
            verdict=result.verdict,
            notes=result.notes,
            findings=result.findings,
            blocking_findings=blocking,
            round=number,
            model=result.model,
        )
        _saved(run, calls, digest, specialist.name)

    counted = f"{len(result.findings)} finding(s)"
    if blocking:
        counted += f", {len(blocking)} blocking"
    event = SpecialistReviewed(
        by=f"agent:{specialist.name}",
        specialist=specialist.name,
        verdict=result.verdict,
        findings=len(result.findings),
        blocking=len(blocking),
        text=f"{specialist.name} review: {result.verdict} ({counted})",
    )
    ctx.save(reviewed, [event])


def _round(ctx: RunContext, session: SandboxSession, number: int) -> None:
    """Every review of round ``number`` that is not saved yet, then the round."""
    general = ctx.run().artifacts.review
    if general is None or general.round != number:
        _general(ctx, session, number)
    rules = ctx.deps.config.specialist_rules
    for specialist in chosen(ctx.run().artifacts.patch or "", rules):
        saved = ctx.run().artifacts.specialists.get(specialist.name)
        if saved is None or saved.round != number:
            _specialist(ctx, session, specialist, number)

    def done(run: Run) -> None:
        run.artifacts.review_rounds = number

    ctx.save(done)


def blocking_findings(run: Run) -> list[tuple[str, dict[str, Any]]]:
    """The specialists' blocking findings, as (specialist, finding)."""
    return [
        (name, finding)
        for name, review in run.artifacts.specialists.items()
        for finding in review.blocking_findings
    ]


def _blocked(run: Run) -> bool:
    review = run.artifacts.review
    return (review is not None and review.blocks) or bool(blocking_findings(run))


def _describe(findings: list[tuple[str, dict[str, Any]]]) -> str:
    return "; ".join(
        f"[{name}, {f.get('severity')}] "
        + (f"{where(f)}: " if where(f) else "")
        + " ".join(str(f.get("text", "")).split())[:300]
        for name, f in findings
    )


def _fix_for_review(ctx: RunContext, session: SandboxSession) -> None:
    run = ctx.run()
    parts = []
    review = run.artifacts.review
    if review is not None and review.blocks:
        parts.append("The reviewer blocked it:\n\n" + (review.notes or "(no notes)"))
    findings = blocking_findings(run)
    if findings:
        parts.append(
            "Specialist reviewers found problems that block publishing:\n\n"
            + "\n".join(f"- {line}" for line in _describe(findings).split("; "))
        )
    fixed = agent_pass(
        ctx,
        session,
        "Your change was reviewed. Address the review, keep the checks passing:\n\n"
        + "\n\n".join(parts),
    )

    def after(run: Run) -> None:
        finish_pass(run, fixed)
        run.artifacts.review_fixed = True

    ctx.save(after)


def review(ctx: RunContext, session: SandboxSession) -> None:
    if ctx.run().artifacts.review_rounds == 0:
        _round(ctx, session, 1)
    run = ctx.run()
    if run.artifacts.review_rounds == 1 and _blocked(run):
        if not run.artifacts.review_fixed:
            _fix_for_review(ctx, session)
        run_checks_step(ctx, session, phase="after review")
        _round(ctx, session, 2)
    findings = blocking_findings(ctx.run())
    if findings:
        raise StepFailed(
            "publishing is blocked by the specialist review: " + _describe(findings)[:1500]
        )
