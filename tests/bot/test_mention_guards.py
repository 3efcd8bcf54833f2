"""The mention handler's decisions that keep the bot from talking to itself, and what a
mention in a finished run's thread does. Through the real bolt app, signed deliveries
from the Slack emulator, and real Redis."""

from __future__ import annotations

from typing import Any

import pytest

from runs.record import Run, RunStatus
from tests.bot.conftest import ALICE, GENERAL, Harness

pytestmark = pytest.mark.redis

HELPER_BOT, HELPER_BOT_ID = "U_HELPER", "B_HELPER"


def runs_created(h: Harness) -> int:
    return int(h.services.connection.get("agents:runs:seq") or 0)


def bot_posts(h: Harness) -> int:
    return len(h.emu.calls("chat.postMessage"))


def channel_event(h: Harness, text: str, **extra: Any) -> dict[str, Any]:
    """An ``app_mention`` for a message that is really in #general."""
    ts, _ = h.emu.post(ALICE, GENERAL, "context for the event")
    event = {
        "type": "app_mention",
        "user": ALICE,
        "text": f"<@{h.emu.bot_user_id}> {text}",
        "ts": ts,
        "channel": GENERAL,
        "event_ts": ts,
    }
    return {**event, **extra}


ASK = "in acme/api: make the retry limit configurable"


@pytest.mark.parametrize(
    "variant",
    [
        {"user": HELPER_BOT, "bot_id": HELPER_BOT_ID},  # another app's bot mentions us
        {"subtype": "bot_message", "bot_id": HELPER_BOT_ID},  # a legacy bot message
        {"subtype": "thread_broadcast"},  # any subtype
        {"user": None},  # no author at all
    ],
    ids=["other-bot", "bot_message", "subtype", "no-user"],
)
def test_a_mention_by_a_bot_or_with_a_subtype_is_ignored(
    harness: Harness, variant: dict[str, Any]
) -> None:
    h = harness
    event = channel_event(h, ASK, **variant)
    if variant.get("user", ALICE) is None:
        del event["user"]
    posts, runs = bot_posts(h), runs_created(h)
    delivery = h.emu.send_event(event, channel_id=GENERAL)
    h.settle()
    assert delivery.status == 200
    assert runs_created(h) == runs
    assert bot_posts(h) == posts
    assert h.emu.calls("reactions.add") == []
    # The same message from a person is handled: the guard is what stopped it above.
    human = {k: v for k, v in event.items() if k not in ("bot_id", "subtype")}
    h.emu.send_event({**human, "user": ALICE}, channel_id=GENERAL)
    h.settle()
    assert runs_created(h) == runs + 1


def test_the_bots_own_reply_in_a_dm_is_not_answered(harness: Harness) -> None:
    """Slack delivers the bot's own DM replies back to it as ``message`` events; were they
    answered, every reply would beget another."""
    h = harness
    dm = h.emu.dm(ALICE)
    runs = runs_created(h)
    ts, _ = h.emu.post(ALICE, dm, "hello?")
    h.settle()
    assert bot_posts(h) == 1  # the usage reply
    (reply,) = [m for m in h.emu.thread(dm, ts) if m.get("bot_id")]
    echo = {
        "type": "message",
        "user": h.emu.bot_user_id,
        "bot_id": reply["bot_id"],
        "app_id": reply["app_id"],
        "text": reply["text"],
        "ts": reply["ts"],
        "thread_ts": ts,
        "channel": dm,
        "event_ts": reply["ts"],
        "channel_type": "im",
    }
    for _ in range(2):
        assert h.emu.send_event(echo, channel_id=dm).status == 200
    edited = {
        "type": "message",
        "subtype": "message_changed",
        "channel": dm,
        "ts": h.emu.ws.next_ts(),
        "message": {"user": ALICE, "text": "in acme/api: edited", "ts": ts},
        "channel_type": "im",
    }
    assert h.emu.send_event(edited, channel_id=dm).status == 200
    h.settle()
    assert bot_posts(h) == 1
    assert runs_created(h) == runs


def finished(h: Harness, run: Run, status: RunStatus) -> Run:
    store = h.services.store
    if status is RunStatus.APPROVED:
        store.transition(run.id, RunStatus.RUNNING, by="worker")
        store.transition(run.id, RunStatus.AWAITING_DECISION, by="worker")
    return store.transition(run.id, status, by="worker", reason="test")


@pytest.mark.parametrize(
    "status", [RunStatus.APPROVED, RunStatus.FAILED, RunStatus.CANCELLED], ids=str
)
def test_a_mention_in_a_finished_runs_thread_starts_nothing(
    harness: Harness, status: RunStatus
) -> None:
    h = harness
    runs = runs_created(h)
    ts, _ = h.emu.mention(ALICE, GENERAL, ASK)
    h.settle()
    run = h.services.store.find_by_thread(GENERAL, ts)
    assert run is not None
    done = finished(h, run, status)
    jobs = h.services.queue.queue.count
    for text in ("also add docs", "in acme/api: do something else entirely", "x" * 20_000):
        h.emu.mention(ALICE, GENERAL, text, thread_ts=ts)
        h.settle()
        last = [m for m in h.emu.thread(GENERAL, ts) if m.get("bot_id")][-1]
        assert f"#{run.id} is {status.value}" in last["text"]
        assert "mention me in a new message" in last["text"]
    after = h.services.store.get(run.id)
    assert runs_created(h) == runs + 1
    assert h.services.queue.queue.count == jobs
    assert (after.status, after.iteration, after.pending_feedback) == (
        done.status,
        done.iteration,
        done.pending_feedback,
    )
