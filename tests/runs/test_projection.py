"""The thread's view of a run, for every status."""

from __future__ import annotations

from datetime import timedelta

import pytest

from process.settings import AgentLimits
from runs.artifacts import Cost
from runs.events import AgentTurn
from runs.projection import StepState, project, render_text
from runs.record import Run, RunStatus, Step


def make(status: RunStatus, **kw: object) -> Run:
    run = Run(id=42, requester="U1", repo="acme/api", request="make retries configurable")
    return run.model_copy(update={"status": status, **kw})


def tool(turn: int, summary: str) -> AgentTurn:
    return AgentTurn(by="agent", turn=turn, text=summary)


@pytest.mark.parametrize("status", list(RunStatus))
def test_every_status_projects_and_renders(status: RunStatus) -> None:
    view = project(make(status), [])
    text = render_text(view)
    assert text.startswith(f"#42 acme/api: {status.value.replace('_', ' ')}")
    assert view.steps[0][0] is Step.PREPARE
    expected = {
        RunStatus.AWAITING_DECISION: ["approve", "rework", "cancel"],
        RunStatus.QUEUED: ["cancel"],
        RunStatus.RUNNING: ["cancel"],
        RunStatus.REWORK: ["cancel"],
        # Paused for a person (the plan, the budget): the answer is in its own message.
        RunStatus.AWAITING_PLAN: ["cancel"],
        RunStatus.AWAITING_BUDGET: ["cancel"],
    }.get(status, [])
    assert view.buttons == expected


def test_running_run_shows_progress_activity_and_budget() -> None:
    run = make(
        RunStatus.RUNNING,
        step=Step.AGENT,
        cost=Cost(input_tokens=1200, output_tokens=300, dollars=0.1234),
    )
    run.artifacts.completed_steps = [Step.PREPARE]
    events = [tool(1, "read_file src/retry.py"), tool(2, "edit_file src/retry.py")]
    view = project(
        run,
        events,
        budget=AgentLimits(max_turns=40, max_dollars=5.0),
        now=run.created_at + timedelta(seconds=75),
    )
    assert view.steps[:3] == [
        (Step.PREPARE, StepState.DONE),
        (Step.AGENT, StepState.ACTIVE),
        (Step.CHECKS, StepState.PENDING),
    ]
    assert view.activity == "edit_file src/retry.py"
    assert (view.turns, view.tokens, view.elapsed_seconds) == (2, 1500, 75)
    text = render_text(view)
    assert "turns 2/40" in text
    assert "$0.12/$5.00" in text
    assert "1m15s" in text
    assert "now: edit_file src/retry.py" in text


def test_failed_run_marks_where_it_stopped() -> None:
    run = make(RunStatus.FAILED, error="checks failed twice")
    run.artifacts.completed_steps = [Step.PREPARE, Step.AGENT]
    view = project(run, [tool(3, "run pytest")])
    assert view.steps[2] == (Step.CHECKS, StepState.FAILED)
    assert view.activity is None
    assert "error: checks failed twice" in render_text(view)


def test_pr_link_is_shown_once_it_exists() -> None:
    run = make(RunStatus.AWAITING_DECISION)
    run.artifacts.pr_url = "https://github.com/acme/api/pull/7"
    assert "PR: https://github.com/acme/api/pull/7" in render_text(project(run, []))
