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

from bot.blocks import ACTION_APPROVE
from fakes.slack.delivery import Delivery
from runs.events import StatusChanged
from runs.record import RunStatus
from tests.bot.conftest import ALICE, BOB, CAROL, GENERAL, Harness, open_harness, post_raw
from tests.reliability.figures import Table
from tests.reliability.surface import (
    ask,
    awaiting,
    buttons,
    rework_modal,
    runs_created,
    snapshot,
)

pytestmark = pytest.mark.redis

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
TABLE = Table(
    "security-signatures",
    "Security: Slack request signatures",
    ["request", "attack", "HTTP status", "effect"],
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
record_table = TABLE.fixture()


@pytest.fixture
def surface(real_redis_conn: redis.Redis) -> Iterator[Harness]:
    with open_harness(real_redis_conn) as h:
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
    h: Harness, delivery: Delivery, content_type: str, tampered: str
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


def rejected(
    h: Harness, kind: str, delivery: Delivery, content_type: str, tampered: str, effect: str
) -> None:
    """Every attack on ``delivery`` is answered 401 and changes nothing."""
    before = snapshot(h)
    for attack, status in attacks(h, delivery, content_type, tampered):
        assert status == 401, (kind, attack, status)
        TABLE.add(kind, attack, status, effect)
    assert snapshot(h) == before


def replay(
    h: Harness, delivery: Delivery, content_type: str, times: int, timestamp: int | None = None
) -> int:
    """Send ``delivery``'s body ``times`` times, validly signed at ``timestamp`` (now by
    default), each answered 200; the timestamp, to replay the same request again."""
    now = int(time.time()) if timestamp is None else timestamp
    secret = h.emu.signing_secret
    for _ in range(times):
        status = post_raw(delivery.url, delivery.body, content_type, secret=secret, timestamp=now)
        assert status == 200
    h.settle()
    return now


def test_events_api(surface: Harness) -> None:
    h = surface
    delivery = forged(h, lambda: h.emu.mention(ALICE, GENERAL, "in acme/api: steal it")[1])
    tampered = delivery.body.replace("steal it", "steal everything")
    rejected(h, "event (app_mention)", delivery, JSON, tampered, "no run")
    assert runs_created(h) == 0
    # The genuine body, signed and fresh, is accepted: the rejections above are real.
    now = replay(h, delivery, JSON, times=1)
    assert runs_created(h) == 1
    TABLE.add("event (app_mention)", "genuine (control)", 200, "1 run created")
    # Replayed within the window, with its valid signature: accepted, but one message
    # makes one run (delivery dedupe on channel + message ts).
    replay(h, delivery, JSON, times=3, timestamp=now)
    assert runs_created(h) == 1
    assert Queue("bot-tests", connection=h.services.connection).count == 1
    TABLE.add("event (app_mention)", "replayed 3 times in the window", 200, "no second run")


def test_buttons(surface: Harness) -> None:
    h = surface
    run = awaiting(h, ask(h))
    message = buttons(h, run)
    delivery = forged(h, lambda: h.emu.click(BOB, GENERAL, message, ACTION_APPROVE))
    # Bob may not approve; the tamperer claims to be Carol, an approver.
    tampered = tamper_form(delivery.body, id=CAROL, username="carol", name="carol")
    rejected(h, "button (approve)", delivery, FORM, tampered, "run unchanged, no job")
    assert h.services.store.get(run.id).status is RunStatus.AWAITING_DECISION
    # Alice's genuine click, replayed: one approve job.
    genuine = h.emu.click(ALICE, GENERAL, message, ACTION_APPROVE)
    assert genuine.status == 200
    h.settle()
    replay(h, genuine, FORM, times=3)
    jobs = Queue("bot-tests", connection=h.services.connection).get_job_ids()
    assert jobs.count(f"agents-approve-{run.id}-1") == 1
    TABLE.add("button (approve)", "replayed 3 times in the window", 200, "one approve job")


def test_modal_submission(surface: Harness) -> None:
    h = surface
    run = awaiting(h, ask(h))
    modal = rework_modal(h, run)
    values = {"feedback": {"feedback_text": "use an env var"}}
    delivery = forged(h, lambda: h.emu.submit_view(ALICE, modal["id"], values))
    tampered = tamper_form(delivery.body, id=BOB)
    rejected(h, "modal (rework submission)", delivery, FORM, tampered, "run unchanged")
    # The genuine submission, then replayed: one rework, one new iteration.
    replay(h, delivery, FORM, times=3)
    reworked = h.services.store.get(run.id)
    assert (reworked.status, reworked.iteration) == (RunStatus.REWORK, 2)
    assert [f.text for f in reworked.pending_feedback] == ["use an env var"]
    TABLE.add(
        "modal (rework submission)",
        "genuine, then replayed 2 times",
        200,
        "one rework (iteration 2)",
    )


def test_slash_command(surface: Harness) -> None:
    h = surface
    run = ask(h)
    delivery = forged(h, lambda: h.emu.slash(ALICE, GENERAL, "/agents", f"cancel {run.id}"))
    tampered = tamper_form(delivery.body, text=f"cancel {run.id} now")
    rejected(h, "slash command (/agents cancel)", delivery, FORM, tampered, "run unchanged")
    assert h.services.store.get(run.id).status is RunStatus.QUEUED
    replay(h, delivery, FORM, times=3)
    cancelled = h.services.store.get(run.id)
    assert cancelled.status is RunStatus.CANCELLED
    transitions = [e for e in h.services.store.events(run.id) if isinstance(e, StatusChanged)]
    assert [e.to for e in transitions] == ["cancelled"]
    TABLE.add(
        "slash command (/agents cancel)",
        "genuine, then replayed 2 times",
        200,
        "one cancellation",
    )
