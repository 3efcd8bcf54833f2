"""Block Kit builders: pure functions from views to ``(fallback text, blocks)``.

Everything from users or the model is escaped for mrkdwn, so nobody can ping
``<!channel>`` or draw a fake link, and every text is cut to Slack's limits.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from typing import Any

from jobs.status import StatusView
from runs.artifacts import Spec
from runs.events import Event
from runs.projection import StepState, ThreadView
from runs.record import Run, RunStatus

MAX_SECTION_TEXT = 3000
MAX_BLOCKS = 50
MAX_BUTTON_VALUE = 2000
MAX_FALLBACK_TEXT = 3000
MAX_CONTEXT_TEXT = 3000

Block = dict[str, Any]

ACTION_APPROVE = "agents_approve"
ACTION_REWORK = "agents_rework"
ACTION_CANCEL = "agents_cancel"
ACTION_APPROVE_PLAN = "agents_approve_plan"
ACTION_REVISE_PLAN = "agents_revise_plan"
ACTION_EXTEND = "agents_extend_budget"
ACTION_STOP = "agents_stop_at_budget"
#: Most todo items the status message shows (the rest are counted).
MAX_TODOS = 20

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
    RunStatus.AWAITING_PLAN: ":memo: waiting for the plan's approval",
    RunStatus.AWAITING_BUDGET: ":money_with_wings: paused at its budget",
    RunStatus.APPROVED: ":white_check_mark: approved",
    RunStatus.REWORK: ":repeat: rework requested",
    RunStatus.FAILED: ":x: failed",
    RunStatus.CANCELLED: ":no_entry_sign: cancelled",
    RunStatus.EVALUATED: ":bar_chart: evaluated (no pull request: an eval task)",
    RunStatus.MERGED: ":tada: merged",
    RunStatus.CLOSED: ":wastebasket: closed without merging",
}


def escape(text: str) -> str:
    """Escape the three characters mrkdwn treats as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_USER_ID = re.compile(r"[UW][A-Z0-9_]{1,40}")


def escape_keeping_mentions(text: str, mentions: Iterable[object] = ()) -> str:
    """``text`` escaped, except the ``<@user>`` mentions the bot itself wrote in it.

    ``mentions`` lists those user ids (the writer of an event names them, never the
    model); every other ``<``, ``>`` and ``&`` stays escaped, so a model-written
    ``<!channel>`` or ``<@U123>`` is shown as text.
    """
    escaped = escape(text)
    for user in mentions:
        if isinstance(user, str) and _USER_ID.fullmatch(user):
            escaped = escaped.replace(f"&lt;@{user}&gt;", f"<@{user}>")
    return escaped


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


def _mrkdwn(text: str, limit: int) -> dict[str, Any]:
    # verbatim: Slack must not auto-link URLs or channel names in escaped user text;
    # the links and mentions the bot means are written out explicitly.
    return {"type": "mrkdwn", "text": cut(text, limit), "verbatim": True}


def section(text: str) -> Block:
    return {"type": "section", "text": _mrkdwn(text, MAX_SECTION_TEXT)}


def context(*texts: str) -> Block:
    return {"type": "context", "elements": [_mrkdwn(t, MAX_CONTEXT_TEXT) for t in texts[:10]]}


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


def run_message(view: ThreadView, *, decisions: bool = True) -> tuple[str, list[Block]]:
    """The one status message of a run's thread, updated in place.

    With ``decisions=False`` it carries only Cancel: Approve and Rework live on the
    final message, so a thread never shows two sets of them.
    """
    title = f"*{view.label}* · `{escape(view.repo)}` · {_STATUS_WORDS[view.status]}"
    blocks: list[Block] = [
        section(title),
        context(f"<@{escape(view.requester)}> asked: {escape(view.request)}"),
        section("  ".join(f"{_STEP_MARKS[state]} {step.value}" for step, state in view.steps)),
    ]
    if view.todos:
        blocks.append(section(todo_checklist(view.todos)))
    if view.estimate:
        blocks.append(context(f":stopwatch: {escape(view.estimate)}"))
    if view.activity:
        blocks.append(context(f":hammer_and_wrench: {escape(view.activity)}"))
    if view.environment:
        blocks.append(context(f":package: {escape(view.environment)}"))
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
    wanted = [b for b in view.buttons if decisions or b == "cancel"]
    if wanted:
        value = button_value(view)
        elements = []
        if "approve" in wanted:
            elements.append(button("Approve", ACTION_APPROVE, value, "primary"))
        if "rework" in wanted:
            elements.append(button("Rework", ACTION_REWORK, value))
        if "cancel" in wanted:
            elements.append(button("Cancel", ACTION_CANCEL, value, "danger"))
        blocks.append({"type": "actions", "block_id": "run_actions", "elements": elements})
    fallback = cut(
        f"{view.label} {view.repo}: {view.status.value.replace('_', ' ')} — {view.request}",
        MAX_FALLBACK_TEXT,
    )
    return escape(fallback), blocks[:MAX_BLOCKS]


