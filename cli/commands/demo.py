"""``agents demo``: the whole flow on embedded defaults, as far as it is built.

No services needed: fakeredis with an in-process worker (or the real Redis when
REDIS_URL is set). It says plainly which stages exist and which do not yet.
"""

from __future__ import annotations

import argparse
import logging
import os

import redis
from rq import SimpleWorker

from core.run import Run, RunStatus
from core.store import RunStore
from jobs.queue import RunQueue

DEMO_REQUEST = "make the retry limit configurable"
DEMO_REPO = "examples/sample-repo"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the flow on embedded defaults (no Slack, GitHub or model key needed)",
        description="Run one request through the stages built so far, on embedded "
        "defaults: fakeredis and an in-process worker unless REDIS_URL is set.",
    )
    parser.add_argument("--request", default=DEMO_REQUEST, help="the request text")
    parser.set_defaults(func=handle)


def connection() -> tuple[redis.Redis, str]:
    url = os.environ.get("REDIS_URL")
    if url:
        return redis.Redis.from_url(url, socket_connect_timeout=3), f"Redis at {url}"
    import fakeredis

    return fakeredis.FakeRedis(), "fakeredis (in memory; set REDIS_URL to use a server)"


def render(store: RunStore, run: Run) -> list[str]:
    """The run's log as text, one line per event: what the Slack thread will show."""
    lines = []
    for event in store.events(run.id):
        detail = ", ".join(f"{k}={v}" for k, v in event.data.items())
        lines.append(f"  {event.at:%H:%M:%S} {event.type.value:<8} {event.by}: {detail}")
    return lines


def handle(args: argparse.Namespace) -> int:
    conn, where = connection()
    store = RunStore(conn, retention_seconds=3600, prefix="agents-demo")
    queue = RunQueue(conn, store, name="agents-demo", job_timeout=600)
    print(f"store and queue: {where}")
    run = store.create(requester="demo-user", repo=DEMO_REPO, request=args.request)
    print(f"created run {run.label}: {run.request!r} in {run.repo}")
    queue.enqueue(run)
    print(f"enqueued {run.label}; an in-process worker takes it")
    # The job's failure is reported below from the run record; RQ's traceback is noise here.
    logging.getLogger("rq.worker").setLevel(logging.CRITICAL)
    SimpleWorker([queue.queue], connection=conn).work(burst=True, logging_level="CRITICAL")
    final = store.get(run.id)
    print(f"run {final.label} is {final.status.value}; its event log:")
    print("\n".join(render(store, final)))
    built = final.status is RunStatus.FAILED and (final.error or "").startswith("NotBuiltYet")
    if built:
        print(
            "\nThis is as far as the product is built: a run is created, queued, taken by a "
            "worker and recorded. The blueprint (sandbox, agent, checks, PR) comes next."
        )
        return 0
    print(f"\nunexpected end state: {final.status.value} ({final.error})")
    return 1
