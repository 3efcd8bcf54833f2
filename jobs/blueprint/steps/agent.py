"""agent: the builder on the request (and the thread, earlier iterations, feedback and
the approved plan), and the passes every other step runs through the same loop: fix
rounds, the planner, the debugger and the reviewers (:func:`role_pass`)."""

from __future__ import annotations

from dataclasses import dataclass

from jobs.agent.edit_checks import EditCheck
from jobs.agent.loop import AgentResult, Checkpoint, run_agent
from jobs.agent.prompt import Task
from jobs.agent.recorders import StoreRecorder
from jobs.blueprint.budget import pause_for_budget
from jobs.blueprint.context import RunContext
from jobs.blueprint.providers import CountingModel
from jobs.blueprint.sandbox import SandboxSession
from jobs.blueprint.spec import approved, contract
from jobs.repo_config import RepoConfig
from process.exceptions import CapReached, Draining, Interrupted, StepFailed
from process.settings import Role
from runs.artifacts import AgentResume
from runs.record import Run, Step
from sandboxes.protocol import Sandbox


@dataclass(frozen=True)
class Pass:
    """One finished agent pass: what it said and the change in the workspace after it."""

    summary: str
    notes: str
    patch: str
    calls: int
    prompt_hash: str | None
    on_edit_seconds: float = 0.0
    on_edit_runs: int = 0


def check_command(config: RepoConfig) -> str | None:
    commands = [check.run for check in config.checks]
    return " && ".join(commands) if commands else None


def agent_context(run: Run) -> str | None:
    """What the agent is told besides the request: the thread, earlier iterations, and
    the feedback this iteration addresses."""
    parts: list[str] = []
    if run.context:
        parts.append(
            "Earlier messages in the chat thread where this was asked:\n" + run.context.strip()
        )
    a = run.artifacts
    if a.earlier_summaries:
        done = "\n".join(f"- iteration {n}: {s}" for n, s in enumerate(a.earlier_summaries, 1))
        parts.append(
            f"This is iteration {run.iteration}, on the branch the earlier iterations "
            f"pushed; the workspace already holds their changes. What they did:\n{done}"
        )
    if a.feedback:
        requester = [f for f in a.feedback if f.by == run.requester]
        others = [f for f in a.feedback if f.by != run.requester]
        lines = [f"- from the requester: {f.text}" for f in requester]
        lines += [f"- from <@{f.by}>, who may also decide on this run: {f.text}" for f in others]
        parts.append(
            "Feedback on the last iteration, with who wrote it; address it now:\n"
            + "\n".join(lines)
        )
    return "\n\n".join(parts) or None


def pending_pass(run: Run, name: str = "builder") -> Checkpoint | None:
    """The pass named ``name`` that was stopped in the run's current step (a draining
    worker, or the budget's cap), if any."""
    pending = run.artifacts.agent_resume
    if pending is None or run.step is None or pending.step != run.step.value:
        return None
    if pending.pass_name != name:
        return None
    return resumed_pass(pending)


def kept_pass(step: Step, name: str, checkpoint: Checkpoint) -> AgentResume:
    """A pass stopped at ``checkpoint``, as the run record keeps it."""
    return AgentResume(
        step=step.value,
        pass_name=name,
        system=checkpoint.system,
        messages=checkpoint.messages,
        turns=checkpoint.turns,
        cost=checkpoint.cost.model_copy(),
        trimmed_at=checkpoint.trimmed_at,
        model=checkpoint.model,
    )


def resumed_pass(pending: AgentResume) -> Checkpoint:
    """Where a kept pass stood, for the agent loop to continue it."""
    return Checkpoint(
        system=pending.system,
        messages=list(pending.messages),
        turns=pending.turns,
        cost=pending.cost.model_copy(),
        trimmed_at=pending.trimmed_at,
        model=pending.model,
    )


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise StepFailed(
            "the change touches a text file that is not UTF-8; this bot only publishes "
            "UTF-8 text and binary files"
        ) from None