def decision_message(view: ThreadView) -> tuple[str, list[Block]]:
    """The final message: the PR is ready, and the buttons that apply."""
    url = _safe_url(view.pr_url or "")
    link = f"<{url}|pull request>" if url else "pull request"
    text = (
        f":tada: {view.label} is ready for review: {link}. *Approve* it, or ask for "
        "*Rework* with feedback."
    )
    blocks = [section(text)]
    value = button_value(view)
    blocks.append(
        {
            "type": "actions",
            "block_id": "decision_actions",
            "elements": [
                button("Approve", ACTION_APPROVE, value, "primary"),
                button("Rework", ACTION_REWORK, value),
                button("Cancel", ACTION_CANCEL, value, "danger"),
            ],
        }
    )
    return escape(f"{view.label} is ready for review: {view.pr_url or ''}"), blocks


def todo_checklist(todos: list[tuple[str, bool]]) -> str:
    """The builder's todo list as a checklist, done items ticked."""
    done = sum(1 for _, finished in todos if finished)
    lines = [f"*Todo* ({done}/{len(todos)})"]
    for text, finished in todos[:MAX_TODOS]:
        mark = ":white_check_mark:" if finished else ":white_large_square:"
        lines.append(f"{mark} {'~' + escape(text) + '~' if finished else escape(text)}")
    if len(todos) > MAX_TODOS:
        lines.append(f"… and {len(todos) - MAX_TODOS} more")
    return "\n".join(lines)


def _listed(items: list[str], *, numbered: bool = False) -> str:
    if not items:
        return "_none_"
    marks = [f"{n}." if numbered else "•" for n in range(1, len(items) + 1)]
    return "\n".join(f"{mark} {escape(item)}" for mark, item in zip(marks, items, strict=True))


def plan_message(label: str, run_id: int, spec: Spec, *, open_: bool) -> tuple[str, list[Block]]:
    """A version of the plan, with Approve plan and Revise plan while it awaits them.
    Everything in it came from the planner: escaped, and cut to Slack's limits."""
    blocks: list[Block] = [
        section(
            f":memo: *Plan v{spec.version} for {label}*: approve it and I'll build it, or "
            "ask for a revision."
        ),
        section(f"*Problem*\n{escape(spec.problem.strip())}"),
        section(f"*Approach*\n{escape(spec.approach.strip())}"),
        section("*Acceptance criteria*\n" + _listed(spec.acceptance_criteria, numbered=True)),
        section("*Tasks*\n" + _listed(spec.tasks, numbered=True)),
    ]
    if spec.constraints:
        blocks.insert(2, section("*Constraints*\n" + _listed(spec.constraints)))
    if spec.risks:
        blocks.append(section("*Risks*\n" + _listed(spec.risks)))
    if open_:
        value = json.dumps({"run": run_id, "version": spec.version})
        blocks.append(
            {
                "type": "actions",
                "block_id": "plan_actions",
                "elements": [
                    button("Approve plan", ACTION_APPROVE_PLAN, value, "primary"),
                    button("Revise plan", ACTION_REVISE_PLAN, value),
                ],
            }
        )
    fallback = f"Plan v{spec.version} for {label}: {spec.problem.strip()}"
    return escape(cut(fallback, MAX_FALLBACK_TEXT)), blocks[:MAX_BLOCKS]


