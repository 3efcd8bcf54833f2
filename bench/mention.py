"""Mention -> status message in the thread, as the person sees it.

From the moment the emulator starts delivering the mention to the moment it receives
the bot's ``chat.postMessage`` into that thread (the status message), one mention at a
time, with the workers idle: two ``agents worker`` processes are up (listening, with
their reaper and recovery threads) on the queue of the whole-run benchmarks, while
these mentions' runs go to a queue of their own, so no run executes meanwhile.
"""

from __future__ import annotations

import time

import redis

from bench.stack import CHANNEL, DEMO_REQUEST, REQUESTER, slack_stack
from bench.stats import Figure, Result, Target
from fakes.slack.webapi import ApiCall


def run(conn: redis.Redis, samples: int) -> Result:
    """Call with the workers up (``python -m bench`` starts them for this and the runs)."""
    latencies: list[float] = []
    with slack_stack(conn, queue="bench-mention") as stack:
        emu = stack.emu
        for n in range(samples + 3):  # three to warm up
            started = time.monotonic()
            ts, _delivery = emu.mention(REQUESTER, CHANNEL, f"{DEMO_REQUEST} [{n}]")

            def posted(ts: str = ts) -> ApiCall | None:
                return next(
                    (
                        c
                        for c in reversed(emu.calls("chat.postMessage"))
                        if c.args.get("thread_ts") == ts
                    ),
                    None,
                )

            call = emu.wait_for(posted, 30, "the status message")
            if n >= 3:
                latencies.append(call.at - started)
    figure = Figure(
        name="mention → status message in thread",
        unit="ms",
        samples=latencies,
        how=f"{samples} mentions one at a time; emulator's receipt of `chat.postMessage` "
        "minus the start of the delivery; real Redis; two `agents worker` processes idle",
        target=Target("p50", 0.300, "p50 ≤ 300 ms"),
        scale=1000,
    )
    return Result([figure])
