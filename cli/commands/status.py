"""``agents status``: the fleet view for operators, as ``/agents status`` shows it."""

from __future__ import annotations

import argparse

import redis
from redis.exceptions import ConnectionError as RedisConnectionError
from rq import Queue

from jobs.status import collect, render_status_text
from process import settings
from process.logs import mask_url
from runs.store import RunStore


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "status",
        help="show the queue, workers, running and recent runs, and today's cost",
        description="Show what the fleet is doing. Reads REDIS_URL and AGENTS_QUEUE.",
    )
    parser.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    common = settings.load(settings.CommonSettings)
    connection = redis.Redis.from_url(common.redis_url, socket_connect_timeout=3)
    try:
        store = RunStore(connection, retention_seconds=common.run_retention_seconds)
        view = collect(store, Queue(common.queue, connection=connection))
    except RedisConnectionError as exc:
        print(
            f"agents status: cannot reach Redis at {mask_url(common.redis_url)} ({exc}); "
            "start it or set REDIS_URL"
        )
        return 1
    finally:
        connection.close()
    print(render_status_text(view))
    return 0
