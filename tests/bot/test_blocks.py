"""Block Kit builders: every run state, Slack's limits, and hostile mrkdwn."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.blocks import (
    MAX_BLOCKS,
    MAX_BUTTON_VALUE,
    MAX_SECTION_TEXT,
    cut,
    escape,
    run_message,
    text_message,
)
from process.settings import AgentLimits
from runs.projection import project
from runs.record import Run, RunStatus

HOSTILE = "<!channel> <https://evil.example|click me> & <@U123>"


def make(status: RunStatus, **kw: Any) -> Run:
    run = Run(id=7, requester="U1", repo="acme/api", request="make retries configurable")
    return run.model_copy(update={"status": status, **kw})


def texts(blocks: list[dict[str, Any]]) -> list[str]:
    out = []
    for block in blocks:
        if "text" in block:
            out.append(block["text"]["text"])
        for element in block.get("elements", []):
            text = element.get("text")
            out.append(text["text"] if isinstance(text, dict) else text)
    return out


def assert_within_limits(fallback: str, blocks: list[dict[str, Any]]) -> None:
    assert fallback
    assert len(blocks) <= MAX_BLOCKS
    for block in blocks:
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= MAX_SECTION_TEXT
        for element in block.get("elements", []):
            if element.get("type") == "button":
                assert len(element["value"]) <= MAX_BUTTON_VALUE


@pytest.mark.parametrize("status", list(RunStatus))
def test_every_state_builds_a_valid_message(status: RunStatus) -> None:
    run = make(status)
    if status is RunStatus.AWAITING_DECISION:
        run.artifacts.pr_url = "https://github.com/acme/api/pull/3"
    if status is RunStatus.FAILED:
        run.error = "checks failed twice"
    fallback, blocks = run_message(
        project(run, [], budget=AgentLimits(max_turns=40, max_dollars=5))
    )
    assert_within_limits(fallback, blocks)
    assert "#7" in fallback
    actions = [b for b in blocks if b["type"] == "actions"]
    ids = [e["action_id"] for a in actions for e in a["elements"]]
    if status is RunStatus.AWAITING_DECISION:
        assert ids == ["agents_approve", "agents_rework", "agents_cancel"]
        assert any("<https://github.com/acme/api/pull/3|Pull request>" in t for t in texts(blocks))
    elif status.is_final:
        assert ids == []
    else:
        assert ids == ["agents_cancel"]
    for value in (e["value"] for a in actions for e in a["elements"]):
        assert json.loads(value) == {"run": 7, "iteration": 1}


def test_hostile_text_is_escaped_everywhere() -> None:
    run = make(RunStatus.FAILED, request=HOSTILE, error=HOSTILE, repo="acme/<!here>")
    fallback, blocks = run_message(project(run, []))
    for text in [fallback, *texts(blocks)]:
        assert "<!channel>" not in text
        assert "<!here>" not in text
        assert "<https://evil.example" not in text
    assert any("&lt;!channel&gt;" in t for t in texts(blocks))
    # The requester mention is ours, built from the id, and stays a real mention.
    assert any(t.startswith("<@U1> asked:") for t in texts(blocks))


def test_unsafe_pr_urls_are_not_linked() -> None:
    run = make(RunStatus.AWAITING_DECISION)
    run.artifacts.pr_url = "javascript:alert(1)|x>"
    _, blocks = run_message(project(run, []))
    assert not any("<javascript" in t for t in texts(blocks))


def test_oversized_text_is_cut_gracefully() -> None:
    run = make(RunStatus.FAILED, request="x" * 100_000, error="&" * 10_000)
    fallback, blocks = run_message(project(run, []))
    assert_within_limits(fallback, blocks)
    error = next(t for t in texts(blocks) if t.startswith(":warning:"))
    assert error.endswith("… (cut)")
    assert error.count("&amp;") * 5 + len(":warning: ") + len("… (cut)") <= MAX_SECTION_TEXT + 5
    assert not error.removesuffix("… (cut)").endswith(("&", "&a", "&am", "&amp"))


def test_cut_never_splits_an_escape() -> None:
    escaped = escape("<" * 100)
    cutted = cut(escaped, 50)
    assert len(cutted) <= 50
    assert cutted.removesuffix("… (cut)").endswith("&lt;")


def test_text_message_keeps_the_bots_own_mrkdwn() -> None:
    fallback, blocks = text_message(f"<@U1> asked: {escape('<!everyone>')}")
    assert fallback == "<@U1> asked: &lt;!everyone&gt;"
    assert texts(blocks) == [fallback]


def test_user_text_is_never_auto_linked() -> None:
    _, blocks = run_message(
        project(make(RunStatus.RUNNING, request="see https://x.example #ops"), [])
    )
    for block in blocks:
        for text in [block.get("text"), *block.get("elements", [])]:
            if isinstance(text, dict) and text.get("type") == "mrkdwn":
                assert text["verbatim"] is True
