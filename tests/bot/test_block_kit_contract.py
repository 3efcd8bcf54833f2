"""Every Block Kit payload the bot builds is one slack_sdk's own models read and write back
unchanged: the messages of a run in every status, the decision message, the milestones,
``/agents status`` (the fleet and one run), the App Home tab and the Rework modal.

``Block.parse`` / ``View`` and ``to_dict`` are the SDK's models of Block Kit; ``to_dict``
also checks Slack's documented limits (lengths, counts) and raises on a breach. A field
the SDK does not know is dropped by the round trip, a wrong type or value fails it: so
equality after the round trip means the payload is Block Kit as Slack's SDK defines it.
This holds the bot to Slack's own schema, not to the emulator's validator
(``fakes/slack/validate.py``) that the other bot tests go through.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import fakeredis
import pytest
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View
from slack_sdk.web import WebClient

from bot.blocks import (
    decision_message,
    run_detail_blocks,
    run_message,
    status_blocks,
    text_message,
)
from bot.listeners.events.home import home_view
from bot.listeners.views.revise_plan import revise_modal
from bot.listeners.views.rework import rework_modal
from bot.milestones import milestone
from bot.services import Services
from jobs.status import StatusView
from process.settings import AgentLimits, BotSettings
from runs.artifacts import BudgetAsk, Cost, Spec, TodoItem
from runs.events import (
    AgentTurn,
    ApproveFailed,
    BudgetAsked,
    BudgetDecided,
    ChecksRan,
    DecisionRefused,
    Escalated,
    Event,
    ModelFellBack,
    PlanDecided,
    PlanProposed,
    PullRequestOpened,
    RootCauseFound,
    SpecialistReviewed,
    StatusChanged,
    StepStarted,
)
from runs.projection import project
from runs.record import Run, RunStatus, Step

HOSTILE = "<!channel> <https://evil.example|click me> & <@U123> *bold* `code`"
NOW = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)


def run_in(status: RunStatus, **changes: Any) -> Run:
    run = Run(
        id=7,
        requester="U1",
        channel="C1",
        thread_ts="1.1",
        repo="acme/api",
        request="make the retry limit configurable",
    )
    fields: dict[str, Any] = {"status": status, "created_at": NOW - timedelta(minutes=3)}
    if status is RunStatus.RUNNING:
        fields.update(step=Step.CHECKS, iteration=2)
    if status in (RunStatus.AWAITING_DECISION, RunStatus.APPROVED, RunStatus.REWORK):
        run.artifacts.pr_url = "https://github.com/acme/api/pull/3"
    if status is RunStatus.FAILED:
        fields["error"] = "checks failed twice: " + HOSTILE
    return run.model_copy(update={**fields, **changes})


def round_trips(blocks: list[dict[str, Any]]) -> None:
    assert blocks
    parsed = Block.parse_all(blocks)
    # None, or the bare Block class: a block type slack_sdk does not know.
    assert all(b is not None and type(b) is not Block for b in parsed), parsed
    assert [b.to_dict() for b in parsed if b is not None] == blocks


def view_round_trips(view: dict[str, Any]) -> None:
    assert View(**view).to_dict() == view


EVENTS: list[Event] = [
    StatusChanged(by="bot", at=NOW, previous=RunStatus.QUEUED, to=RunStatus.RUNNING),
    StepStarted(by="worker", at=NOW, step=Step.CHECKS),
    AgentTurn(by="agent", at=NOW, turn=1, text=HOSTILE),
]


@pytest.mark.parametrize("status", list(RunStatus), ids=[s.value for s in RunStatus])
@pytest.mark.parametrize("decisions", [True, False], ids=["final", "status"])
def test_the_run_message_in_every_status_is_block_kit(status: RunStatus, decisions: bool) -> None:
    run = run_in(status)
    view = project(run, EVENTS, budget=AgentLimits(max_turns=40, max_dollars=5))
    fallback, blocks = run_message(view, decisions=decisions)
    assert fallback
    round_trips(blocks)


@pytest.mark.parametrize("status", list(RunStatus), ids=[s.value for s in RunStatus])
def test_the_run_detail_in_every_status_is_block_kit(status: RunStatus) -> None:
    _, blocks = run_detail_blocks(project(run_in(status), EVENTS), EVENTS)
    round_trips(blocks)
    assert any("Recent events" in str(b) for b in blocks)


def test_the_decision_message_is_block_kit() -> None:
    _, blocks = decision_message(project(run_in(RunStatus.AWAITING_DECISION), []))
    round_trips(blocks)
    _, blocks = decision_message(project(run_in(RunStatus.AWAITING_DECISION, request=HOSTILE), []))
    round_trips(blocks)


def pull_request(url: str) -> PullRequestOpened:
    return PullRequestOpened(
        by="w", url=url, number=3, branch="agents/7", head_sha="a" * 40, draft=False
    )


@pytest.mark.parametrize(
    "event",
    [
        pull_request("https://x.test/pr/3"),
        pull_request("javascript:x"),
        ChecksRan(by="w", passed=False, text=HOSTILE, fix_round=1, last_round=3),
        ChecksRan(by="w", passed=False, text=""),
        Escalated(by="w", text=HOSTILE),
        ApproveFailed(by="w", text="<@U2> could not"),
        DecisionRefused(by="w", action="rework", text=HOSTILE, mentions=["U2"]),
        StatusChanged(by="U1", previous=RunStatus.RUNNING, to=RunStatus.AWAITING_DECISION),
        StatusChanged(by="w", previous=RunStatus.RUNNING, to=RunStatus.FAILED, reason=HOSTILE),
        StatusChanged(by="U1", previous=RunStatus.RUNNING, to=RunStatus.CANCELLED),
        StatusChanged(by="U1", previous=RunStatus.AWAITING_DECISION, to=RunStatus.APPROVED),
    ],
    ids=lambda e: f"{e.kind}-{getattr(e, 'to', None) or getattr(e, 'url', '')[:5] or 'x'}",
)
def test_every_milestone_reply_is_block_kit(event: Event) -> None:
    reply = milestone(event, run_in(RunStatus.AWAITING_DECISION))
    assert reply is not None
    round_trips(reply[1])


#: A plan the planner wrote, hostile in every field it fills.
PLAN = {
    "version": 2,
    "problem": HOSTILE,
    "constraints": [HOSTILE],
    "approach": HOSTILE * 20,
    "acceptance_criteria": [HOSTILE] * 12,
    "risks": [],
    "tasks": [HOSTILE] * 30,
}


def paused(status: RunStatus) -> Run:
    run = run_in(status)
    run.artifacts.plans = [Spec.model_validate({**PLAN, "version": 1}), Spec.model_validate(PLAN)]
    run.artifacts.budget_ask = BudgetAsk(at=NOW.isoformat(), limit_kind="dollars", can_extend=False)
    run.artifacts.todos = [TodoItem(text=HOSTILE, done=True), TodoItem(text="write tests")]
    return run


@pytest.mark.parametrize(
    "event",
    [
        PlanProposed(by="w", version=2, text="plan v2"),
        PlanProposed(by="w", version=1, text="plan v1, superseded"),
        PlanDecided(by="U1", action="approve", version=2, text="approved"),
        PlanDecided(by="U1", action="revise", version=2, feedback=HOSTILE, text="revise"),
        BudgetAsked(
            by="w",
            limit_kind="dollars",
            spent=4.8,
            limit=5,
            extend_by=5,
            can_extend=True,
            text=f"#7 has spent $4.80 of $5.00. {HOSTILE}",
        ),
        BudgetAsked(
            by="w", limit_kind="turns", spent=40, limit=40, extend_by=40, can_extend=False, text="x"
        ),
        BudgetDecided(by="U1", action="extend", text=HOSTILE),
        BudgetDecided(by="U1", action="stop", text=HOSTILE),
        BudgetDecided(by="w", action="timeout", text=HOSTILE),
        ModelFellBack(by="w", role="builder", model="a", fallback="b", cause="refused", text="x"),
        RootCauseFound(by="w", note=HOSTILE, text=HOSTILE),
        SpecialistReviewed(
            by="w", specialist="security", verdict="block", findings=2, blocking=1, text=HOSTILE
        ),
    ],
    ids=lambda e: f"{e.kind}-{getattr(e, 'action', None) or getattr(e, 'version', 'x')}",
)
@pytest.mark.parametrize("status", [RunStatus.AWAITING_PLAN, RunStatus.AWAITING_BUDGET])
def test_every_factory_reply_is_block_kit(event: Event, status: RunStatus) -> None:
    reply = milestone(event, paused(status))
    assert reply is not None
    round_trips(reply[1])


def test_the_todo_checklist_and_the_revise_modal_are_block_kit() -> None:
    run = paused(RunStatus.RUNNING)
    _, blocks = run_message(project(run, EVENTS), decisions=False)
    assert any("write tests" in str(b) for b in blocks)
    round_trips(blocks)
    view_round_trips(revise_modal(run))


def fleet(*, empty: bool = False) -> StatusView:
    runs = [] if empty else [run_in(status, id=i) for i, status in enumerate(RunStatus, 1)]
    running = [r for r in runs if r.status is RunStatus.RUNNING]
    queued = [r for r in runs if r.status is RunStatus.QUEUED]
    finished = [
        r.model_copy(update={"cost": Cost(dollars=0.42)}) for r in runs if r.status.is_final
    ]
    return StatusView(
        queue_name="agents",
        queue_depth=len(queued),
        workers=2,
        counts={status: int(not empty) for status in RunStatus},
        running=running,
        queued=queued,
        queued_eta=[90] * len(queued),
        finished=finished,
        cost_today=1.5,
        at=NOW,
    )


@pytest.mark.parametrize("empty", [False, True], ids=["busy", "idle"])
@pytest.mark.parametrize("private", [False, True], ids=["visible", "hidden"])
def test_agents_status_is_block_kit(empty: bool, private: bool) -> None:
    visible = (lambda run: False) if private else None
    _, blocks = status_blocks(fleet(empty=empty), visible)
    round_trips(blocks)


def test_the_home_tab_is_a_block_kit_view() -> None:
    settings = BotSettings(  # type: ignore[call-arg]
        _env_file=None, slack_bot_token="xoxb-1", slack_signing_secret="s", queue="home"
    )
    # The view reads the store only; the client is never called.
    client = WebClient(token="xoxb-1", base_url="http://127.0.0.1:9/")
    services = Services.from_settings(settings, fakeredis.FakeRedis(), client)
    for i, status in enumerate([RunStatus.RUNNING, RunStatus.FAILED, RunStatus.QUEUED]):
        run = services.store.create(requester="U1", repo="acme/api", request=HOSTILE * (i + 1))
        if status is not RunStatus.QUEUED:
            services.store.transition(run.id, RunStatus.RUNNING, by="w")
        if status is RunStatus.FAILED:
            services.store.transition(run.id, status, by="w", reason=HOSTILE)
    for visible in (None, lambda run: False):
        view = home_view(services, visible)
        assert view["type"] == "home"
        view_round_trips(view)


def test_the_rework_modal_is_a_block_kit_view() -> None:
    view_round_trips(rework_modal(run_in(RunStatus.AWAITING_DECISION)))
    view_round_trips(rework_modal(run_in(RunStatus.AWAITING_DECISION, request=HOSTILE * 200)))


def test_text_replies_are_block_kit() -> None:
    _, blocks = text_message(":x: " + "long " * 1000)
    round_trips(blocks)


def test_a_payload_slack_does_not_define_fails_the_round_trip() -> None:
    _, blocks = text_message("hello")
    round_trips(blocks)
    with pytest.raises(AssertionError):
        round_trips([{**blocks[0], "colour": "red"}])  # a field Block Kit has not
    with pytest.raises(AssertionError):
        round_trips([{"type": "sectoin", "text": blocks[0]["text"]}])  # a type it has not
    from slack_sdk.errors import SlackObjectFormationError

    with pytest.raises(SlackObjectFormationError):
        round_trips([{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}])
