"""Throughput: runs through two real ``agents worker`` processes, and what each run
leaves in Redis.

The runs are created and enqueued as the bot does (``RunStore.create`` then
``RunQueue.enqueue``), all at once; the clock stops when the last one awaits a
decision. It runs after the whole-run benchmark, on the same two workers, so their
mirror cache is warm. Memory is
Redis's ``MEMORY USAGE`` of each run's keys: the record, its event log, its RQ job
and the pointer to it.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import redis

from bench.runs import QUEUE
from bench.stack import DEMO_REPO, DEMO_REQUEST, REQUESTER, is_settled, wait_until
from bench.stats import Figure, Result
from jobs.queue import RunQueue, current_job_key, job_id_for
from runs.record import RunStatus
from runs.store import RunStore


def memory(conn: redis.Redis, key: str) -> int:
    return int(conn.memory_usage(key, samples=0) or 0)


def run(conn: redis.Redis, procs: Any, sandbox: str, runs: int) -> Result:
    """Call with two workers up on :data:`QUEUE`, their mirror cache warm."""
    store = RunStore(conn)
    queue = RunQueue(conn, store, name=QUEUE, job_timeout=900)
    first = int(conn.get(f"{store.prefix}:runs:seq") or 0) + 1
    ids = range(first, first + runs)

    def settled() -> int:
        """Runs that stopped working (cheap: index sizes, not records)."""
        return sum(store.count_by_status(s) for s in RunStatus if is_settled(s))

    before = settled()
    started = time.monotonic()
    for _ in range(runs):
        run = store.create(requester=REQUESTER, repo=DEMO_REPO, request=DEMO_REQUEST)
        queue.enqueue(run)
    wait_until(lambda: settled() - before >= runs, 60 + 30 * runs, f"{runs} runs", procs, every=0.1)
    elapsed = time.monotonic() - started
    failures = [r for r in map(store.get, ids) if r.status is not RunStatus.AWAITING_DECISION]
    failed = len(failures)
    errors = sorted({f"{r.status.value}: {str(r.error)[:160]}" for r in failures})
    rates = runs / elapsed * 60
    record, events, job, total = [], [], [], []
    latencies = []
    for run_id in ids:
        current = store.get(run_id)
        parts = [
            memory(conn, f"{store.prefix}:run:{run_id}"),
            memory(conn, store.events_key(run_id)),
            memory(conn, f"rq:job:{job_id_for(run_id, current.iteration, 0)}")
            + memory(conn, f"rq:job:{job_id_for(run_id, current.iteration, 1)}"),
            memory(conn, current_job_key(store.prefix, run_id)),
        ]
        record.append(float(parts[0]))
        events.append(float(parts[1]))
        job.append(float(parts[2]))
        total.append(float(sum(parts)))
        latencies.append((current.updated_at - current.created_at).total_seconds())
    figures = [
        Figure(
            name="throughput",
            unit="runs/min",
            samples=[rates],
            how=f"{runs} runs through 2 `agents worker` processes, replay model, {sandbox} "
            f"sandbox, local forge; {elapsed:.1f} s for all; {failed} failed"
            + (f" ({'; '.join(errors)})" if errors else ""),
            decimals=1,
        ),
        Figure(
            name="… time from enqueue to awaiting decision, per run",
            unit="s",
            samples=latencies,
            how="the queue included: all runs are enqueued at once",
            decimals=1,
        ),
        Figure(
            name="Redis memory per run (record + events + RQ job + pointer)",
            unit="KiB",
            samples=total,
            how="`MEMORY USAGE` of each run's keys, a run awaiting its decision with its patch "
            "and event log",
            scale=1 / 1024,
        ),
    ]
    details = (
        f"Per run (median): record {statistics.median(record) / 1024:.1f} KiB, event log "
        f"{statistics.median(events) / 1024:.1f} KiB, RQ job {statistics.median(job) / 1024:.1f}"
        " KiB."
    )
    return Result(figures, details=details)
