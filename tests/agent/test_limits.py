"""Every limit stops the run with its reason, and none is overshot by more than one call."""

from __future__ import annotations

from typing import Any

import pytest

from fakes.anthropic import Failure, FakeMessagesAPI, Received, message, text, tool_use
from jobs.agent.config import AgentConfig
from jobs.agent.limits import CallRecord, ProgressTracker, StepSpend
from jobs.agent.loop import run_agent
from jobs.agent.model import AnthropicModel
from jobs.agent.prompt import Task
from jobs.agent.recorders import MemoryRecorder
from process.exceptions import (
    DollarLimit,
    LimitsExceeded,
    NoProgress,
    TokenLimit,
    TurnLimit,
    WallClockLimit,
)
from process.settings import AgentLimits
from runs.artifacts import Cost
from runs.events import AgentTurn
from sandboxes.local_sandbox import LocalSandbox
from tests.agent.conftest import Sleeps

TASK = Task(repo="acme/retrying", request="make the retry limit configurable")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def busy_turns(count: int, **usage: Any) -> list[dict[str, Any]]:
    """Replies that each do something new, so only the limit under test can stop them."""
    return [
        message(tool_use(f"toolu_{n}", "run", {"command": f"echo {n}"}), **usage)
        for n in range(count)
    ]


def stopped(
    api: FakeMessagesAPI,
    model: AnthropicModel,
    sandbox: LocalSandbox,
    limits: AgentLimits,
    error: type[LimitsExceeded],
    **kwargs: Any,
) -> tuple[LimitsExceeded, MemoryRecorder]:
    recorder = MemoryRecorder()
    with pytest.raises(error) as caught:
        run_agent(
            TASK,
            sandbox=sandbox,
            model=model,
            recorder=recorder,
            config=AgentConfig(limits=limits),
            **kwargs,
        )
    assert recorder.stops == [(error.reason, str(caught.value))]
    return caught.value, recorder


def test_turn_limit(api: FakeMessagesAPI, model: AnthropicModel, sandbox: LocalSandbox) -> None:
    api.add(*busy_turns(10))
    err, recorder = stopped(api, model, sandbox, AgentLimits(max_turns=3), TurnLimit)
    assert len(api.requests) == 3
    assert (err.used, err.limit) == (3, 3)
    assert "AGENTS_MAX_TURNS" in str(err)
    assert len([e for e in recorder.events if isinstance(e, AgentTurn)]) == 3


def test_token_limit(api: FakeMessagesAPI, model: AnthropicModel, sandbox: LocalSandbox) -> None:
    api.add(*busy_turns(10, input_tokens=600, output_tokens=100, cache_read_tokens=300))
    err, recorder = stopped(api, model, sandbox, AgentLimits(max_tokens=2500), TokenLimit)
    # 1,000 tokens a call: the third call crosses 2,500, and no fourth call goes out.
    assert len(api.requests) == 3
    assert err.used == recorder.total.total_tokens == 3000
    assert err.used - 2500 < 1000


def test_dollar_limit(api: FakeMessagesAPI, model: AnthropicModel, sandbox: LocalSandbox) -> None:
    # claude-sonnet-5-5: 20,000 output tokens at $10 per million is $0.20 a call.
    api.add(*busy_turns(10, input_tokens=0, output_tokens=20_000))
    limits = AgentLimits(max_dollars=0.5, max_tokens=10_000_000)
    err, recorder = stopped(api, model, sandbox, limits, DollarLimit)
    assert len(api.requests) == 3
    assert err.used == pytest.approx(0.6)
    assert recorder.total.dollars == pytest.approx(0.6)
    assert "$0.6000" in str(err)
    assert "$0.50" in str(err)
    assert "AGENTS_MAX_DOLLARS" in str(err)


def test_wall_clock_limit(
    api: FakeMessagesAPI, model: AnthropicModel, sandbox: LocalSandbox
) -> None:
    clock = FakeClock()

    def a_minute_per_call(_: Received) -> None:
        clock.now += 60

    api.on_request = a_minute_per_call
    api.add(*busy_turns(10))
    err, _ = stopped(
        api, model, sandbox, AgentLimits(wall_clock_seconds=150), WallClockLimit, clock=clock
    )
    assert len(api.requests) == 3
    assert err.used == 180


def test_wall_clock_is_checked_between_tools(
    api: FakeMessagesAPI, model: AnthropicModel, sandbox: LocalSandbox
) -> None:
    clock = FakeClock()

    def slow_tool(_: Received) -> None:
        clock.now += 100

    api.on_request = slow_tool
    api.add(
        message(
            tool_use("toolu_1", "write_file", {"path": "one.txt", "content": "1"}),
            tool_use("toolu_2", "write_file", {"path": "two.txt", "content": "2"}),
        )
    )
    stopped(api, model, sandbox, AgentLimits(wall_clock_seconds=50), WallClockLimit, clock=clock)
    assert len(api.requests) == 1
    assert not (sandbox.root / "one.txt").exists()


