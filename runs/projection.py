"""A run as its thread shows it: a pure function of the run record and its events.

The Slack reporter renders this view as Block Kit; ``agents run`` and ``agents demo``
render it as text. Neither reads anything else, so all three always agree.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from process.settings import AgentLimits
from runs.events import AgentTurn, Event, StepStarted
from runs.record import EnvironmentUse, Run, RunStatus, Step, utcnow

#: The steps a thread lists, in order (awaiting a decision is the status, not a step).
CHECKLIST = (
    Step.PREPARE,
    Step.PLAN,
    Step.AGENT,
    Step.CHECKS,
    Step.REVIEW,
    Step.PUBLISH,
    Step.WATCH_CI,
)


class StepState(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    DONE = "done"
    FAILED = "failed"


class ThreadView(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str
    repo: str
    request: str
    requester: str
    status: RunStatus
    steps: list[tuple[Step, StepState]]
    activity: str | None
    elapsed_seconds: int
    iteration: int
    turns: int
    tokens: int
    dollars: float
    budget: AgentLimits | None
    pr_url: str | None
    error: str | None
    buttons: list[str]
    #: The builder's todo list: (text, done), as it last set it.
    todos: list[tuple[str, bool]] = []
    #: "usually ~7 min, ~$1.10": what similar runs took, until this one has finished.
    estimate: str | None = None
    #: Which environment the sandboxes start from, and whether it was built or reused.
    environment: str | None = None


def _step_states(run: Run) -> list[tuple[Step, StepState]]:
    done = set(run.artifacts.completed_steps)
    states = []
    paused = (RunStatus.RUNNING, RunStatus.AWAITING_PLAN, RunStatus.AWAITING_BUDGET)
    for step in CHECKLIST:
        if step is Step.PLAN and not run.artifacts.plans:
            continue  # a run that does not plan shows no plan step
        if step in done:
            state = StepState.DONE
        elif run.step is step and run.status in paused:
            state = StepState.ACTIVE
        else:
            state = StepState.PENDING
        states.append((step, state))
    if run.status is RunStatus.FAILED:
        # The first step not completed is where it stopped.
        for index, (step, state) in enumerate(states):
            if state is not StepState.DONE:
                states[index] = (step, StepState.FAILED)
                break
    return states


def _ago(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} days"


def describe_environment(env: EnvironmentUse | None, now: datetime) -> str | None:
    """One line on the run's environment: waiting for it, built, or reused."""
    if env is None:
        return None
    name = f"environment {env.key[:12]}"
    expected = (
        f"the last build took {_ago(env.expected_seconds)}"
        if env.expected_seconds is not None
        else "no earlier build to go by"
    )
    if env.outcome == "building":
        return f"building {name} ({expected})"
    if env.outcome == "waiting":
        started = f"started {_ago((now - env.since).total_seconds())} ago; " if env.since else ""
        return f"waiting for {name}, which another run is building ({started}{expected})"
    used = f"{env.sandboxes} sandbox{'es' if env.sandboxes != 1 else ''}"
    if env.from_pool:
        used += f", {env.from_pool} from the warm pool"
    if env.updates:
        used += f", updated {env.updates}x"
    if env.outcome == "built":
        took = f" in {_ago(env.build_seconds)}" if env.build_seconds is not None else ""
        return f"{name} built{took} ({used})"
    age = f"built {_ago((now - env.built_at).total_seconds())} ago; " if env.built_at else ""
    return f"{name} reused ({age}{used})"


def _buttons(status: RunStatus) -> list[str]:
    if status is RunStatus.AWAITING_DECISION:
        return ["approve", "rework", "cancel"]
    if status.is_final:
        return []
    return ["cancel"]


def project(
    run: Run, events: list[Event], *, budget: AgentLimits | None = None, now: datetime | None = None
) -> ThreadView:
    """The thread's view of ``run``; ``events`` is its log in order (a tail is enough)."""
    activity = None
    turns = 0
    for event in events:
        if isinstance(event, AgentTurn):
            activity = event.text or activity or ""
            turns = max(turns, event.turn)
        elif isinstance(event, StepStarted):
            activity = None
    end = run.finished_at or now or utcnow()
    return ThreadView(
        label=run.label,
        repo=run.repo,
        request=run.request,
        requester=run.requester,
        status=run.status,
        steps=_step_states(run),
        activity=activity if run.status is RunStatus.RUNNING else None,
        elapsed_seconds=max(int((end - run.created_at).total_seconds()), 0),
        iteration=run.iteration,
        turns=turns,
        tokens=run.cost.total_tokens,
        dollars=run.cost.dollars,
        budget=budget or _extended(run),
        pr_url=run.artifacts.pr_url,
        error=run.error,
        buttons=_buttons(run.status),
        todos=[(item.text, item.done) for item in run.artifacts.todos],
        estimate=_estimate(run),
        environment=describe_environment(run.artifacts.environment, now or utcnow()),
    )


def _extended(run: Run) -> AgentLimits | None:
    """The run's limits with what Extend added in this iteration (dollars never past
    the hard cap)."""
    limits, a = run.budget, run.artifacts
    if limits is None or not (a.extra_dollars or a.extra_turns):
        return limits
    return limits.model_copy(
        update={
            "max_turns": limits.max_turns + a.extra_turns,
            "max_dollars": min(limits.max_dollars + a.extra_dollars, limits.max_dollars_hard),
        }
    )


def _estimate(run: Run) -> str | None:
    """The estimate while the run works toward its pull request, then nothing."""
    if run.estimate is None or run.artifacts.pr_url or run.status.is_final:
        return None
    return f"{run.estimate.text} (the median of the last {run.estimate.runs} runs here)"


_MARKS = {
    StepState.DONE: "[x]",
    StepState.ACTIVE: "[>]",
    StepState.PENDING: "[ ]",
    StepState.FAILED: "[!]",
}


def render_text(view: ThreadView) -> str:
    """The view as plain text, for terminals and logs."""
    minutes, seconds = divmod(view.elapsed_seconds, 60)
    budget = view.budget
    turns = f"{view.turns}/{budget.max_turns}" if budget else str(view.turns)
    dollars = f"${view.dollars:.2f}" + (f"/${budget.max_dollars:.2f}" if budget else "")
    lines = [
        f"{view.label} {view.repo}: {view.status.value.replace('_', ' ')}",
        f"  request: {view.request}",
        "  " + "  ".join(f"{_MARKS[state]} {step.value}" for step, state in view.steps),
        f"  iteration {view.iteration} · {minutes}m{seconds:02d}s · turns {turns} · "
        f"tokens {view.tokens:,} · {dollars}",
    ]
    if view.todos:
        lines.append(
            "  todo: "
            + "  ".join(f"{'[x]' if done else '[ ]'} {text}" for text, done in view.todos)
        )
    if view.estimate:
        lines.append(f"  estimate: {view.estimate}")
    if view.activity:
        lines.append(f"  now: {view.activity}")
    if view.environment:
        lines.append(f"  {view.environment}")
    if view.pr_url:
        lines.append(f"  PR: {view.pr_url}")
    if view.error:
        lines.append(f"  error: {view.error}")
    if view.buttons:
        lines.append("  actions: " + ", ".join(view.buttons))
    return "\n".join(lines)
