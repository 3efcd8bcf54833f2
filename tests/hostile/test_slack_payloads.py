"""Generated Slack payloads, validly signed, over real HTTP to the bolt app (the emulator
as Slack, real Redis): mentions and DMs with any text, ids and timestamps; ``/agents``
with any arguments; buttons pressed on someone else's run with any action and value.

Invariants, checked after every example: a defined answer (200; 400 for a body bolt
cannot read; 404 for an action no listener takes, as bolt answers it), no traceback
and no error in the logs, no run without a queue entry, and
no change to another user's run (Alice's, awaiting her decision; the payloads come from
other users, never in her thread: who may steer a run is the decisions module's).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.blocks import ACTION_APPROVE, ACTION_CANCEL, ACTION_REWORK
from runs.record import Run, RunStatus
from tests.bot.conftest import ALICE, BOB, GENERAL, Harness, open_harness
from tests.conftest import real_redis
from tests.reliability.http_client import post
from tests.reliability.surface import ask, awaiting, buttons

pytestmark = pytest.mark.redis

USERS = ["U_MALLORY", "U_EVE", BOB]
#: Channels that exist in the emulator (Slack signs events only from real ones); "DM"
#: stands for Mallory's DM with the bot.
CHANNELS = [GENERAL, "C_ELSEWHERE", "DM"]
anything = st.text(st.characters(codec=None), max_size=200)
numeric_ts = st.builds(
    lambda s, us: f"{s}.{us:06d}",
    st.integers(1_600_000_000, 1_900_000_000),
    st.integers(0, 999_999),
)


class Collected(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class World:
    """The bot, Alice's run awaiting her decision, and templates of genuine requests."""

    def __init__(self, h: Harness) -> None:
        self.h = h
        for user in ("U_MALLORY", "U_EVE"):
            h.emu.add_user(user, user.removeprefix("U_").lower())
        h.emu.add_channel("C_ELSEWHERE", "elsewhere")
        self.dm = h.emu.dm("U_MALLORY")
        self.alice = awaiting(h, ask(h))
        self.message = buttons(h, self.alice)
        slash = h.emu.slash(BOB, GENERAL, "/agents", "help")
        self.slash = {k: v[0] for k, v in parse_qs(slash.body, keep_blank_values=True).items()}
        click = h.emu.click(BOB, GENERAL, self.message, ACTION_APPROVE)
        self.click = json.loads(parse_qs(click.body)["payload"][0])
        h.settle()
        self.logs = Collected()
        self.before = self.snapshot()

    def snapshot(self) -> str:
        run = self.h.services.store.get(self.alice.id)
        return run.model_dump_json(exclude={"updated_at", "status_ts"})

    def send(self, body: bytes, content_type: str) -> int:
        self.logs.records.clear()
        answer = post(self.h.emu.bot_url, body, content_type, secret=self.h.emu.signing_secret)
        self.h.settle()
        assert answer.status is not None
        return answer.status

    def check(self, status: int) -> None:
        assert status in (200, 400, 404), status
        bad = [r for r in self.logs.records if r.exc_info or r.levelno >= logging.ERROR]
        assert not bad, [r.getMessage()[:300] for r in bad]
        assert self.snapshot() == self.before
        store, queue = self.h.services.store, self.h.services.queue
        for run in store.list_recent(limit=500):
            if run.status is RunStatus.QUEUED:
                assert queue.job(run) is not None, f"run #{run.id} has no queue entry"


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    connection = real_redis()
    with open_harness(connection, allowed_repos=["acme/*"]) as h:
        w = World(h)
        root = logging.getLogger()
        root.addHandler(w.logs)
        try:
            yield w
        finally:
            root.removeHandler(w.logs)
    connection.flushdb()
    connection.close()


def mention(event: dict[str, Any]) -> bytes:
    payload = {"type": "event_callback", "team_id": "T1", "event_id": "Ev1", "event": event}
    return json.dumps(payload).encode()


@settings(max_examples=60)
@given(
    kind=st.sampled_from(["app_mention", "message"]),
    user=st.sampled_from(USERS),
    text=st.one_of(anything, anything.map(lambda t: f"<@U_BOT> in acme/api: {t}")),
    channel=st.sampled_from(CHANNELS),
    ts=st.one_of(numeric_ts, anything),
    thread=st.one_of(st.none(), numeric_ts),
    im=st.booleans(),
)
def test_mentions_and_dms(
    world: World,
    kind: str,
    user: str,
    text: str,
    channel: str,
    ts: str,
    thread: str | None,
    im: bool,
) -> None:
    channel = world.dm if channel == "DM" else channel
    event: dict[str, Any] = {"type": kind, "user": user, "text": text, "channel": channel, "ts": ts}
    if thread is not None and thread != world.alice.thread_ts:
        event["thread_ts"] = thread
    if im:
        event["channel_type"] = "im"
    world.check(world.send(mention(event), "application/json"))


@settings(max_examples=60)
@given(
    user=st.sampled_from(USERS),
    verb=st.sampled_from(["status", "cancel", "help", "", "approve"]),
    argument=st.one_of(anything, st.just("{id}"), st.text(st.characters(categories=["Nd", "No"]))),
)
def test_slash_commands(world: World, user: str, verb: str, argument: str) -> None:
    form = dict(world.slash)
    form.update(user_id=user, text=f"{verb} {argument.replace('{id}', str(world.alice.id))}")
    world.check(world.send(urlencode(form).encode(), "application/x-www-form-urlencoded"))


@settings(max_examples=40)
@given(
    user=st.sampled_from(USERS),
    action=st.sampled_from([ACTION_APPROVE, ACTION_REWORK, ACTION_CANCEL, "agents_other"]),
    value=st.one_of(st.just("{id}"), anything),
)
def test_buttons_on_someone_elses_run(world: World, user: str, action: str, value: str) -> None:
    payload = json.loads(json.dumps(world.click))
    payload["user"]["id"] = user
    for item in payload.get("actions", []):
        item["action_id"] = action
        item["value"] = value.replace("{id}", str(world.alice.id))
    body = urlencode({"payload": json.dumps(payload)}).encode()
    world.check(world.send(body, "application/x-www-form-urlencoded"))


def test_the_world_is_alices(world: World) -> None:
    """The invariants above watched a run that really awaits Alice's decision."""
    run: Run = world.h.services.store.get(world.alice.id)
    assert (run.requester, run.status) == (ALICE, RunStatus.AWAITING_DECISION)