def test_a_retry_never_waits_past_the_wall_clock(
    api: FakeMessagesAPI, model: AnthropicModel, sandbox: LocalSandbox, sleeps: Sleeps
) -> None:
    api.add(Failure(429, "rate_limit_error", headers={"retry-after": "40"}), *busy_turns(1))
    err, recorder = stopped(
        api, model, sandbox, AgentLimits(wall_clock_seconds=30), WallClockLimit, clock=FakeClock()
    )
    assert sleeps == []
    assert len(api.requests) == 1
    assert "waiting 40s to retry" in str(err)
    assert recorder.events[0].kind == "model_retry"


def test_no_progress_when_repeating_the_same_call(
    api: FakeMessagesAPI, model: AnthropicModel, sandbox: LocalSandbox
) -> None:
    same = tool_use("toolu_x", "read_file", {"path": "README.md"})
    api.add(*[message({**same, "id": f"toolu_{n}"}) for n in range(10)])
    err, _ = stopped(api, model, sandbox, AgentLimits(no_progress_turns=3), NoProgress)
    # The first read is new; the next three repeat it with the same result.
    assert len(api.requests) == 4
    assert err.used == 3
    assert "AGENTS_NO_PROGRESS_TURNS=3" in str(err)


def test_no_progress_when_turns_call_no_tools(
    api: FakeMessagesAPI, model: AnthropicModel, sandbox: LocalSandbox
) -> None:
    api.add(*[message(text("Thinking about it.")) for _ in range(10)])
    stopped(api, model, sandbox, AgentLimits(no_progress_turns=2), NoProgress)
    assert len(api.requests) == 2


def test_budget_is_shared_across_fix_rounds(
    api: FakeMessagesAPI, model: AnthropicModel, sandbox: LocalSandbox
) -> None:
    limits = AgentLimits(max_turns=3)
    budget = StepSpend(limits)
    finish = message(tool_use("toolu_f", "finish", {"summary": "done"}))
    api.add(*busy_turns(1), finish, finish)
    config = AgentConfig(limits=limits)
    first = run_agent(
        TASK, sandbox=sandbox, model=model, recorder=MemoryRecorder(), config=config, budget=budget
    )
    assert first.turns == 2
    second = run_agent(
        TASK, sandbox=sandbox, model=model, recorder=MemoryRecorder(), config=config, budget=budget
    )
    assert second.turns == 3
    with pytest.raises(TurnLimit):
        run_agent(
            TASK,
            sandbox=sandbox,
            model=model,
            recorder=MemoryRecorder(),
            config=config,
            budget=budget,
        )
    assert len(api.requests) == 3


# -- the pieces on their own ----------------------------------------------------------


def test_budget_checks_every_limit_before_a_call() -> None:
    clock = FakeClock()
    budget = StepSpend(
        AgentLimits(max_turns=5, max_tokens=1000, max_dollars=1.0, wall_clock_seconds=60),
        clock=clock,
    )
    budget.before_call()
    budget.charge(Cost(input_tokens=999, dollars=0.99))
    budget.before_call()  # just under every limit: one more call may go out
    budget.charge(Cost(cache_write_tokens=1))
    with pytest.raises(TokenLimit):
        budget.before_call()

    budget = StepSpend(AgentLimits(max_dollars=1.0), clock=clock)
    budget.charge(Cost(dollars=1.0))
    with pytest.raises(DollarLimit):
        budget.before_call()

    budget = StepSpend(AgentLimits(wall_clock_seconds=60), clock=clock)
    clock.now += 59.5
    assert budget.remaining_seconds() == 0.5
    clock.now += 0.5
    with pytest.raises(WallClockLimit):
        budget.before_call()
    assert budget.remaining_seconds() == 0.0


def call(result: str, name: str = "run", args: Any = None) -> CallRecord:
    return CallRecord(name, args or {"command": "pytest -q"}, result, is_error=False)


def test_progress_ignores_durations_but_not_outcomes() -> None:
    tracker = ProgressTracker(limit=2)
    tracker.record_turn([call("1 failed in 0.31s")])
    tracker.record_turn([call("1 failed in 0.29s")])  # same outcome, other duration: stale
    assert tracker.stale_turns == 1
    tracker.record_turn([call("2 passed in 0.30s")])  # something changed: progress
    assert tracker.stale_turns == 0
    tracker.record_turn([call("2 passed in 0.33s")])
    with pytest.raises(NoProgress):
        tracker.record_turn([])


def test_one_new_call_makes_a_turn_progress() -> None:
    tracker = ProgressTracker(limit=2)
    tracker.record_turn([call("a")])
    tracker.record_turn([call("a"), call("b", name="read_file", args={"path": "x"})])
    assert tracker.stale_turns == 0
