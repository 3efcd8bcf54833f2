"""plan: before any code, a read-only planner explores the repository and writes a
spec (:mod:`jobs.blueprint.spec`); the run then waits for a person at a checkpoint.

A run plans when its requester asked (``@agents plan in acme/api: ...``), when the
repository's ``.agents.yml`` says ``plan: always``, or when the request is past the
operator's threshold (``AGENTS_PLAN_WHEN``: longer than N characters, or naming more
than N files). Otherwise the step does nothing.

Writing a version and pausing are one checked write (``running -> awaiting_plan``,
with a ``plan`` event the thread shows with Approve plan and Revise plan), and the job
ends: no worker is held while a person reads. Approve queues the run with the version
approved; Revise queues it with the feedback, and this step writes the next version.
The approved spec is the builder's contract, and the reviewer's criteria.
"""

from __future__ import annotations

import re

from jobs.agent.prompt import Task
from jobs.attempts import same_attempt
from jobs.blueprint.context import RunContext
from jobs.blueprint.providers import CountingModel
from jobs.blueprint.sandbox import SandboxSession
from jobs.blueprint.spec import latest, spec_markdown, summary_line
from jobs.blueprint.steps.agent import agent_context, pending_pass, record_prompt, role_pass
from jobs.repo_config import RepoConfig
from process.exceptions import InvalidTransition, Paused, StepFailed, Superseded
from runs.artifacts import Spec
from runs.events import PlanProposed
from runs.record import Run, RunStatus

#: A file or path named in a request: ``retry.py``, ``src/app/models``, ``docs/a.md``.
_PATH = re.compile(
    r"(?<![\w@])(?:[\w.-]+/)+[\w.-]+"  # a path with a directory
    r"|(?<![\w@/.-])[\w-]{2,}\.(?:[a-z]{1,4}|[A-Za-z]{1,4}[0-9]?)\b(?!\.)"  # a file name
)


def named_paths(text: str) -> set[str]:
    """The files and paths a request names (URLs and e-mail addresses aside)."""
    cleaned = re.sub(r"\b\w+://\S+|\S+@\S+", " ", text)
    return {match.group(0).rstrip(".") for match in _PATH.finditer(cleaned)}


def wants_plan(run: Run, config: RepoConfig, rule: str) -> str | None:
    """Why this run plans before it builds, or None if it does not."""
    if run.evaluation:
        return None  # an eval task's run has nobody to approve a plan
    if run.iteration > 1 and not run.artifacts.plans:
        return None  # a rework builds on what iteration 1 did, plan or not
    if run.plan_asked:
        return "the requester asked for a plan"
    if config.plan == "always":
        return ".agents.yml says plan: always"
    for item in rule.split(","):
        kind, _, number = item.partition(">")
        if kind == "always":
            return "AGENTS_PLAN_WHEN=always"
        if kind == "chars" and len(run.request) > int(number):
            return f"the request is longer than {number} characters"
        if kind == "paths" and len(named_paths(run.request)) > int(number):
            return f"the request names more than {number} files"
    return None


def planner_task(run: Run) -> Task:
    """The planner's brief: the request, the thread, and for a revision the last
    version with the feedback on it (who wrote each piece)."""
    parts = [part for part in (agent_context(run),) if part]
    previous = latest(run)
    a = run.artifacts
    if previous is not None:
        lines = []
        for feedback in a.plan_feedback[previous.feedback_seen :]:
            who = "the requester" if feedback.by == run.requester else "an approver"
            lines.append(f"- from {who} (<@{feedback.by}>): {feedback.text}")
        parts.append(
            f"You wrote version {previous.version} of the plan; it was not approved. Write "
            f"version {previous.version + 1}, addressing this feedback:\n"
            + "\n".join(lines)
            + f"\n\nVersion {previous.version}:\n\n{spec_markdown(previous)}"
        )
    return Task(repo=run.repo, request=run.request, context="\n\n".join(parts) or None)


def plan_first(ctx: RunContext, session: SandboxSession) -> None:
    run = ctx.run()
    a = run.artifacts
    if a.plan_approved is not None:
        return
    if wants_plan(run, ctx.repo_config(), ctx.deps.config.plan_when) is None:
        return
    previous = latest(run)
    answered = previous is None or len(a.plan_feedback) > previous.feedback_seen
    if not answered and pending_pass(run, "planner") is None:
        # Written, and neither approved nor revised: wait for the answer again.
        assert previous is not None
        _await(ctx, previous, new=False)
    result = role_pass(ctx, "planner", planner_task(run), session.get("agent"))
    try:
        spec = Spec(
            version=len(a.plans) + 1,
            feedback_seen=len(a.plan_feedback),
            model=result.model,
            **result.output,
        )
    except (TypeError, ValueError) as err:
        raise StepFailed(f"the planner's plan could not be read: {err}") from None
    _await(ctx, spec, new=True)


def _await(ctx: RunContext, spec: Spec, *, new: bool) -> None:
    """Keep ``spec`` (if ``new``) and pause for its approval, in one checked write."""
    check = same_attempt(ctx.attempt)
    counted = ctx.model if isinstance(ctx.model, CountingModel) else None

    def waiting(run: Run) -> None:
        check(run)
        if new:
            run.artifacts.plans.append(spec)
        run.artifacts.agent_resume = None
        if counted is not None:
            run.artifacts.model_calls = counted.calls
            record_prompt(run, "planner", counted.last_prompt_hash)
        # A deliberate stop, not a crash: it does not count against max_attempts.
        run.handbacks["plan"] = run.handbacks.get("plan", 0) + 1

    try:
        ctx.store.transition(
            ctx.run_id,
            RunStatus.AWAITING_PLAN,
            by=ctx.by,
            reason=f"plan v{spec.version} written; waiting for its approval",
            expect=RunStatus.RUNNING,
            change=waiting,
            events=[
                PlanProposed(by="agent:planner", version=spec.version, text=summary_line(spec))
            ],
        )
    except InvalidTransition as err:
        raise Superseded(str(err)) from None
    raise Paused(f"plan v{spec.version} awaits approval")
