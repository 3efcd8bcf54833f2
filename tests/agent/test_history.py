"""Trimming old tool output out of a conversation (jobs.agent.history)."""

from __future__ import annotations

import copy
from typing import Any

from jobs.agent.history import ELIDED_ARGUMENT, ELIDED_RESULT, LONG_ARGUMENT, trim_history


def turn(n: int, output: str, argument: str = "x") -> list[dict[str, Any]]:
    return [
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": f"turn {n}"},
                {
                    "type": "tool_use",
                    "id": f"t{n}",
                    "name": "write_file",
                    "input": {"content": argument},
                },
            ],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": f"t{n}", "content": output}],
        },
    ]


def conversation(turns: int, output: str = "o" * 1000, argument: str = "x") -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": [{"type": "text", "text": "the task " * 200}]}
    ]
    for n in range(1, turns + 1):
        messages += turn(n, output, argument)
    return messages


def results(messages: list[dict[str, Any]]) -> list[str]:
    return [
        block["content"]
        for message in messages
        for block in message["content"]
        if block.get("type") == "tool_result"
    ]


def test_output_older_than_the_newest_turns_is_elided() -> None:
    messages = conversation(6)
    trimmed = trim_history(messages, keep_turns=2)

    assert results(messages) == [ELIDED_RESULT] * 4 + ["o" * 1000] * 2
    assert trimmed.blocks == 4
    assert trimmed.chars == 4 * (1000 - len(ELIDED_RESULT))
    # The task, the calls and their ids stay: the conversation is still well formed.
    assert messages[0]["content"][0]["text"].startswith("the task")
    assert [m["content"][1]["id"] for m in messages[1::2]] == [f"t{n}" for n in range(1, 7)]
    assert [m["content"][0]["tool_use_id"] for m in messages[2::2]] == [
        f"t{n}" for n in range(1, 7)
    ]


def test_long_arguments_of_old_calls_are_shortened_short_ones_kept() -> None:
    long = "y" * (LONG_ARGUMENT + 1)
    messages = conversation(3, argument=long)
    messages[1]["content"][1]["input"]["path"] = "a.py"
    trim_history(messages, keep_turns=1)

    assert messages[1]["content"][1]["input"] == {"content": ELIDED_ARGUMENT, "path": "a.py"}
    assert messages[3]["content"][1]["input"] == {"content": ELIDED_ARGUMENT}
    assert messages[5]["content"][1]["input"] == {"content": long}  # the newest turn


def test_trimming_again_removes_nothing_more() -> None:
    messages = conversation(5)
    assert trim_history(messages, keep_turns=2).blocks == 3
    once = copy.deepcopy(messages)
    again = trim_history(messages, keep_turns=2)
    assert (again.blocks, again.chars) == (0, 0)
    assert messages == once


def test_short_conversations_and_short_outputs_are_left_alone() -> None:
    messages = conversation(3)
    before = copy.deepcopy(messages)
    assert trim_history(messages, keep_turns=3).blocks == 0
    assert messages == before

    tiny = conversation(4, output="ok")
    assert trim_history(tiny, keep_turns=1).blocks == 0
    assert results(tiny) == ["ok"] * 4


def test_structured_result_content_is_elided_too() -> None:
    messages = conversation(3)
    messages[2]["content"][0]["content"] = [{"type": "text", "text": "z" * 500}]
    trimmed = trim_history(messages, keep_turns=2)
    assert messages[2]["content"][0]["content"] == ELIDED_RESULT
    assert trimmed.chars == 500 - len(ELIDED_RESULT)


def test_blocks_shared_with_others_are_replaced_not_edited() -> None:
    """A replayed response's blocks are the transcript's own; trimming must not reach
    into them."""
    messages = conversation(3, argument="y" * (LONG_ARGUMENT + 1))
    shared_call = messages[1]["content"][1]
    shared_result = messages[2]["content"][0]
    originals = copy.deepcopy([shared_call, shared_result])

    trim_history(messages, keep_turns=1)

    assert [shared_call, shared_result] == originals
    assert messages[1]["content"][1] is not shared_call
    assert messages[2]["content"][0]["content"] == ELIDED_RESULT
