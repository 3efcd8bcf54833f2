"""The reviewers: the reviewer and the specialists, each a read-only pass of the agent
loop (:mod:`jobs.agent.roles`) in a fresh context.

A reviewer sees the request, the approved plan (its acceptance criteria numbered), the
diff and the check results; it may read the repository to judge the change in context.
It never sees the builder's conversation. It ends with the ``verdict`` tool: a verdict,
one verdict per acceptance criterion, and findings with a severity.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from jobs.agent.prompt import Task
from jobs.blueprint.context import RunContext
from jobs.blueprint.sandbox import SandboxSession
from jobs.blueprint.spec import approved, spec_markdown
from jobs.blueprint.specialists import Specialist
from jobs.blueprint.steps.agent import role_pass
from jobs.checks import excerpt

Verdict = Literal["approve", "comment", "block"]
VERDICTS: tuple[Verdict, ...] = ("approve", "comment", "block")


@dataclass(frozen=True)
class Review:
    verdict: Verdict
    notes: str
    model: str
    criteria: list[dict[str, Any]] = field(default_factory=list)
    findings: list[dict[str, Any]] = field(default_factory=list)


def review_context(ctx: RunContext, checks: str, *, specialist: Specialist | None = None) -> str:
    """What a reviewer is shown besides the request: the plan, the diff, the checks."""
    run = ctx.run()
    diff_chars = ctx.deps.config.review_diff_chars
    parts = []
    plan = approved(run)
    if plan is not None:
        parts.append(
            f"The plan the requester approved (version {plan.version}); give a verdict on "
            f"each of its {len(plan.acceptance_criteria)} acceptance criteria:\n\n"
            + spec_markdown(plan)
        )
    parts.append("The diff:\n\n" + (excerpt(run.artifacts.patch or "", diff_chars) or "(empty)"))
    parts.append("The repository's checks on it:\n\n" + (checks.strip() or "no checks were run"))
    if specialist is not None:
        parts.append(
            f"You are the {specialist.name} reviewer: judge only {specialist.focus}. Other "
            "reviewers cover the rest. A finding of high or critical severity blocks "
            "publishing; milder ones become review comments on the pull request."
        )
    return "\n\n".join(parts)


def run_reviewer(
    ctx: RunContext,
    session: SandboxSession,
    checks: str,
    *,
    specialist: Specialist | None = None,
) -> Review:
    """One review pass, as the reviewer or as ``specialist``, against the budget."""
    run = ctx.run()
    task = Task(
        repo=run.repo,
        request=run.request,
        context=review_context(ctx, checks, specialist=specialist),
        focus=specialist.focus if specialist is not None else None,
    )
    result = role_pass(
        ctx,
        "reviewer",
        task,
        session.get("agent"),
        name=specialist.name if specialist is not None else None,
    )
    given = result.output
    verdict = given.get("verdict")
    notes = str(given.get("notes") or result.summary or "").strip()
    return Review(
        verdict=verdict if verdict in VERDICTS else "comment",
        notes=notes or "The reviewer gave no notes.",
        model=result.model,
        criteria=list(given.get("criteria") or []),
        findings=list(given.get("findings") or []),
    )
