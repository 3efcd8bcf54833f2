"""The Slack surface for the security tests: the bolt app over real signed HTTP, the
emulator as Slack, real Redis. The same wiring as ``tests/bot/conftest.py``; these
helpers add raw requests (to forge, age and tamper with them) and snapshots of what a
request could change.
"""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import redis
from rq import Queue

from bot.app import create_app
from bot.blocks import decision_message
from bot.emulator.delivery import sign
from bot.emulator.server import SlackEmulator
from bot.http import serve, wsgi_app
from bot.services import Services
from bot.slack_client import make_client
from core.projection import project
from core.run import Run, RunStatus
from tests.bot.conftest import ALICE, CAROL, GENERAL, Harness, bot_settings


@contextmanager
def open_surface(connection: redis.Redis, **overrides: Any) -> Iterator[Harness]:
    emu = SlackEmulator().start()
    emu.add_user(CAROL, "carol")
    emu.subscriptions = {"app_mention", "message.im"}
    services = Services.from_settings(bot_settings(emu, **overrides), connection)
    client = make_client(emu.bot_token, emu.api_url)
    executor = ThreadPoolExecutor(max_workers=1)
    app = create_app(services, client, listener_executor=executor)
    server = serve(wsgi_app(app, lambda: None), "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    emu.bot_url = f"http://127.0.0.1:{server.server_port}/slack/events"
    try:
        yield Harness(emu=emu, services=services, client=client, executor=executor)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        executor.shutdown(wait=True)
        emu.stop()


def post_raw(
    url: str,
    body: str,
    content_type: str,
    *,
    secret: str | None,
    timestamp: int,
    signed_body: str | None = None,
) -> int:
    """POST ``body``; signed with ``secret`` over ``signed_body`` (default: ``body``),
    or without any signature headers when ``secret`` is None. Returns the HTTP status."""
    headers = {"Content-Type": content_type}
    if secret is not None:
        headers["X-Slack-Request-Timestamp"] = str(timestamp)
        headers["X-Slack-Signature"] = sign(
            secret, str(timestamp), body if signed_body is None else signed_body
        )
    request = urllib.request.Request(  # noqa: S310 - a loopback URL we built
        url, data=body.encode(), method="POST", headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as err:
        status = int(err.code)
        err.close()
        return status


def bot_replies(h: Harness, channel: str, root_ts: str) -> list[dict[str, Any]]:
    return [m for m in h.emu.thread(channel, root_ts) if m["ts"] != root_ts and m.get("bot_id")]


def runs_created(h: Harness) -> int:
    return int(h.services.connection.get("agents:runs:seq") or 0)


def ask(h: Harness, text: str = "in acme/api: make the retry limit configurable") -> Run:
    ts, delivery = h.emu.mention(ALICE, GENERAL, text)
    assert delivery.status == 200
    h.settle()
    run = h.services.store.find_by_thread(GENERAL, ts)
    assert run is not None
    return run


def awaiting(h: Harness, run: Run, *, pr_number: int | None = 7) -> Run:
    """Move a fresh run to awaiting a decision, as a worker would."""
    store = h.services.store
    store.transition(run.id, RunStatus.RUNNING, by="worker")

    def published(r: Run) -> None:
        r.artifacts.pr_number = pr_number
        r.artifacts.pr_url = f"https://github.com/acme/api/pull/{pr_number}"

    store.update(run.id, published)
    return store.transition(run.id, RunStatus.AWAITING_DECISION, by="worker")


def buttons(h: Harness, run: Run) -> str:
    """Post the final message with its buttons, as the reporter does; returns its ts."""
    fallback, blocks = decision_message(project(h.services.store.get(run.id), []))
    posted = h.client.chat_postMessage(
        channel=run.channel or GENERAL, thread_ts=run.thread_ts, text=fallback, blocks=blocks
    )
    return str(posted["ts"])


def ephemeral_texts(h: Harness, user: str) -> list[str]:
    return [str(e["text"]) for e in h.emu.ephemerals(user)]


@dataclass(frozen=True)
class Snapshot:
    """Everything a decision could change: run records, event logs, the queue."""

    runs: dict[int, str]
    events: dict[int, int]
    jobs: tuple[str, ...]
    seq: int


def snapshot(h: Harness) -> Snapshot:
    store = h.services.store
    runs = {r.id: r for r in store.list_recent(limit=100)}
    queue = Queue(h.services.settings.queue, connection=h.services.connection)
    return Snapshot(
        runs={i: r.model_dump_json(exclude={"updated_at", "status_ts"}) for i, r in runs.items()},
        events={i: len(store.events(i)) for i in runs},
        jobs=tuple(sorted(queue.get_job_ids())),
        seq=runs_created(h),
    )
