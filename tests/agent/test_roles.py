"""The roles of the one loop, fallbacks, the todo tool, on_edit checks and the budget's
cap: the real SDK over HTTP to the fake Messages API, tools in a real sandbox."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import fakeredis
import pytest

from fakes.anthropic import Failure, FakeMessagesAPI, message, text, tool_use
from jobs.agent.config import AgentConfig
from jobs.agent.edit_checks import EditCheck
from jobs.agent.loop import run_agent
from jobs.agent.model import AnthropicModel
from jobs.agent.prompt import Task
from jobs.agent.recorders import MemoryRecorder, StoreRecorder
from jobs.agent.replay import RecordingModel, ReplayModel
from jobs.agent.roles import AGENT_ROLES
from process.exceptions import CapReached, DollarLimit, TurnLimit
from process.settings import AgentLimits, ModelRoles
from runs.events import ModelFellBack, TodosUpdated
from runs.store import RunStore
from sandboxes.local_sandbox import LocalSandbox
from tests.agent.conftest import NO_FALLBACK, Sleeps

TASK = Task(repo="acme/retrying", request="make the retry limit configurable")
PLAN = {
    "problem": "The retry limit is hard-coded.",
    "constraints": ["Keep the default of 3."],
    "approach": "Add a max_attempts argument to retry().",
    "acceptance_criteria": ["retry(max_attempts=5) tries five times", "the default stays 3"],
    "risks": [],
    "tasks": ["Add the argument", "Test it"],
}
ROLES = ModelRoles(
    model_builder="claude-sonnet-5-5",
    model_builder_fallback="claude-opus-5-5",
    model_reviewer="claude-opus-5-5",
    model_reviewer_fallback="claude-sonnet-5",
)


def finish() -> dict[str, Any]:
    return message(tool_use("toolu_f", "finish", {"summary": "done", "notes_for_reviewer": ""}))


def called(api: FakeMessagesAPI, index: int) -> list[str]:
    return [tool["name"] for tool in api.bodies[index]["tools"]]


def test_each_role_is_offered_only_its_tools_and_runs_no_other(
    api: FakeMessagesAPI, model: AnthropicModel, sandbox: LocalSandbox, config: AgentConfig
) -> None:
    # The planner tries to write a file: the call comes back as an error and nothing is
    # written; then it submits its plan, which is the pass's result.
    api.add(
        message(tool_use("toolu_w", "write_file", {"path": "owned.txt", "content": "x"})),
        message(tool_use("toolu_p", "submit_plan", PLAN)),
    )
    recorder = MemoryRecorder()
    result = run_agent(
        TASK, sandbox=sandbox, model=model, recorder=recorder, config=config, role="planner"
    )
    assert called(api, 0) == ["read_file", "list_files", "search", "submit_plan"]
    refused = api.bodies[1]["messages"][-1]["content"][0]
    assert refused["is_error"] is True
    assert "unknown tool 'write_file'" in refused["content"]
    assert not (sandbox.root / "owned.txt").exists()
    assert result.output["acceptance_criteria"] == PLAN["acceptance_criteria"]
    assert "You can only read" in api.bodies[0]["system"][0]["text"]
    for name, role in AGENT_ROLES.items():
        assert role.done in role.tools, name
    assert "edit_file" not in AGENT_ROLES["debugger"].tools
    assert "run" in AGENT_ROLES["debugger"].tools
    assert not {"edit_file", "write_file", "run"} & set(AGENT_ROLES["reviewer"].tools)


def test_an_overloaded_model_falls_back_at_once_and_says_so(
    api: FakeMessagesAPI, model: AnthropicModel, sandbox: LocalSandbox, sleeps: Sleeps
) -> None:
    api.add(Failure(529, "overloaded_error", "Overloaded"), finish())
    recorder = MemoryRecorder()
    config = AgentConfig(roles=ROLES)
    result = run_agent(TASK, sandbox=sandbox, model=model, recorder=recorder, config=config)
    assert [body["model"] for body in api.bodies] == ["claude-sonnet-5-5", "claude-opus-5-5"]
    assert sleeps == []  # no retries waited: another model was at hand
    [fell] = [e for e in recorder.events if isinstance(e, ModelFellBack)]
    assert (fell.role, fell.model, fell.fallback, fell.cause) == (
        "builder",
        "claude-sonnet-5-5",
        "claude-opus-5-5",
        "overloaded",
    )
    assert "overloaded (HTTP 529)" in fell.text
    assert result.model == "claude-opus-5-5"
    assert recorder.models == ["claude-opus-5-5"]  # cost is counted on the model that answered


def test_a_5xx_that_outlasts_the_retries_falls_back(
    api: FakeMessagesAPI, model: AnthropicModel, sandbox: LocalSandbox, sleeps: Sleeps
) -> None:
    api.add(*[Failure(500, "api_error", "boom") for _ in range(4)], finish())
    recorder = MemoryRecorder()
    run_agent(
        TASK, sandbox=sandbox, model=model, recorder=recorder, config=AgentConfig(roles=ROLES)
    )
    assert len(sleeps) == 3  # the retries came first
    assert api.bodies[-1]["model"] == "claude-opus-5-5"
    [fell] = [e for e in recorder.events if isinstance(e, ModelFellBack)]
    assert fell.cause == "unavailable"


def test_a_refusal_falls_back_and_the_fallback_gets_the_same_conversation(
    api: FakeMessagesAPI, model: AnthropicModel, sandbox: LocalSandbox
) -> None:
    api.add(message(text("I can't help with that."), stop_reason="refusal"), finish())
    recorder = MemoryRecorder()
    run_agent(
        TASK, sandbox=sandbox, model=model, recorder=recorder, config=AgentConfig(roles=ROLES)
    )
    first, second = api.bodies
    assert second["model"] == "claude-opus-5-5"
    assert second["messages"] == first["messages"]
    [fell] = [e for e in recorder.events if isinstance(e, ModelFellBack)]
    assert fell.cause == "refused"
    # Both calls were paid for, each on its own model.
    assert recorder.models == ["claude-sonnet-5-5", "claude-opus-5-5"]


def test_a_recorded_fallback_replays_the_same_way(
    api: FakeMessagesAPI, model: AnthropicModel, sandbox: LocalSandbox, tmp_path: Path
) -> None:
    api.add(Failure(529, "overloaded_error", "Overloaded"), finish())
    path = tmp_path / "fallback.jsonl"
    config = AgentConfig(roles=ROLES)
    recording = RecordingModel(model, path, source="fake-messages-api")
    run_agent(TASK, sandbox=sandbox, model=recording, recorder=MemoryRecorder(), config=config)
    lines = [json.loads(line) for line in path.read_text().splitlines()[1:]]
    assert lines[0]["unavailable"]["status"] == 529
    assert lines[1]["request"]["model"] == "claude-opus-5-5"
    replay = ReplayModel(path)
    recorder = MemoryRecorder()
    run_agent(TASK, sandbox=sandbox, model=replay, recorder=recorder, config=config)
    assert replay.remaining == 0
    assert [e.cause for e in recorder.events if isinstance(e, ModelFellBack)] == ["overloaded"]


def test_the_todo_tool_keeps_the_list_on_the_run(
    api: FakeMessagesAPI, model: AnthropicModel, sandbox: LocalSandbox, config: AgentConfig
) -> None:
    items = [{"text": "read retry.py", "done": True}, {"text": "add max_attempts"}]
    api.add(message(tool_use("toolu_t", "todo", {"items": items})), finish())
    store = RunStore(fakeredis.FakeRedis())
    run = store.create(requester="U1", repo="acme/retrying", request="x")
    recorder = StoreRecorder(store, run.id, by="agent:builder")
    run_agent(TASK, sandbox=sandbox, model=model, recorder=recorder, config=config)
    result = api.bodies[1]["messages"][-1]["content"][0]
    assert result["content"] == "todo list saved: 1 of 2 done"
    assert [t.model_dump() for t in store.get(run.id).artifacts.todos] == [
        {"text": "read retry.py", "done": True},
        {"text": "add max_attempts", "done": False},
    ]
    [event] = [e for e in store.events(run.id) if isinstance(e, TodosUpdated)]
    assert [(i.text, i.done) for i in event.items] == [
        ("read retry.py", True),
        ("add max_attempts", False),
    ]
    # The cost table knows the role and the model.
    assert set(store.get(run.id).cost_by_role["builder"]) == {"claude-sonnet-5-5"}


def test_an_on_edit_failure_is_in_the_same_tool_result(
    api: FakeMessagesAPI, model: AnthropicModel, sandbox: LocalSandbox, config: AgentConfig
) -> None:
    bad = "def broken(:\n    pass\n"
    api.add(
        message(tool_use("toolu_w", "write_file", {"path": "bad.py", "content": bad})),
        message(tool_use("toolu_n", "write_file", {"path": "notes.md", "content": "hi\n"})),
        finish(),
    )
    check = EditCheck("python3 -m py_compile {file}", files="*.py")
    result = run_agent(
        TASK,
        sandbox=sandbox,
        model=model,
        recorder=MemoryRecorder(),
        config=config,
        on_edit=[check],
    )
    written = api.bodies[1]["messages"][-1]["content"][0]["content"]
    assert written.startswith("created bad.py")
    assert "[on_edit `python3 -m py_compile {file}` failed (exit 1) on bad.py:]" in written
    assert "SyntaxError" in written
    markdown = api.bodies[2]["messages"][-1]["content"][0]["content"]
    assert "on_edit" not in markdown  # *.py only
    assert result.on_edit_runs == 1
    assert result.on_edit_seconds > 0


def test_an_on_edit_file_name_never_reaches_the_shell_as_code(
    api: FakeMessagesAPI, model: AnthropicModel, sandbox: LocalSandbox, config: AgentConfig
) -> None:
    hostile = "$(touch pwned)`touch pwned2`;touch pwned3.py"
    api.add(
        message(tool_use("toolu_w", "write_file", {"path": hostile, "content": "x = 1\n"})),
        finish(),
    )
    run_agent(
        TASK,
        sandbox=sandbox,
        model=model,
        recorder=MemoryRecorder(),
        config=config,
        on_edit=[EditCheck("test -f {file} && echo seen {file}")],
    )
    written = api.bodies[1]["messages"][-1]["content"][0]["content"]
    assert "[on_edit `test -f {file} && echo seen {file}` passed]" in written
    assert (sandbox.root / hostile).is_file()
    assert not any((sandbox.root / name).exists() for name in ("pwned", "pwned2", "pwned3.py"))


@pytest.mark.parametrize(
    ("limits", "error"),
    [(AgentLimits(max_turns=1), TurnLimit), (AgentLimits(max_dollars=0.0001), DollarLimit)],
)
def test_at_the_cap_the_loop_hands_back_a_checkpoint_that_resumes(
    api: FakeMessagesAPI,
    model: AnthropicModel,
    sandbox: LocalSandbox,
    limits: AgentLimits,
    error: type[Exception],
) -> None:
    api.add(message(tool_use("toolu_l", "list_files", {"pattern": "*.py"})))
    config = AgentConfig(limits=limits, roles=NO_FALLBACK)
    with pytest.raises(CapReached) as caught:
        run_agent(
            TASK,
            sandbox=sandbox,
            model=model,
            recorder=MemoryRecorder(),
            config=config,
            ask_at_cap=True,
        )
    assert isinstance(caught.value.error, error)
    stopped = caught.value.checkpoint
    assert stopped.turns == 1
    assert stopped.model == "claude-sonnet-5-5"
    # Resumed with a larger cap, the next request is the one the pass would have sent.
    api.add(finish())
    bigger = AgentConfig(roles=NO_FALLBACK)
    run_agent(
        TASK,
        sandbox=sandbox,
        model=model,
        recorder=MemoryRecorder(),
        config=bigger,
        resume=stopped,
    )
    assert uncached(api.bodies[1]["messages"]) == stopped.messages


def uncached(value: Any) -> Any:
    """``value`` without the prompt-cache markers the request adds."""
    if isinstance(value, dict):
        return {k: uncached(v) for k, v in value.items() if k != "cache_control"}
    if isinstance(value, list):
        return [uncached(item) for item in value]
    return value
