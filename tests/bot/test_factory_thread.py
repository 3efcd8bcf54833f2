"""The factory in the thread, against the Slack emulator: the plan with Approve plan and
Revise plan (and its modal), the budget question with Extend and Stop here, the
builder's todo checklist, and a fallback notice. The worker's side is played by
writing to the store what its steps write; the reporter draws, the bot answers."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.reporter import Reporter
from runs.artifacts import BudgetAsk, Spec, TodoItem
from runs.events import BudgetAsked, ModelFellBack, PlanProposed, TodosUpdated
from runs.record import Run, RunStatus, Step
from tests.bot.conftest import ALICE, BOB, CAROL, GENERAL, Harness, drain

pytestmark = pytest.mark.redis


def start(h: Harness, text: str = "plan in acme/api: make the retry limit configurable") -> Run:
    ts, _ = h.emu.mention(ALICE, GENERAL, text)
    h.settle()
    run = h.wait(
        lambda: (r := h.services.store.find_by_thread(GENERAL, ts)) and r.status_ts and r,
        "the run's status message",
    )
    assert isinstance(run, Run)
    return run


def spec(version: int, problem: str = "The retry limit is fixed at 3.") -> Spec:
    return Spec(
        version=version,
        problem=problem,
        approach="A keyword-only max_attempts parameter.",
        acceptance_criteria=["max_attempts=5 tries five times", "the default stays 3"],
        tasks=["Add the parameter", "Test it"],
        feedback_seen=version - 1,
    )


def propose(
    h: Harness, run: Run, version: int, problem: str = "The retry limit is fixed at 3."
) -> None:
    """What the plan step writes: the spec, and the pause for its approval."""
    store = h.services.store
    if store.get(run.id).status is not RunStatus.RUNNING:
        store.transition(run.id, RunStatus.RUNNING, by="worker")
    store.set_step(run.id, Step.PLAN, by="worker")

    def waiting(r: Run) -> None:
        r.artifacts.plans.append(spec(version, problem))

    store.transition(
        run.id,
        RunStatus.AWAITING_PLAN,
        by="worker",
        change=waiting,
        events=[PlanProposed(by="agent:planner", version=version, text=f"plan v{version}")],
    )


def thread(h: Harness, run: Run) -> list[dict[str, Any]]:
    return h.emu.thread(GENERAL, run.thread_ts or "")


def message_with(h: Harness, run: Run, action_id: str) -> list[dict[str, Any]]:
    return [
        m
        for m in thread(h, run)
        if any(
            e.get("action_id") == action_id
            for b in m.get("blocks") or []
            if b["type"] == "actions"
            for e in b["elements"]
        )
    ]


def texts(h: Harness, run: Run) -> list[str]:
    return [m["text"] for m in thread(h, run)]


def test_the_plan_is_posted_revised_in_a_modal_and_approved(harness: Harness) -> None:
    h = harness
    reporter = Reporter(h.services.store, h.client, min_interval=0.05)
    reporter.ensure_group()
    run = start(h)
    assert run.plan_asked
    propose(h, run, 1, problem="Fixed at 3 <!channel>")
    drain(reporter)
    [plan] = message_with(h, run, "agents_approve_plan")
    shown = json.dumps(plan["blocks"])
    assert "Plan v1 for #1" in shown
    assert "Fixed at 3 &lt;!channel&gt;" in shown  # the planner's words are escaped
    assert "1. max_attempts=5 tries five times" in shown
    # Someone else may not revise it.
    h.emu.click(BOB, GENERAL, plan["ts"], "agents_revise_plan")
    h.settle()
    assert any("Only <@U_ALICE>" in e["text"] for e in h.emu.ephemerals(BOB))
    assert h.emu.modal(BOB) is None
    # The requester opens the modal; blank feedback is refused inline.
    h.emu.click(ALICE, GENERAL, plan["ts"], "agents_revise_plan")
    h.settle()
    modal = h.emu.modal(ALICE)
    assert modal is not None
    blank = h.emu.submit_view(ALICE, modal["id"], {"plan_feedback": {"plan_feedback_text": " "}})
    assert json.loads(blank.response_body)["response_action"] == "errors"
    h.emu.submit_view(
        ALICE, modal["id"], {"plan_feedback": {"plan_feedback_text": "Say so in the README."}}
    )
    h.settle()
    revising = h.services.store.get(run.id)
    assert revising.status is RunStatus.QUEUED
    assert [(f.by, f.text) for f in revising.artifacts.plan_feedback] == [
        (ALICE, "Say so in the README.")
    ]
    # The worker writes version 2; the old message's Approve is refused, the new one works.
    propose(h, run, 2)
    drain(reporter)
    h.emu.click(ALICE, GENERAL, plan["ts"], "agents_approve_plan")
    h.settle()
    assert any("earlier question" in e["text"] for e in h.emu.ephemerals(ALICE))
    assert h.services.store.get(run.id).status is RunStatus.AWAITING_PLAN
    newest = message_with(h, run, "agents_approve_plan")[-1]
    assert "Plan v2" in json.dumps(newest["blocks"])
    h.emu.click(ALICE, GENERAL, newest["ts"], "agents_approve_plan")
    h.settle()
    approved = h.services.store.get(run.id)
    assert (approved.status, approved.artifacts.plan_approved) == (RunStatus.QUEUED, 2)
    drain(reporter)
    said = texts(h, run)
    assert any("asked to revise plan v1" in t and "Say so in the README." in t for t in said)
    assert any(f"<@{ALICE}> approved plan v2; building it." in t for t in said)
    status = h.emu.message(GENERAL, approved.status_ts or "")
    assert status is not None
    assert "plan" in json.dumps(status["blocks"])


def ask_budget(h: Harness, run: Run, *, can_extend: bool) -> str:
    store = h.services.store
    store.transition(run.id, RunStatus.RUNNING, by="worker")
    store.set_step(run.id, Step.AGENT, by="worker")
    at = "2026-12-01T10:00:00+00:00"
    text = (
        "#1 has spent $4.80 of $5.00. Extend by $5?"
        if can_extend
        else "#1 has spent $50.10 of $50.00. That is the operator's hard cap."
    )

    def paused(r: Run) -> None:
        r.artifacts.budget_ask = BudgetAsk(
            limit_kind="dollars",
            extend_by=5.0 if can_extend else 0.0,
            can_extend=can_extend,
            hard_cap=50.0,
            at=at,
            text=text,
        )
        r.artifacts.config = {"escalation": "draft"}
        r.artifacts.patch = "diff --git a/a b/a\n"

    store.transition(
        run.id,
        RunStatus.AWAITING_BUDGET,
        by="worker",
        change=paused,
        events=[
            BudgetAsked(
                by="worker",
                limit_kind="dollars",
                spent=4.8,
                limit=5.0,
                extend_by=5.0 if can_extend else 0.0,
                can_extend=can_extend,
                text=text,
            )
        ],
    )
    return at


def test_the_budget_question_extends_or_stops(harness: Harness) -> None:
    h = harness
    reporter = Reporter(h.services.store, h.client, min_interval=0.05)
    reporter.ensure_group()
    run = start(h, "in acme/api: make the retry limit configurable")
    ask_budget(h, run, can_extend=True)
    drain(reporter)
    [question] = message_with(h, run, "agents_extend_budget")
    assert question["text"] == "#1 has spent $4.80 of $5.00. Extend by $5?"
    labels = [
        e["text"]["text"]
        for b in question["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
    ]
    assert labels == ["Extend", "Stop here"]
    h.emu.click(ALICE, GENERAL, question["ts"], "agents_extend_budget")
    h.settle()
    extended = h.services.store.get(run.id)
    assert extended.status is RunStatus.QUEUED
    assert extended.artifacts.extra_dollars == 5.0
    assert extended.artifacts.budget_ask is None
    # A second click on the answered question changes nothing.
    h.emu.click(ALICE, GENERAL, question["ts"], "agents_stop_at_budget")
    h.settle()
    assert h.services.store.get(run.id).status is RunStatus.QUEUED
    assert not h.services.store.get(run.id).artifacts.budget_stopped
    drain(reporter)
    assert any("budget extended by $5.00; carrying on" in t for t in texts(h, run))


def test_at_the_hard_cap_only_stop_is_offered_and_it_publishes_a_draft(harness: Harness) -> None:
    h = harness
    reporter = Reporter(h.services.store, h.client, min_interval=0.05)
    reporter.ensure_group()
    run = start(h, "in acme/api: make the retry limit configurable")
    ask_budget(h, run, can_extend=False)
    drain(reporter)
    [question] = message_with(h, run, "agents_stop_at_budget")
    ids = [
        e["action_id"] for b in question["blocks"] if b["type"] == "actions" for e in b["elements"]
    ]
    assert ids == ["agents_stop_at_budget"]
    h.emu.click(CAROL, GENERAL, question["ts"], "agents_stop_at_budget")
    h.settle()
    stopped = h.services.store.get(run.id)
    assert stopped.status is RunStatus.QUEUED  # queued to publish what exists as a draft
    assert stopped.artifacts.budget_stopped
    drain(reporter)
    assert any("publishing what exists as a draft" in t for t in texts(h, run))


def test_the_todo_checklist_and_a_fallback_render_in_the_emulator(harness: Harness) -> None:
    h = harness
    reporter = Reporter(h.services.store, h.client, min_interval=0.05)
    reporter.ensure_group()
    run = start(h, "in acme/api: make the retry limit configurable")
    store = h.services.store
    store.transition(run.id, RunStatus.RUNNING, by="worker")
    store.set_step(run.id, Step.AGENT, by="worker")
    items = [TodoItem(text="read retry.py", done=True), TodoItem(text="add <max_attempts>")]

    def todos(r: Run) -> None:
        r.artifacts.todos = list(items)

    store.update(run.id, todos, events=[TodosUpdated(by="agent:builder", items=items, text="1/2")])
    store.append_event(
        run.id,
        ModelFellBack(
            by="agent:builder",
            role="builder",
            model="claude-sonnet-5-5",
            fallback="claude-opus-5-5",
            cause="overloaded",
            text="the builder's model claude-sonnet-5-5 was overloaded (HTTP 529); "
            "claude-opus-5-5 takes over",
        ),
    )
    drain(reporter)
    status = h.emu.message(GENERAL, store.get(run.id).status_ts or "")
    assert status is not None
    sections = [b["text"]["text"] for b in status["blocks"] if b["type"] == "section"]
    [checklist] = [s for s in sections if s.startswith("*Todo*")]
    assert checklist == (
        "*Todo* (1/2)\n:white_check_mark: ~read retry.py~"
        "\n:white_large_square: add &lt;max_attempts&gt;"
    )
    assert h.emu.warnings == []  # the emulator validated every block it was sent
    # Ticking an item redraws the same message (no new one), within the update rate.
    items[1] = TodoItem(text="add <max_attempts>", done=True)
    store.update(run.id, todos, events=[TodosUpdated(by="agent:builder", items=items, text="2/2")])
    drain(reporter)
    status = h.emu.message(GENERAL, store.get(run.id).status_ts or "")
    assert status is not None
    assert "*Todo* (2/2)" in json.dumps(status["blocks"])
    assert any(
        t.startswith(
            ":twisted_rightwards_arrows: The builder's model claude-sonnet-5-5 was overloaded"
        )
        for t in texts(h, run)
    )
