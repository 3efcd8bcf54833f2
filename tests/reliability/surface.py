"""The Slack surface for the security tests: the bolt app over real signed HTTP, the
emulator as Slack, real Redis, opened with ``tests.bot.conftest.open_harness`` (raw
requests, to forge, age and tamper with them: ``tests.bot.conftest.post_raw``). These
helpers drive runs to where a test needs them, drain the reporter and take snapshots
of what a request could change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rq import Queue

from bot.blocks import ACTION_REWORK, decision_message
from runs.projection import project
from runs.record import Run, RunStatus
from tests.bot.conftest import ALICE, GENERAL, Harness


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


def rework_modal(h: Harness, run: Run, message: str | None = None) -> dict[str, Any]:
    """The requester clicks Rework on ``message`` (default: newly posted buttons); the
    modal that opens."""
    h.emu.click(ALICE, GENERAL, message or buttons(h, run), ACTION_REWORK)
    h.settle()
    modal = h.emu.modal(ALICE)
    assert modal is not None
    return modal


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
