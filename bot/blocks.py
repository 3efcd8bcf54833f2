"""Block Kit builders: pure functions from views to ``(fallback text, blocks)``.

Everything from users or the model is escaped for mrkdwn, so nobody can ping
``<!channel>`` or draw a fake link, and every text is cut to Slack's limits.
"""

from __future__ import annotations

import json
from typing import Any

from core.projection import StepState, ThreadView
from core.run import RunStatus

MAX_SECTION_TEXT = 3000
MAX_BLOCKS = 50
MAX_BUTTON_VALUE = 2000
MAX_FALLBACK_TEXT = 3000
MAX_CONTEXT_TEXT = 3000

Block = dict[str, Any]

ACTION_APPROVE = "agents_approve"
ACTION_REWORK = "agents_rework"
ACTION_CANCEL = "agents_cancel"

_STEP_MARKS = {
    StepState.DONE: ":white_check_mark:",
    StepState.ACTIVE: ":arrows_counterclockwise:",
    StepState.PENDING: ":white_circle:",
    StepState.FAILED: ":x:",
}
_STATUS_WORDS = {
    RunStatus.QUEUED: ":hourglass_flowing_sand: queued",
    RunStatus.RUNNING: ":gear: working",
    RunStatus.AWAITING_DECISION: ":eyes: awaiting your decision",
    RunStatus.APPROVED: ":white_check_mark: approved",
    RunStatus.REWORK: ":repeat: rework requested",
    RunStatus.FAILED: ":x: failed",
    RunStatus.CANCELLED: ":no_entry_sign: cancelled",
}


def escape(text: str) -> str:
    """Escape the three characters mrkdwn treats as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def cut(text: str, limit: int) -> str:
    """``text`` within ``limit`` characters, marking the cut, never splitting an escape."""
    if len(text) <= limit:
        return text
    marker = "… (cut)"
    head = text[: limit - len(marker)]
    amp = head.rfind("&")
    if amp != -1 and ";" not in head[amp:]:
        head = head[:amp]
    return head + marker


def _safe_url(url: str) -> str | None:
    """Only plain http(s) URLs become links; anything else is shown as text."""
    if url.startswith(("https://", "http://")) and not any(c in url for c in "<>| \n"):
        return url
    return None


def section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": cut(text, MAX_SECTION_TEXT)}}


def context(*texts: str) -> Block:
    return {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": cut(t, MAX_CONTEXT_TEXT)} for t in texts[:10]],
    }


def button(text: str, action_id: str, value: str, style: str | None = None) -> Block:
    element: Block = {
        "type": "button",
        "text": {"type": "plain_text", "text": cut(text, 75)},
        "action_id": action_id,
        "value": value[:MAX_BUTTON_VALUE],
    }
    if style:
        element["style"] = style
    return element


def _elapsed(seconds: int) -> str:
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s"


def button_value(view: ThreadView, iteration: int | None = None) -> str:
    """What a button carries: the run and the iteration it was drawn for."""
    return json.dumps(
        {"run": int(view.label.lstrip("#")), "iteration": iteration or view.iteration}
    )


def run_message(view: ThreadView) -> tuple[str, list[Block]]:
    """The one status message of a run's thread, updated in place."""
    title = f"*{view.label}* · `{escape(view.repo)}` · {_STATUS_WORDS[view.status]}"
    blocks: list[Block] = [
        section(title),
        context(f"<@{escape(view.requester)}> asked: {escape(view.request)}"),
        section("  ".join(f"{_STEP_MARKS[state]} {step.value}" for step, state in view.steps)),
    ]
    if view.activity:
        blocks.append(context(f":hammer_and_wrench: {escape(view.activity)}"))
    budget = view.budget
    turns = f"{view.turns}/{budget.max_turns}" if budget else f"{view.turns}"
    dollars = f"${view.dollars:.2f}" + (f" of ${budget.max_dollars:.2f}" if budget else "")
    blocks.append(
        context(
            f"iteration {view.iteration} · {_elapsed(view.elapsed_seconds)} · turns {turns} · "
            f"{view.tokens:,} tokens · {dollars}"
        )
    )
    if view.pr_url:
        url = _safe_url(view.pr_url)
        blocks.append(
            section(f":link: <{url}|Pull request>" if url else f"PR: {escape(view.pr_url)}")
        )
    if view.error:
        blocks.append(section(f":warning: {escape(view.error)}"))
    if view.buttons:
        value = button_value(view)
        elements = []
        if "approve" in view.buttons:
            elements.append(button("Approve", ACTION_APPROVE, value, "primary"))
        if "rework" in view.buttons:
            elements.append(button("Rework", ACTION_REWORK, value))
        if "cancel" in view.buttons:
            elements.append(button("Cancel", ACTION_CANCEL, value, "danger"))
        blocks.append({"type": "actions", "block_id": "run_actions", "elements": elements})
    fallback = cut(
        f"{view.label} {view.repo}: {view.status.value.replace('_', ' ')} — {view.request}",
        MAX_FALLBACK_TEXT,
    )
    return escape(fallback), blocks[:MAX_BLOCKS]


def text_message(text: str) -> tuple[str, list[Block]]:
    """A plain reply (milestones, errors, help) with its fallback text."""
    return cut(escape(text), MAX_FALLBACK_TEXT), [section(escape(text))]
