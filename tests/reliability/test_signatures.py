"""Slack request signatures: forged, unsigned, stale, future, tampered and replayed
requests, for each kind of request Slack sends (Events API, buttons, modal submissions,
slash commands), over real HTTP to the bolt app, on real Redis.

The genuine request of each kind is captured by letting the emulator send it signed with
the wrong secret (the "forged" row); the other rows re-send that body with other
headers. "Replayed" means a captured request sent again, byte for byte with its valid
signature, inside Slack's 5-minute window: the signature can't tell it from the
original, so what protects it is idempotency (one run per Slack message, atomic status
transitions, unique job ids).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from urllib.parse import parse_qs, urlencode

import pytest
import redis
from rq import Queue

from bot.blocks import ACTION_APPROVE, ACTION_REWORK
from bot.emulator.delivery import Delivery
from core.run import RunStatus
from tests.bot.conftest import ALICE, BOB, CAROL, GENERAL, Harness
from tests.reliability.figures import record
from tests.reliability.surface import (
    ask,
    awaiting,
    buttons,
    open_surface,
    post_raw,
    runs_created,
    snapshot,
)

pytestmark = pytest.mark.redis

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
ROWS: list[list[str | int]] = []


@pytest.fixture
def surface(real_redis_conn: redis.Redis) -> Iterator[Harness]:
    with open_surface(real_redis_conn) as h:
        yield h


def forged(h: Harness, send: Callable[[], Delivery]) -> Delivery:
    """Let the emulator send a genuine request signed with the wrong secret."""
    secret = h.emu.signing_secret
    h.emu.signing_secret = "not-the-signing-secret"
    try:
        delivery = send()
    finally:
        h.emu.signing_secret = secret
    h.settle()
    return delivery


def tamper_form(body: str, **changes: str) -> str:
    """A form body with some fields changed (for ``payload``: JSON keys inside it)."""
    form = {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}
    if "payload" in form:
        payload = json.loads(form["payload"])
        for key, value in changes.items():
            payload["user"][key] = value
        form["payload"] = json.dumps(payload)
    else:
        form.update(changes)
    return urlencode(form)


def attacks(
    h: Harness, kind: str, delivery: Delivery, content_type: str, tampered: str
) -> list[tuple[str, int]]:
    """The request sent without signature, stale, from the future, and tampered."""
    url, body, secret = delivery.url, delivery.body, h.emu.signing_secret
    now = int(time.time())
    sent = [
        ("forged (signed with another secret)", int(delivery.status or 0)),
        (
            "unsigned (no signature headers)",
            post_raw(url, body, content_type, secret=None, timestamp=now),
        ),
        (
            "stale (valid signature, 6 minutes old)",
            post_raw(url, body, content_type, secret=secret, timestamp=now - 360),
        ),
        (
            "from the future (valid signature, +6 minutes)",
            post_raw(url, body, content_type, secret=secret, timestamp=now + 360),
        ),
        (
            "tampered (body changed after signing)",
            post_raw(url, tampered, content_type, secret=secret, timestamp=now, signed_body=body),
        ),
    ]
    h.settle()
    return sent


def check_rejected(kind: str, sent: list[tuple[str, int]], effect: str) -> None:
    for attack, status in sent:
        assert status == 401, (kind, attack, status)
        ROWS.append([kind, attack, status, effect])


def test_events_api(surface: Harness) -> None:
    h = surface
    delivery = forged(h, lambda: h.emu.mention(ALICE, GENERAL, "in acme/api: steal it")[1])
    tampered = delivery.body.replace("steal it", "steal everything")
    before = snapshot(h)
    check_rejected("event (app_mention)", attacks(h, "event", delivery, JSON, tampered), "no run")
    assert snapshot(h) == before
    assert runs_created(h) == 0
    # The genuine body, signed and fresh, is accepted: the rejections above are real.
    now = int(time.time())
    secret = h.emu.signing_secret
    assert post_raw(delivery.url, delivery.body, JSON, secret=secret, timestamp=now) == 200
    h.settle()
    assert runs_created(h) == 1
    ROWS.append(["event (app_mention)", "genuine (control)", 200, "1 run created"])
    # Replayed within the window, with its valid signature: accepted, but one message
    # makes one run (delivery dedupe on channel + message ts).
    for _ in range(3):
        assert post_raw(delivery.url, delivery.body, JSON, secret=secret, timestamp=now) == 200
    h.settle()
    assert runs_created(h) == 1
    assert Queue("bot-tests", connection=h.services.connection).count == 1
    ROWS.append(["event (app_mention)", "replayed 3 times in the window", 200, "no second run"])


def test_buttons(surface: Harness) -> None:
    h = surface
    run = awaiting(h, ask(h))
    message = buttons(h, run)
    delivery = forged(h, lambda: h.emu.click(BOB, GENERAL, message, ACTION_APPROVE))
    # Bob may not approve; the tamperer claims to be Carol, an approver.
    tampered = tamper_form(delivery.body, id=CAROL, username="carol", name="carol")
    before = snapshot(h)
    sent = attacks(h, "button", delivery, FORM, tampered)
    check_rejected("button (approve)", sent, "run unchanged, no job")
    assert snapshot(h) == before
    assert h.services.store.get(run.id).status is RunStatus.AWAITING_DECISION
    # Alice's genuine click, replayed: one approve job.
    genuine = h.emu.click(ALICE, GENERAL, message, ACTION_APPROVE)
    assert genuine.status == 200
    h.settle()
    now = int(time.time())
    for _ in range(3):
        status = post_raw(
            genuine.url, genuine.body, FORM, secret=h.emu.signing_secret, timestamp=now
        )
        assert status == 200
    h.settle()
    jobs = Queue("bot-tests", connection=h.services.connection).get_job_ids()
    assert jobs.count(f"agents-approve-{run.id}-1") == 1
    ROWS.append(["button (approve)", "replayed 3 times in the window", 200, "one approve job"])


def test_modal_submission(surface: Harness) -> None:
    h = surface
    run = awaiting(h, ask(h))
    h.emu.click(ALICE, GENERAL, buttons(h, run), ACTION_REWORK)
    h.settle()
    modal = h.emu.modal(ALICE)
    assert modal is not None
    values = {"feedback": {"feedback_text": "use an env var"}}
    delivery = forged(h, lambda: h.emu.submit_view(ALICE, modal["id"], values))
    tampered = tamper_form(delivery.body, id=BOB)
    before = snapshot(h)
    check_rejected(
        "modal (rework submission)",
        attacks(h, "modal", delivery, FORM, tampered),
        "run unchanged",
    )
    assert snapshot(h) == before
    # The genuine submission, then replayed: one rework, one new iteration.
    now = int(time.time())
    secret = h.emu.signing_secret
    for _ in range(3):
        status = post_raw(delivery.url, delivery.body, FORM, secret=secret, timestamp=now)
        assert status == 200
    h.settle()
    reworked = h.services.store.get(run.id)
    assert (reworked.status, reworked.iteration) == (RunStatus.REWORK, 2)
    assert reworked.pending_feedback == ["use an env var"]
    ROWS.append(
        [
            "modal (rework submission)",
            "genuine, then replayed 2 times",
            200,
            "one rework (iteration 2)",
        ]
    )


def test_slash_command(surface: Harness) -> None:
    h = surface
    run = ask(h)
    delivery = forged(h, lambda: h.emu.slash(ALICE, GENERAL, "/agents", f"cancel {run.id}"))
    tampered = tamper_form(delivery.body, text=f"cancel {run.id} now")
    before = snapshot(h)
    check_rejected(
        "slash command (/agents cancel)",
        attacks(h, "slash", delivery, FORM, tampered),
        "run unchanged",
    )
    assert snapshot(h) == before
    assert h.services.store.get(run.id).status is RunStatus.QUEUED
    now = int(time.time())
    secret = h.emu.signing_secret
    for _ in range(3):
        status = post_raw(delivery.url, delivery.body, FORM, secret=secret, timestamp=now)
        assert status == 200
    h.settle()
    cancelled = h.services.store.get(run.id)
    assert cancelled.status is RunStatus.CANCELLED
    transitions = [e for e in h.services.store.events(run.id) if e.type.value == "status"]
    assert [e.data["to"] for e in transitions] == ["cancelled"]
    ROWS.append(
        [
            "slash command (/agents cancel)",
            "genuine, then replayed 2 times",
            200,
            "one cancellation",
        ]
    )


def test_zz_record_the_table() -> None:
    """Runs last in this module (pytest keeps file order): writes the figure."""
    kinds = {row[0] for row in ROWS}
    assert len(kinds) == 4, "run the whole module to record the table"
    record(
        "security-signatures",
        "Security: Slack request signatures",
        ["request", "attack", "HTTP status", "effect"],
        ROWS,
        notes=(
            "Every request goes over real HTTP to the bolt app (signature check by "
            "slack-bolt with `SLACK_SIGNING_SECRET`; 5-minute window either way). "
            "*Replayed* means a captured request re-sent byte for byte with its valid "
            "signature inside the window: the signature cannot tell it from the original, "
            "so idempotency protects it: one run per Slack message (`Services."
            "first_delivery`, keyed on channel and message ts), decisions as checked "
            "status transitions and unique RQ job ids. A replay after the window is stale."
        ),
        order=60,
    )
