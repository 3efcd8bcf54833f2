"""Ack latency: signed mentions over HTTP to the bolt app, against a trivial handler.

Each sample is one ``app_mention`` delivered by the emulator (signed as Slack signs,
over a fresh HTTP connection) until the bot's HTTP answer; the listener's work (create
the run, enqueue it, react, post the status message) happens after the ack, on bolt's
pool, and overlaps the next requests as it would under load. The baseline is the same
signed body sent the same way to an ASGI handler that only reads the body and answers
200, on the same server (:class:`process.http.HttpServer`), alternated sample by sample
so noise hits both.
"""

from __future__ import annotations

import redis

from bench.stack import CHANNEL, DEMO_REQUEST, REQUESTER, slack_stack
from bench.stats import Figure, Result, Target
from fakes.slack.delivery import Deliverer
from process.http import HttpLimits, HttpServer, Receive, Scope, Send, read_body, respond


async def trivial(scope: Scope, receive: Receive, send: Send) -> None:
    await read_body(scope, receive, HttpLimits())
    await respond(send, 200, b"")


def run(conn: redis.Redis, samples: int) -> Result:
    baseline_server = HttpServer(trivial, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{baseline_server.port}/slack/events"
    deliverer = Deliverer()
    acks: list[float] = []
    base: list[float] = []
    failed = 0
    try:
        with slack_stack(conn, queue="bench-ack") as stack:
            emu = stack.emu
            for n in range(samples + 20):  # the first 20 warm up both paths
                _ts, delivery = emu.mention(REQUESTER, CHANNEL, f"{DEMO_REQUEST} ({n})")
                raw = deliverer.send(
                    kind="event_callback",
                    url=url,
                    body=delivery.body,
                    content_type="application/json",
                    signing_secret=emu.signing_secret,
                    payload=delivery.payload,
                )
                if not delivery.ok or not raw.ok:
                    failed += 1
                if n >= 20:
                    acks.append(delivery.elapsed)
                    base.append(raw.elapsed)
            # Let the listeners finish before the stack goes away.
            emu.wait_for(
                lambda: len(emu.calls("chat.postMessage")) >= samples + 20,
                120,
                "every status message",
            )
    finally:
        baseline_server.stop()
    figure = Figure(
        name="ack latency",
        unit="ms",
        samples=acks,
        how=f"{samples} signed `app_mention` deliveries over HTTP to the bolt app "
        "(`bot.app.create_app` served by `bot.http.asgi_app` on uvicorn), real Redis; "
        f"{failed} non-2xx answers",
        target=Target("p99", 0.050, "p99 ≤ 50 ms"),
        baseline=base,
        baseline_label="same signed body to a trivial ASGI handler on the same server",
        paired_ratios=[a / b for a, b in zip(acks, base, strict=True) if b > 0],
        scale=1000,
    )
    return Result([figure])