def role_pass(
    ctx: RunContext,
    role: Role,
    task: Task,
    sandbox: Sandbox,
    *,
    name: str | None = None,
    keeps_patch: bool = False,
) -> AgentResult:
    """One pass of the agent loop as ``role`` (named ``name``, e.g. a specialist),
    against the iteration's budget.

    When the job's worker drains (:mod:`jobs.drain`), the pass stops after its current
    turn; at the budget's cap it stops before its next call. Either way it saves the
    calls used, its conversation (``artifacts.agent_resume``, tagged with the step and
    the pass's name) and, for a pass whose sandbox holds the change (``keeps_patch``),
    the patch so far. Draining hands the run back (:class:`Draining`); the cap pauses
    it to ask for more (:mod:`jobs.blueprint.budget`), except an eval task's run, which
    stops at its cap as a limit. The next job's pass of the same
    name in this step continues that conversation. Whoever saves the pass's result
    clears ``agent_resume`` in the same write (:func:`finish_pass`).
    """
    run = ctx.run()
    label = name or role
    model = ctx.model
    counted = model if isinstance(model, CountingModel) else None
    config = ctx.repo_config()
    try:
        return run_agent(
            task,
            sandbox=sandbox,
            model=model,
            recorder=StoreRecorder(ctx.store, run.id, by=f"agent:{label}", role=role),
            config=ctx.agent_config(),
            role=role,
            budget=ctx.budget,
            should_stop=ctx.draining,
            resume=pending_pass(run, label),
            ask_at_cap=not run.evaluation,  # an eval task's run has nobody to ask
            on_edit=[EditCheck(c.run, c.files, float(c.timeout)) for c in config.on_edit]
            if role == "builder"
            else (),
            name=name,
        )
    except Interrupted as stop:
        step = run.step
        assert step is not None
        patch = _decode(sandbox.export_patch()) if keeps_patch else None
        checkpoint = kept_pass(step, label, stop.checkpoint)

        def stopped(run: Run) -> None:
            if patch is not None:
                run.artifacts.patch = patch
            run.artifacts.agent_resume = checkpoint
            if counted is not None:
                run.artifacts.model_calls = counted.calls

        if isinstance(stop, CapReached):
            pause_for_budget(ctx, stop.error, stopped)
        ctx.save(stopped)
        raise Draining(step, f"after turn {stop.checkpoint.turns}") from None


def agent_pass(ctx: RunContext, session: SandboxSession, extra: str | None = None) -> Pass:
    """Run the builder once in the session's sandbox; ``extra`` adds to its context
    (a failure slice, a review, a root-cause note). An approved plan is its contract."""
    run = ctx.run()
    config = ctx.repo_config()
    sandbox = session.get("agent")
    context = "\n\n".join(part for part in (agent_context(run), extra) if part) or None
    plan = approved(run)
    task = Task(
        repo=run.repo,
        request=run.request,
        check_command=check_command(config),
        context=context,
        contract=contract(plan) if plan is not None else None,
    )
    result = role_pass(ctx, "builder", task, sandbox, keeps_patch=True)
    counted = ctx.model if isinstance(ctx.model, CountingModel) else None
    patch = _decode(sandbox.export_patch())
    return Pass(
        summary=result.summary,
        notes=result.notes_for_reviewer,
        patch=patch,
        calls=counted.calls if counted else 0,
        prompt_hash=counted.last_prompt_hash if counted else None,
        on_edit_seconds=result.on_edit_seconds,
        on_edit_runs=result.on_edit_runs,
    )


def finish_pass(run: Run, done: Pass) -> None:
    """Save a finished pass's change and calls; no pass is pending after it."""
    run.artifacts.patch = done.patch
    run.artifacts.model_calls = done.calls
    run.artifacts.agent_resume = None
    run.artifacts.on_edit_seconds += done.on_edit_seconds
    run.artifacts.on_edit_runs += done.on_edit_runs


def record_prompt(run: Run, role: str, digest: str | None) -> None:
    manifest = run.artifacts.manifest
    if manifest is not None and digest:
        manifest.prompt_sha256[role] = digest


def agent(ctx: RunContext, session: SandboxSession) -> None:
    done = agent_pass(ctx, session)
    run = ctx.run()
    if not done.patch.strip() and run.iteration == 1:
        raise StepFailed(f"the agent finished without changing anything: {done.summary}")

    def finished(run: Run) -> None:
        finish_pass(run, done)
        run.artifacts.summary = done.summary
        run.artifacts.notes_for_reviewer = done.notes or None
        record_prompt(run, "builder", done.prompt_hash)
        # Completed in the same write as the pass's calls: a job killed after this
        # write must not run the pass again (a replayed model would be past its end).
        if Step.AGENT not in run.artifacts.completed_steps:
            run.artifacts.completed_steps.append(Step.AGENT)

    ctx.save(finished)