def budget_message(
    text: str, run_id: int, *, asked_at: str | None, can_extend: bool
) -> tuple[str, list[Block]]:
    """The budget question, with Extend (unless at the hard cap) and Stop here while
    it is open. ``text`` is the worker's, made of numbers and the run's label."""
    blocks: list[Block] = [section(f":money_with_wings: {escape(text)}")]
    if asked_at is not None:
        value = json.dumps({"run": run_id, "ask": asked_at})
        elements = [button("Stop here", ACTION_STOP, value, "danger")]
        if can_extend:
            elements.insert(0, button("Extend", ACTION_EXTEND, value, "primary"))
        blocks.append({"type": "actions", "block_id": "budget_actions", "elements": elements})
    return escape(cut(text, MAX_FALLBACK_TEXT)), blocks


def text_message(mrkdwn: str) -> tuple[str, list[Block]]:
    """A reply the bot composed (milestones, errors, help), with its fallback text.

    The caller has already escaped whatever came from users or the model in it, so
    the bot's own mentions (``<@U123>``) and links stay live.
    """
    return cut(mrkdwn, MAX_FALLBACK_TEXT), [section(mrkdwn)]


HIDDEN = "_in a conversation you're not in_"


def status_blocks(
    view: StatusView, visible: Callable[[Run], bool] | None = None
) -> tuple[str, list[Block]]:
    """``/agents status`` and the App Home tab: the fleet at a glance.

    With ``visible``, a run it rejects (asked in a private channel or DM the viewer is
    not in) is listed by its label only: no repository, requester or request.
    """

    def shown(run: Run, line: str) -> str:
        return line if visible is None or visible(run) else f"*{run.label}* {HIDDEN}"

    counts = ", ".join(f"{s.value.replace('_', ' ')} {n}" for s, n in view.counts.items() if n)
    blocks: list[Block] = [
        section(
            f"*Queue* `{escape(view.queue_name)}`: {view.queue_depth} waiting · "
            f"{view.workers} worker(s) alive · today ${view.cost_today:.2f}"
        ),
        context(f"runs: {counts or 'none yet'}"),
        {"type": "divider"},
    ]
    running = [
        "• "
        + shown(
            r,
            f"*{r.label}* `{escape(r.repo)}` {r.step.value if r.step else 'starting'} · "
            f"{_elapsed(int((view.at - r.created_at).total_seconds()))} · "
            f"${r.cost.dollars:.2f}",
        )
        for r in view.running
    ]
    blocks.append(section("*Running*\n" + ("\n".join(running) or "nothing")))
    queued = [
        f"{i}. "
        + shown(r, f"*{r.label}* `{escape(r.repo)}` by <@{escape(r.requester)}>")
        + (f" · starts in ~{_elapsed(eta)}" if eta is not None else "")
        for i, (r, eta) in enumerate(zip(view.queued, view.queued_eta, strict=False), start=1)
    ]
    blocks.append(section("*Queued*\n" + ("\n".join(queued) or "nothing")))
    finished = [
        "• "
        + shown(
            r,
            f"*{r.label}* `{escape(r.repo)}` {r.status.value.replace('_', ' ')} · "
            f"${r.cost.dollars:.2f}",
        )
        for r in view.finished
    ]
    blocks.append(section("*Last finished*\n" + ("\n".join(finished) or "nothing")))
    fallback = (
        f"{view.queue_depth} waiting, {len(view.running)} running, "
        f"{view.workers} worker(s), today ${view.cost_today:.2f}"
    )
    return fallback, blocks[:MAX_BLOCKS]


def run_detail_blocks(view: ThreadView, events: list[Event]) -> tuple[str, list[Block]]:
    """``/agents status <id>``: one run, with the tail of its event log."""
    fallback, blocks = run_message(view)
    blocks = [b for b in blocks if b["type"] != "actions"]
    lines = []
    for event in events:
        lines.append(f"`{event.at:%H:%M:%S}` {event.kind} {escape(event.line)}")
    if lines:
        blocks.append(section("*Recent events*\n" + "\n".join(lines)))
    return fallback, blocks[:MAX_BLOCKS]
