"""The fleet at a glance: what ``agents status`` and ``/agents status`` show.

Collected from the store's indexes and RQ's registries, then rendered by pure functions.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from rq import Queue, Worker

from runs.record import FINAL_STATUSES, Run, RunStatus, utcnow
from runs.store import RunStore


class StatusView(BaseModel):
    queue_name: str
    queue_depth: int
    workers: int
    counts: dict[RunStatus, int]
    running: list[Run]
    queued: list[Run]
    #: Estimated seconds until each queued run starts (None: no history to go on).
    queued_eta: list[int | None]
    finished: list[Run]
    cost_today: float
    at: datetime


def collect(store: RunStore, queue: Queue, *, finished_limit: int = 10) -> StatusView:
    counts = {status: store.count_by_status(status) for status in RunStatus}
    finished: list[Run] = []
    for status in FINAL_STATUSES:
        finished.extend(store.list_by_status(status, limit=finished_limit))
    finished.sort(key=lambda run: run.finished_at or run.updated_at, reverse=True)
    now = utcnow()
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    recent = store.list_recent(limit=200)
    cost_today = sum(run.cost.dollars for run in recent if run.updated_at >= midnight)
    workers = Worker.count(queue=queue)
    queued = list(reversed(store.list_by_status(RunStatus.QUEUED, limit=50)))
    running = store.list_by_status(RunStatus.RUNNING, limit=50)
    return StatusView(
        queue_name=queue.name,
        queue_depth=queue.count,
        workers=workers,
        counts=counts,
        running=running,
        queued=queued,
        queued_eta=estimate_starts(len(queued), len(running), workers, finished, now),
        finished=finished[:finished_limit],
        cost_today=round(cost_today, 4),
        at=now,
    )


def estimate_starts(
    queued: int, running: int, workers: int, finished: list[Run], now: datetime
) -> list[int | None]:
    """Seconds until each queued run starts: the queue ahead of it, divided among the
    workers, at the average duration of recently finished runs."""
    durations = [
        (run.finished_at - run.created_at).total_seconds()
        for run in finished
        if run.finished_at is not None
    ]
    if not durations or workers < 1:
        return [None] * queued
    average = sum(durations) / len(durations)
    busy = min(running, workers)
    etas: list[int | None] = []
    for position in range(queued):
        ahead = position + busy
        etas.append(int(average * (ahead // workers)) if ahead >= workers else 0)
    return etas


def _elapsed(run: Run, now: datetime) -> str:
    seconds = int((now - run.created_at).total_seconds())
    minutes, seconds = divmod(max(seconds, 0), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s"


def render_status_text(view: StatusView) -> str:
    lines = [
        f"queue {view.queue_name}: {view.queue_depth} waiting, {view.workers} worker(s) alive",
        "runs: "
        + (
            ", ".join(f"{status.value} {n}" for status, n in view.counts.items() if n) or "none yet"
        ),
        f"cost today: ${view.cost_today:.2f}",
        "",
        f"running ({len(view.running)}):",
    ]
    for run in view.running:
        step = run.step.value if run.step else "starting"
        lines.append(
            f"  {run.label} {run.repo} step={step} elapsed={_elapsed(run, view.at)} "
            f"cost=${run.cost.dollars:.2f}"
        )
    lines.append(f"queued ({len(view.queued)}):")
    for position, (run, eta) in enumerate(zip(view.queued, view.queued_eta, strict=False), start=1):
        starts = f", starts in ~{eta // 60}m{eta % 60:02d}s" if eta is not None else ""
        lines.append(f"  {position}. {run.label} {run.repo} by {run.requester}{starts}")
    lines.append(f"last {len(view.finished)} finished:")
    for run in view.finished:
        outcome = run.status.value + (f": {run.error}" if run.error else "")
        lines.append(f"  {run.label} {run.repo} {outcome} cost=${run.cost.dollars:.2f}")
    return "\n".join(lines)
