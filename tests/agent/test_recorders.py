"""StoreRecorder: the loop's events, cost and stop reason land on the run in Redis."""

from __future__ import annotations

import pytest
import redis

from fakes.anthropic import FakeMessagesAPI, message, tool_use
from jobs.agent.config import AgentConfig
from jobs.agent.loop import run_agent
from jobs.agent.model import AnthropicModel
from jobs.agent.prompt import Task
from jobs.agent.recorders import StoreRecorder
from process.exceptions import TurnLimit
from process.settings import AgentLimits
from runs.events import AgentFinished, AgentStopped, AgentTurn, RunCreated
from runs.store import RunStore
from sandboxes.local_sandbox import LocalSandbox

TASK = Task(repo="acme/retrying", request="make the retry limit configurable")


def test_a_run_records_turns_and_cost_on_the_run(
    redis_conn: redis.Redis,
    api: FakeMessagesAPI,
    model: AnthropicModel,
    sandbox: LocalSandbox,
) -> None:
    store = RunStore(redis_conn, prefix="agenttest")
    run = store.create(requester="U1", repo=TASK.repo, request=TASK.request)
    api.add(
        message(
            tool_use("toolu_1", "read_file", {"path": "README.md"}),
            input_tokens=1000,
            output_tokens=100,
            cache_write_tokens=2000,
        ),
        message(
            tool_use("toolu_2", "finish", {"summary": "done"}),
            input_tokens=50,
            output_tokens=30,
            cache_read_tokens=2000,
        ),
    )
    run_agent(TASK, sandbox=sandbox, model=model, recorder=StoreRecorder(store, run.id))

    stored = store.get(run.id)
    assert stored.cost.input_tokens == 1050
    assert stored.cost.output_tokens == 130
    assert stored.cost.cache_write_tokens == 2000
    assert stored.cost.cache_read_tokens == 2000
    dollars = (1050 * 2.0 + 130 * 10.0 + 2000 * 2.5 + 2000 * 0.1) / 1_000_000
    assert stored.cost.dollars == pytest.approx(dollars)
    events = store.events(run.id)
    assert [type(e) for e in events] == [RunCreated, AgentTurn, AgentTurn, AgentFinished]
    turn = events[1]
    assert isinstance(turn, AgentTurn)
    assert turn.text == "read_file README.md"
    assert turn.calls[0].result_chars > 0
    assert stored.error is None


def test_a_stop_records_its_reason_on_the_run(
    redis_conn: redis.Redis,
    api: FakeMessagesAPI,
    model: AnthropicModel,
    sandbox: LocalSandbox,
) -> None:
    store = RunStore(redis_conn, prefix="agenttest")
    run = store.create(requester="U1", repo=TASK.repo, request=TASK.request)
    api.add(*[message(tool_use(f"toolu_{n}", "run", {"command": f"echo {n}"})) for n in range(5)])
    with pytest.raises(TurnLimit) as caught:
        run_agent(
            TASK,
            sandbox=sandbox,
            model=model,
            recorder=StoreRecorder(store, run.id),
            config=AgentConfig(limits=AgentLimits(max_turns=2)),
        )
    stored = store.get(run.id)
    assert stored.error == str(caught.value)
    last = store.events(run.id)[-1]
    assert isinstance(last, AgentStopped)
    assert (last.reason, last.text) == ("max_turns", str(caught.value))
