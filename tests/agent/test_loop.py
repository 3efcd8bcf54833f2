"""The loop end to end: the real SDK over HTTP to the fake Messages API, tools in a real
sandbox on a copy of the sample repository."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fakes.anthropic import Failure, FakeMessagesAPI, message, text, tool_use
from jobs.agent.config import AgentConfig
from jobs.agent.history import ELIDED_RESULT
from jobs.agent.loop import (
    CUT_OFF_CALL,
    FINISH_REFUSED,
    NUDGE_CUT_OFF,
    NUDGE_NO_TOOLS,
    AgentResult,
    run_agent,
)
from jobs.agent.model import AnthropicModel
from jobs.agent.prompt import Task
from jobs.agent.recorders import MemoryRecorder
from jobs.blueprint.steps.agent import kept_pass, resumed_pass
from process.exceptions import ContextWindowFull, Interrupted, ModelRefused, UnknownModelPrice
from process.settings import AgentLimits, ModelRoles
from runs.artifacts import AgentResume
from runs.events import AgentFinished, AgentTurn
from runs.record import Step
from sandboxes.local_sandbox import LocalSandbox

TASK = Task(
    repo="acme/retrying",
    request="make the retry limit configurable",
    check_command="python -m pytest -q",
)
EPHEMERAL = {"type": "ephemeral"}


def run(
    sandbox: LocalSandbox,
    model: AnthropicModel,
    config: AgentConfig,
    recorder: MemoryRecorder | None = None,
    **kwargs: Any,
) -> AgentResult:
    return run_agent(
        TASK,
        sandbox=sandbox,
        model=model,
        recorder=recorder if recorder is not None else MemoryRecorder(),
        config=config,
        **kwargs,
    )


def finish(id: str = "toolu_finish", summary: str = "made it configurable") -> dict[str, Any]:
    return message(tool_use(id, "finish", {"summary": summary, "notes_for_reviewer": "none"}))


def last_user_content(body: dict[str, Any]) -> list[dict[str, Any]]:
    last = body["messages"][-1]
    assert last["role"] == "user"
    content: list[dict[str, Any]] = last["content"]
    return content


def strip_cache(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in block.items() if k != "cache_control"} for block in blocks]


def test_several_calls_errors_end_turn_and_finish(
    api: FakeMessagesAPI,
    model: AnthropicModel,
    sandbox: LocalSandbox,
    workspace: Path,
    config: AgentConfig,
) -> None:
    api.add(
        message(
            text("Let me look around."),
            tool_use("toolu_1", "list_files", {"pattern": "*.py"}),
            tool_use("toolu_2", "read_file", {"path": "missing.py"}),
            tool_use(
                "toolu_3",
                "read_file",
                {"path": "retrying/retry.py", "start_line": 11, "end_line": 11},
            ),
        ),
        message(text("I believe the change is done.")),
        message(
            tool_use(
                "toolu_4",
                "edit_file",
                {
                    "path": "retrying/retry.py",
                    "old_text": "MAX_ATTEMPTS = 3",
                    "new_text": "MAX_ATTEMPTS = 5",
                },
            ),
            tool_use("toolu_5", "run", {"command": "python -m pytest -q tests"}),
        ),
        finish(),
    )
    recorder = MemoryRecorder()
    result = run(sandbox, model, config, recorder)

    assert result.summary == "made it configurable"
    assert result.notes_for_reviewer == "none"
    assert result.turns == 4
    assert "MAX_ATTEMPTS = 5" in (workspace / "retrying/retry.py").read_text()
    bodies = api.bodies
    assert len(bodies) == 4

    # Three calls in one response: three results, in order, the failed one flagged.
    results = strip_cache(last_user_content(bodies[1]))
    assert [r["tool_use_id"] for r in results] == ["toolu_1", "toolu_2", "toolu_3"]
    assert results[0] == {
        "type": "tool_result",
        "tool_use_id": "toolu_1",
        "content": "retrying/__init__.py\nretrying/retry.py\ntests/test_retry.py",
    }
    assert results[1]["is_error"] is True
    assert results[1]["content"] == "read_file failed: no such file: missing.py"
    assert "is_error" not in results[2]
    assert results[2]["content"].endswith("    11\tMAX_ATTEMPTS = 3")
    # The assistant turn goes back exactly as it came, text included.
    assert bodies[1]["messages"][1]["content"][0] == {"type": "text", "text": "Let me look around."}

    # end_turn without finish: the loop says so and carries on.
    assert strip_cache(last_user_content(bodies[2])) == [{"type": "text", "text": NUDGE_NO_TOOLS}]

    # The run result: the tests fail now, since MAX_ATTEMPTS changed under them.
    run_result = last_user_content(bodies[3])[1]
    assert run_result["content"].startswith("exit code: 1\n[stdout]\n")
    assert "1 failed, 3 passed" in run_result["content"]

    tool_events = [e for e in recorder.events if isinstance(e, AgentTurn)]
    assert [e.turn for e in tool_events] == [1, 2, 3, 4]
    sizes = [len(r["content"]) for r in results]
    assert [c.model_dump() for c in tool_events[0].calls] == [
        {"tool": "list_files", "args": "*.py in .", "result_chars": sizes[0], "is_error": False},
        {"tool": "read_file", "args": "missing.py", "result_chars": sizes[1], "is_error": True},
        {
            "tool": "read_file",
            "args": "retrying/retry.py:11-11",
            "result_chars": sizes[2],
            "is_error": False,
        },
    ]
    assert tool_events[0].text == (
        "list_files *.py in . · read_file missing.py · read_file retrying/retry.py:11-11"
    )
    assert tool_events[1].text == "(no tool calls)"
    assert tool_events[0].by == "agent:builder"
    finished = recorder.events[-1]
    assert isinstance(finished, AgentFinished)
    assert finished.summary == "made it configurable"
    assert recorder.stops == []


def test_max_tokens_runs_complete_calls_and_refuses_the_cut_one(
    api: FakeMessagesAPI,
    model: AnthropicModel,
    sandbox: LocalSandbox,
    workspace: Path,
    config: AgentConfig,
) -> None:
    api.add(
        message(
            tool_use("toolu_a", "write_file", {"path": "a.txt", "content": "complete"}),
            tool_use("toolu_b", "write_file", {"path": "b.txt", "content": "cut o"}),
            stop_reason="max_tokens",
        ),
        message(text("And then I will"), stop_reason="max_tokens"),
        finish(),
    )
    run(sandbox, model, config)

    assert (workspace / "a.txt").read_text() == "complete"
    assert not (workspace / "b.txt").exists()
    results = strip_cache(last_user_content(api.bodies[1]))
    assert results[0] == {
        "type": "tool_result",
        "tool_use_id": "toolu_a",
        "content": "created a.txt (8 bytes, 1 lines)",
    }
    assert results[1] == {
        "type": "tool_result",
        "tool_use_id": "toolu_b",
        "content": CUT_OFF_CALL,
        "is_error": True,
    }
    assert strip_cache(last_user_content(api.bodies[2])) == [
        {"type": "text", "text": NUDGE_CUT_OFF}
    ]


def test_finish_is_refused_while_another_call_of_the_turn_failed(
    api: FakeMessagesAPI, model: AnthropicModel, sandbox: LocalSandbox, config: AgentConfig
) -> None:
    api.add(
        message(
            tool_use(
                "toolu_1", "edit_file", {"path": "README.md", "old_text": "nope", "new_text": "x"}
            ),
            tool_use("toolu_2", "finish", {"summary": "done"}),
        ),
        finish(summary="really done"),
    )
    result = run(sandbox, model, config)
    assert result.summary == "really done"
    assert result.turns == 2
    results = last_user_content(api.bodies[1])
    assert results[0]["is_error"] is True
    assert results[1]["content"] == FINISH_REFUSED
    assert results[1]["is_error"] is True


def test_cache_breakpoints_and_usage_on_the_wire(
    api: FakeMessagesAPI, model: AnthropicModel, sandbox: LocalSandbox, config: AgentConfig
) -> None:
    api.add(
        message(
            tool_use("toolu_1", "read_file", {"path": "README.md"}),
            input_tokens=10,
            cache_write_tokens=3000,
            output_tokens=50,
        ),
        message(
            tool_use("toolu_2", "list_files", {}),
            input_tokens=5,
            cache_read_tokens=3000,
            cache_write_tokens=400,
            output_tokens=40,
        ),
        message(
            tool_use("toolu_3", "search", {"pattern": "retry"}),
            input_tokens=5,
            cache_read_tokens=3400,
            cache_write_tokens=300,
            output_tokens=30,
        ),
        finish(),
    )
    recorder = MemoryRecorder()
    run(sandbox, model, config, recorder)

    bodies = api.bodies
    for body in bodies:
        assert body["model"] == "claude-sonnet-5-5"
        assert body["max_tokens"] == config.max_output_tokens
        assert len(body["system"]) == 1
        assert body["system"][0]["cache_control"] == EPHEMERAL
        assert "acme/retrying" in body["system"][0]["text"]
        assert body["tools"][-1]["cache_control"] == EPHEMERAL
        assert all("cache_control" not in tool for tool in body["tools"][:-1])
        assert json.dumps(body).count('"cache_control"') <= 4

    def marked(body: dict[str, Any]) -> list[int]:
        return [
            index
            for index, msg in enumerate(body["messages"])
            if any("cache_control" in block for block in msg["content"])
        ]

    # The newest user message writes the grown prefix; the one before reads the last write.
    assert marked(bodies[0]) == [0]
    assert marked(bodies[1]) == [0, 2]
    assert marked(bodies[2]) == [2, 4]
    assert marked(bodies[3]) == [4, 6]
    for body in bodies:
        for index in marked(body):
            assert body["messages"][index]["content"][-1]["cache_control"] == EPHEMERAL
            assert all("cache_control" not in b for b in body["messages"][index]["content"][:-1])

    # Cache reads and writes are counted and priced ($2 in, $10 out, $2.50 write, $0.10 read).
    total = recorder.total
    assert total.input_tokens == 10 + 5 + 5 + 100
    assert total.cache_write_tokens == 3700
    assert total.cache_read_tokens == 6400
    assert total.output_tokens == 50 + 40 + 30 + 20
    expected = (120 * 2.0 + 140 * 10.0 + 3700 * 2.5 + 6400 * 0.1) / 1_000_000
    assert total.dollars == pytest.approx(expected)
    first_turn = recorder.events[0]
    assert isinstance(first_turn, AgentTurn)
    assert first_turn.cache_write_tokens == 3000
    assert first_turn.dollars == pytest.approx((10 * 2.0 + 50 * 10.0 + 3000 * 2.5) / 1e6)


def test_roles_choose_the_model(
    api: FakeMessagesAPI, model: AnthropicModel, sandbox: LocalSandbox
) -> None:
    config = AgentConfig(
        roles=ModelRoles(model_builder="claude-opus-5-5", model_reviewer="claude-haiku-5-5")
    )
    verdict = message(tool_use("toolu_v", "verdict", {"verdict": "approve", "notes": "fine"}))
    api.add(finish(), verdict)
    run(sandbox, model, config)
    reviewed = run(sandbox, model, config, role="reviewer")
    assert [body["model"] for body in api.bodies] == ["claude-opus-5-5", "claude-haiku-5-5"]
    assert reviewed.output["verdict"] == "approve"
    assert reviewed.model == "claude-haiku-5-5"


def test_refusal_stops_the_run(
    api: FakeMessagesAPI, model: AnthropicModel, sandbox: LocalSandbox, config: AgentConfig
) -> None:
    api.add(message(text("I can't help with that."), stop_reason="refusal"))
    recorder = MemoryRecorder()
    with pytest.raises(ModelRefused, match="declined"):
        run(sandbox, model, config, recorder)
    assert recorder.stops[0][0] == "refused"
    assert len(recorder.costs) == 1


def test_a_full_context_window_with_nothing_to_trim_stops_the_run(
    api: FakeMessagesAPI, model: AnthropicModel, sandbox: LocalSandbox, config: AgentConfig
) -> None:
    api.add(message(text("..."), stop_reason="model_context_window_exceeded"))
    recorder = MemoryRecorder()
    with pytest.raises(ContextWindowFull, match="split the request"):
        run(sandbox, model, config, recorder)
    assert recorder.stops[0][0] == "context_window"


def read_turn(n: int) -> dict[str, Any]:
    return message(tool_use(f"toolu_{n}", "read_file", {"path": "retrying/retry.py"}))


def tool_results(body: dict[str, Any]) -> list[Any]:
    return [
        block["content"]
        for m in body["messages"]
        if m["role"] == "user"
        for block in m["content"]
        if block.get("type") == "tool_result"
    ]


def test_a_growing_prompt_sheds_old_tool_output(
    api: FakeMessagesAPI, model: AnthropicModel, sandbox: LocalSandbox, config: AgentConfig
) -> None:
    config = config.model_copy(update={"context_tokens": 5000, "keep_turns": 2})
    api.add(
        read_turn(1),
        read_turn(2),
        # This answer reports a prompt past context_tokens: the history is trimmed
        # before the next call.
        message(tool_use("toolu_3", "read_file", {"path": "retrying/retry.py"}), input_tokens=6000),
        finish(),
    )
    recorder = MemoryRecorder()
    run(sandbox, model, config, recorder)

    before, after = api.bodies[2], api.bodies[3]
    assert ELIDED_RESULT not in tool_results(before)
    kept = tool_results(after)
    assert kept[0] == ELIDED_RESULT
    assert kept[1] == tool_results(before)[1]
    assert "MAX_ATTEMPTS" in kept[2]
    [note] = [e for e in recorder.events if e.kind == "context_trimmed"]
    assert note.blocks == 1
    assert "removed 1 old tool outputs and call arguments" in note.text


def large_reads(api: FakeMessagesAPI, turns: int = 7) -> None:
    """``turns`` turns that each read a file and report a prompt past 5,000 tokens."""
    files = ["retrying/retry.py", "tests/test_retry.py", "retrying/__init__.py"]
    api.add(
        *[
            message(
                tool_use(f"toolu_{n}", "read_file", {"path": files[n % 3]}),
                text(f"turn {n}"),
                input_tokens=6000,
            )
            for n in range(1, turns + 1)
        ],
        finish(),
    )


def trim_turns(recorder: MemoryRecorder) -> list[int]:
    """After which turn each trim came (its TOOL events so far)."""
    events = recorder.events
    return [
        len([e for e in events[:index] if isinstance(e, AgentTurn)])
        for index, event in enumerate(events)
        if event.kind == "context_trimmed"
    ]


def test_soft_trims_come_at_most_once_per_keep_turns_turns(
    api: FakeMessagesAPI, model: AnthropicModel, sandbox: LocalSandbox, config: AgentConfig
) -> None:
    """Each trim rewrites the prompt cache from the cut, so a prompt that stays large
    (the kept turns alone pass the threshold) must not be trimmed every turn."""
    config = config.model_copy(update={"context_tokens": 5000, "keep_turns": 2})
    large_reads(api)
    recorder = MemoryRecorder()
    run(sandbox, model, config, recorder)
    # Over the threshold from turn 1, but kept turns must pile up first: turns 3, 5, 7.
    assert trim_turns(recorder) == [3, 5, 7]


def test_reading_again_what_a_trim_removed_is_progress(
    api: FakeMessagesAPI, model: AnthropicModel, sandbox: LocalSandbox, config: AgentConfig
) -> None:
    """The elided note tells the model to run the call again; with no_progress_turns=3
    three identical reads in a row would otherwise stop the pass as going in circles."""
    config = config.model_copy(update={"context_tokens": 5000, "keep_turns": 1})
    same = {"path": "retrying/retry.py"}
    api.add(
        *[
            message(tool_use(f"toolu_{n}", "read_file", same), input_tokens=6000)
            for n in range(1, 6)
        ],
        finish(),
    )
    result = run(sandbox, model, config)
    assert result.turns == 6


def test_a_prompt_the_api_finds_too_long_is_trimmed_and_sent_again(
    api: FakeMessagesAPI, model: AnthropicModel, sandbox: LocalSandbox, config: AgentConfig
) -> None:
    api.add(
        read_turn(1),
        read_turn(2),
        Failure(400, "invalid_request_error", "prompt is too long: 210000 tokens > 200000"),
        finish(),
    )
    recorder = MemoryRecorder()
    result = run(sandbox, model, config, recorder)

    assert result.summary == "made it configurable"
    assert result.turns == 3  # the refused call cost nothing and is not a turn
    refused, resent = api.bodies[2], api.bodies[3]
    assert ELIDED_RESULT not in tool_results(refused)
    assert tool_results(resent)[0] == ELIDED_RESULT  # only the newest turn kept whole
    assert "MAX_ATTEMPTS" in tool_results(resent)[1]


def test_a_prompt_too_long_with_nothing_left_to_trim_fails_with_its_reason(
    api: FakeMessagesAPI, model: AnthropicModel, sandbox: LocalSandbox, config: AgentConfig
) -> None:
    api.add(Failure(400, "invalid_request_error", "prompt is too long: 210000 tokens > 200000"))
    recorder = MemoryRecorder()
    with pytest.raises(ContextWindowFull, match="prompt is too long"):
        run(sandbox, model, config, recorder)
    assert recorder.stops[0][0] == "context_window"
    assert len(api.bodies) == 1


def test_a_reply_cut_off_by_the_window_is_asked_again_with_less_history(
    api: FakeMessagesAPI, model: AnthropicModel, sandbox: LocalSandbox, config: AgentConfig
) -> None:
    api.add(
        read_turn(1),
        read_turn(2),
        message(text("Now I will"), stop_reason="model_context_window_exceeded"),
        finish(),
    )
    result = run(sandbox, model, config)

    assert result.summary == "made it configurable"
    resent = api.bodies[3]
    # The cut-off answer is not in the history; the trimmed conversation is.
    roles = [m["role"] for m in resent["messages"]]
    assert roles == ["user", "assistant", "user", "assistant", "user"]
    assert resent["messages"][-2]["content"][0]["id"] == "toolu_2"
    assert tool_results(resent)[0] == ELIDED_RESULT


def test_an_unpriced_model_is_refused_before_any_call(
    api: FakeMessagesAPI, model: AnthropicModel, sandbox: LocalSandbox
) -> None:
    recorder = MemoryRecorder()
    config = AgentConfig(roles=ModelRoles(model_builder="claude-unknown-9"))
    with pytest.raises(UnknownModelPrice, match="claude-unknown-9"):
        run(sandbox, model, config, recorder)
    assert api.requests == []
    assert recorder.stops[0][0] == "unknown_price"


def test_a_finish_in_the_call_that_crossed_a_limit_still_counts(
    api: FakeMessagesAPI, model: AnthropicModel, sandbox: LocalSandbox
) -> None:
    config = AgentConfig(limits=AgentLimits(max_turns=1))
    api.add(finish())
    assert run(sandbox, model, config).turns == 1


def test_a_stop_request_ends_the_turn_and_resume_continues_the_conversation(
    api: FakeMessagesAPI,
    model: AnthropicModel,
    sandbox: LocalSandbox,
    workspace: Path,
    config: AgentConfig,
) -> None:
    """A draining worker: the loop stops between two turns with its checkpoint, and a
    later run_agent with ``resume`` sends the request the stopped one would have sent."""
    api.add(
        message(
            tool_use(
                "toolu_1",
                "edit_file",
                {
                    "path": "retrying/retry.py",
                    "old_text": "MAX_ATTEMPTS = 3",
                    "new_text": "MAX_ATTEMPTS = 5",
                },
            )
        ),
        finish(),
    )
    asked: list[int] = []

    def should_stop() -> bool:
        asked.append(len(api.bodies))
        return True

    with pytest.raises(Interrupted) as stopped:
        run(sandbox, model, config, should_stop=should_stop)
    checkpoint = stopped.value.checkpoint
    assert asked == [1]  # asked once, after the first turn's tools ran
    assert "MAX_ATTEMPTS = 5" in (workspace / "retrying/retry.py").read_text()
    assert checkpoint.turns == 1
    assert checkpoint.cost.output_tokens > 0
    assert [m["role"] for m in checkpoint.messages] == ["user", "assistant", "user"]
    assert checkpoint.messages[2]["content"][0]["tool_use_id"] == "toolu_1"

    kept = kept_pass(Step.AGENT, "builder", checkpoint).model_dump_json()
    saved = resumed_pass(AgentResume.model_validate_json(kept))
    result = run(sandbox, model, config, resume=saved)
    assert result.turns == 2  # the stopped pass's turn counts
    first, resumed = api.bodies
    assert resumed["system"] == first["system"]
    assert [strip_cache(m["content"]) for m in resumed["messages"]] == [
        strip_cache(m["content"]) for m in checkpoint.messages
    ]


def test_a_resumed_pass_trims_when_the_uninterrupted_one_would(
    api: FakeMessagesAPI, model: AnthropicModel, sandbox: LocalSandbox, config: AgentConfig
) -> None:
    """Trims are spaced keep_turns apart; a drained pass must carry when it last trimmed,
    or its resumption trims at other turns and a recorded transcript no longer replays."""
    config = config.model_copy(update={"context_tokens": 5000, "keep_turns": 2})
    large_reads(api)
    recorder = MemoryRecorder()
    with pytest.raises(Interrupted) as stopped:  # drained right after the trim of turn 3
        run(sandbox, model, config, recorder, should_stop=lambda: len(api.bodies) == 3)
    assert stopped.value.checkpoint.trimmed_at == 3
    kept = kept_pass(Step.AGENT, "builder", stopped.value.checkpoint).model_dump_json()
    saved = resumed_pass(AgentResume.model_validate_json(kept))
    run(sandbox, model, config, recorder, resume=saved)
    assert trim_turns(recorder) == [3, 5, 7]  # as in the uninterrupted pass above
