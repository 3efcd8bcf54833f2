"""The bolt app over real HTTP, signed by the Slack emulator, on real Redis."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from rq.job import Job

from bot.blocks import decision_message
from runs.projection import project
from runs.record import Run, RunStatus
from tests.bot.conftest import ALICE, BOB, CAROL, GENERAL, Harness, post_raw

pytestmark = pytest.mark.redis

JSON = "application/json"


def bot_replies(h: Harness, root_ts: str) -> list[dict[str, Any]]:
    return [m for m in h.emu.thread(GENERAL, root_ts) if m["ts"] != root_ts and m.get("bot_id")]


def ask(
    h: Harness, text: str = "in acme/api: make the retry limit configurable"
) -> tuple[str, Run]:
    ts, delivery = h.emu.mention(ALICE, GENERAL, text)
    assert delivery.status == 200
    h.settle()
    run = h.services.store.find_by_thread(GENERAL, ts)
    assert run is not None
    return ts, run


def runs_created(h: Harness) -> int:
    return int(h.services.connection.get("agents:runs:seq") or 0)


def test_mention_creates_enqueues_reacts_then_posts(harness: Harness) -> None:
    h = harness
    ts, run = ask(h)
    assert (run.repo, run.request, run.requester) == (
        "acme/api",
        "make the retry limit configurable",
        ALICE,
    )
    assert run.status is RunStatus.QUEUED
    assert h.services.queue.queue.count == 1
    assert h.emu.reactions(GENERAL, ts) == {"eyes": [h.emu.bot_user_id]}
    (status,) = bot_replies(h, ts)
    assert run.status_ts == status["ts"]
    assert "#1" in status["text"]
    order = [c.method for c in h.emu.calls() if c.method in ("reactions.add", "chat.postMessage")]
    assert order == ["reactions.add", "chat.postMessage"]
    assert h.emu.warnings == []


def test_the_same_event_delivered_four_times_makes_one_run(harness: Harness) -> None:
    h = harness
    ts, delivery = h.emu.mention(ALICE, GENERAL, "in acme/api: fix it")
    assert delivery.event_id
    for retry in (1, 2, 3):
        again = h.emu.redeliver(delivery.event_id, retry_num=retry)
        assert again.status == 200
    h.settle()
    assert runs_created(h) == 1
    assert len(bot_replies(h, ts)) == 1
    assert h.services.queue.queue.count == 1


def mention_body(h: Harness) -> str:
    return json.dumps(
        {
            "type": "event_callback",
            "team_id": h.emu.team_id,
            "api_app_id": "A1",
            "event_id": "Ev-forged",
            "event_time": int(time.time()),
            "event": {
                "type": "app_mention",
                "user": ALICE,
                "channel": GENERAL,
                "ts": "1700000000.000100",
                "text": f"<@{h.emu.bot_user_id}> in acme/api: steal",
            },
        }
    )


def test_forged_and_stale_signatures_are_rejected(harness: Harness) -> None:
    h = harness
    url = h.emu.bot_url or ""
    body = mention_body(h)
    now = int(time.time())
    assert post_raw(url, body, JSON, secret="not-the-secret", timestamp=now) == 401
    assert post_raw(url, body, JSON, secret=h.emu.signing_secret, timestamp=now - 6 * 60) == 401
    h.settle()
    assert runs_created(h) == 0
    # The same body, signed properly and fresh, is accepted: the test can fail.
    assert post_raw(url, body, JSON, secret=h.emu.signing_secret, timestamp=now) == 200
    h.settle()
    assert runs_created(h) == 1


@pytest.mark.parametrize(
    ("text", "reply"),
    [
        ("", "Ask me to change a repository"),
        ("help", "Ask me to change a repository"),
        ("in acme: x", "doesn't look like a repository name"),
    ],
)
def test_bad_mentions_get_a_thread_reply_and_no_run(
    harness: Harness, text: str, reply: str
) -> None:
    h = harness
    ts, _ = h.emu.mention(ALICE, GENERAL, text)
    h.settle()
    (answer,) = bot_replies(h, ts)
    assert reply in answer["text"]
    assert runs_created(h) == 0


@pytest.mark.parametrize("harness", [{"allowed_repos": ["acme/*"]}], indirect=True)
def test_repository_outside_the_allow_list(harness: Harness) -> None:
    h = harness
    ts, _ = h.emu.mention(ALICE, GENERAL, "in evil/repo: x")
    h.settle()
    (answer,) = bot_replies(h, ts)
    assert "not on this bot's allow-list" in answer["text"]
    assert runs_created(h) == 0


def test_dm_starts_a_run(harness: Harness) -> None:
    h = harness
    channel = h.emu.dm(ALICE)
    ts, _ = h.emu.post(ALICE, channel, "in acme/api: add a changelog entry")
    h.settle()
    run = h.services.store.find_by_thread(channel, ts)
    assert run is not None
    assert run.request == "add a changelog entry"


def test_follow_up_while_working_is_queued_for_the_next_iteration(harness: Harness) -> None:
    h = harness
    ts, run = ask(h)
    h.emu.mention(ALICE, GENERAL, "also update the docs", thread_ts=ts)
    h.settle()
    assert runs_created(h) == 1
    assert [f.text for f in h.services.store.get(run.id).pending_feedback] == [
        "also update the docs"
    ]
    assert "queued your message for its next iteration" in bot_replies(h, ts)[-1]["text"]


def awaiting(h: Harness, run: Run) -> Run:
    h.services.store.transition(run.id, RunStatus.RUNNING, by="worker")
    return h.services.store.transition(run.id, RunStatus.AWAITING_DECISION, by="worker")


def test_follow_up_while_awaiting_a_decision_is_rework(harness: Harness) -> None:
    h = harness
    ts, run = ask(h)
    awaiting(h, run)
    replies_before = len(bot_replies(h, ts))
    h.emu.mention(BOB, GENERAL, "use an env var", thread_ts=ts)
    h.settle()
    # Told to Bob alone; the thread and the run are unchanged.
    assert any("Only <@U_ALICE>" in t for t in ephemeral_texts(h, BOB))
    assert len(bot_replies(h, ts)) == replies_before
    assert h.services.store.get(run.id).status is RunStatus.AWAITING_DECISION
    h.emu.mention(ALICE, GENERAL, "use an env var", thread_ts=ts)
    h.settle()
    reworked = h.services.store.get(run.id)
    assert reworked.status is RunStatus.REWORK
    assert reworked.iteration == 2
    assert [f.text for f in reworked.pending_feedback] == ["use an env var"]
    assert runs_created(h) == 1
    assert "starting iteration 2" in bot_replies(h, ts)[-1]["text"]


def buttons(h: Harness, run: Run) -> str:
    """Post the final message with its buttons, as the reporter does; returns its ts."""
    fallback, blocks = decision_message(project(h.services.store.get(run.id), []))
    posted = h.client.chat_postMessage(
        channel=GENERAL, thread_ts=run.thread_ts, text=fallback, blocks=blocks
    )
    return str(posted["ts"])


def ephemeral_texts(h: Harness, user: str) -> list[str]:
    return [e["text"] for e in h.emu.ephemerals(user)]


def test_unauthorized_approve_changes_nothing(harness: Harness) -> None:
    h = harness
    _, run = ask(h)
    awaiting(h, run)
    message = buttons(h, run)
    h.emu.click(BOB, GENERAL, message, "agents_approve")
    h.settle()
    assert any("Only <@U_ALICE>" in t for t in ephemeral_texts(h, BOB))
    assert h.services.store.get(run.id).status is RunStatus.AWAITING_DECISION
    assert not Job.exists("agents-approve-1-1", connection=h.services.connection)


def test_double_approve_has_one_effect(harness: Harness) -> None:
    h = harness
    _, run = ask(h)
    awaiting(h, run)
    message = buttons(h, run)
    h.emu.click(ALICE, GENERAL, message, "agents_approve")
    h.emu.click(ALICE, GENERAL, message, "agents_approve")
    h.settle()
    assert Job.exists("agents-approve-1-1", connection=h.services.connection)
    assert h.services.queue.queue.job_ids.count("agents-approve-1-1") == 1
    assert ephemeral_texts(h, ALICE) == ["#1 is already being approved."]


def test_stale_buttons_say_already(harness: Harness) -> None:
    h = harness
    _, run = ask(h)
    awaiting(h, run)
    message = buttons(h, run)
    h.services.store.transition(run.id, RunStatus.APPROVED, by=ALICE)
    for action in ("agents_approve", "agents_rework", "agents_cancel"):
        h.emu.click(ALICE, GENERAL, message, action)
    h.settle()
    assert (
        ephemeral_texts(h, ALICE)
        == [
            "#1 is already approved. Its buttons do nothing now. To ask for something new, "
            "mention me in a new message."
        ]
        * 3
    )
    assert h.emu.views() == []


def test_approver_may_cancel_and_it_is_recorded(harness: Harness) -> None:
    h = harness
    _, run = ask(h)
    awaiting(h, run)
    h.emu.click(CAROL, GENERAL, buttons(h, run), "agents_cancel")
    h.settle()
    cancelled = h.services.store.get(run.id)
    assert cancelled.status is RunStatus.CANCELLED
    assert cancelled.status_by == CAROL


def test_rework_modal_rejects_blank_feedback_then_reworks(harness: Harness) -> None:
    h = harness
    ts, run = ask(h)
    awaiting(h, run)
    h.emu.click(ALICE, GENERAL, buttons(h, run), "agents_rework")
    h.settle()
    modal = h.emu.modal(ALICE)
    assert modal is not None
    blank = h.emu.submit_view(ALICE, modal["id"], {"feedback": {"feedback_text": "   "}})
    assert json.loads(blank.response_body) == {
        "response_action": "errors",
        "errors": {"feedback": "Tell me what to change: this can't be empty."},
    }
    assert h.services.store.get(run.id).status is RunStatus.AWAITING_DECISION
    h.emu.submit_view(ALICE, modal["id"], {"feedback": {"feedback_text": "read it from env"}})
    h.settle()
    reworked = h.services.store.get(run.id)
    assert (reworked.status, reworked.iteration) == (RunStatus.REWORK, 2)
    assert [f.text for f in reworked.pending_feedback] == ["read it from env"]
    assert "asked for rework" in bot_replies(h, ts)[-1]["text"]


def test_slash_command_status_help_and_refusals(harness: Harness) -> None:
    h = harness
    ask(h)
    h.emu.slash(ALICE, GENERAL, "/agents", "status")
    h.emu.slash(ALICE, GENERAL, "/agents", "frobnicate")
    h.emu.slash(BOB, GENERAL, "/agents", "cancel 1")
    h.emu.slash(BOB, GENERAL, "/agents", "status 1")
    h.settle()
    alice = ephemeral_texts(h, ALICE)
    assert "1 waiting" in alice[0]
    assert alice[1].startswith("I don't know `frobnicate`")
    bob = ephemeral_texts(h, BOB)
    assert "Only <@U_ALICE> (who asked) or an approver can cancel #1" in bob[0]
    assert "#1 acme/api" in bob[1]
    assert h.services.store.get(1).status is RunStatus.QUEUED


def test_a_mention_inside_a_thread_brings_the_thread_as_context(harness: Harness) -> None:
    h = harness
    root, _ = h.emu.post(BOB, GENERAL, "the retry limit of 3 is too low for the flaky upstream")
    h.emu.post(ALICE, GENERAL, "agreed, 5 would do", thread_ts=root)
    ts, _ = h.emu.mention(ALICE, GENERAL, "in acme/api: make it configurable", thread_ts=root)
    h.settle()
    run = h.services.store.find_by_thread(GENERAL, root)
    assert run is not None
    assert run.message_ts == ts
    assert run.context is not None
    assert "<@U_BOB>: the retry limit of 3 is too low" in run.context
    assert "<@U_ALICE>: agreed, 5 would do" in run.context
    assert "make it configurable" not in run.context


def test_app_home_shows_the_status_view(harness: Harness) -> None:
    h = harness
    ask(h)
    h.emu.app_home_opened(ALICE)
    h.settle()
    home = h.emu.home(ALICE)
    assert home is not None
    text = json.dumps(home["blocks"])
    assert "1 waiting" in text
    assert "acme/api" in text


def test_a_button_from_an_earlier_iteration_changes_nothing(harness: Harness) -> None:
    h = harness
    _, run = ask(h)
    awaiting(h, run)
    old = buttons(h, run)
    h.services.queue.request_rework(run.id, by=ALICE, feedback="again")
    h.services.store.transition(run.id, RunStatus.RUNNING, by="worker")
    h.services.store.transition(run.id, RunStatus.AWAITING_DECISION, by="worker")
    h.emu.click(ALICE, GENERAL, old, "agents_approve")
    h.settle()
    assert ephemeral_texts(h, ALICE) == [
        "That button is from iteration 1; #1 is on iteration 2 now. Use the buttons on its "
        "latest message. Nothing was changed."
    ]
    assert not Job.exists("agents-approve-1-2", connection=h.services.connection)
    h.emu.click(ALICE, GENERAL, buttons(h, run), "agents_approve")
    h.settle()
    assert Job.exists("agents-approve-1-2", connection=h.services.connection)
