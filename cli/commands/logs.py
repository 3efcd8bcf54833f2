"""``agents logs N [-f]``: a run's event log, one line per event, as the thread is drawn
from it. ``-f`` follows the log until the run is finished (or Ctrl-C)."""

from __future__ import annotations

import argparse
import sys

import redis
from redis.exceptions import ConnectionError as RedisConnectionError

from cli.commands.decide import EXIT_USAGE, STORE_PREFIXES, parse_run_id, plain
from process import settings
from process.exceptions import RunNotFound
from process.logs import mask_url
from runs.events import Event
from runs.store import RunStore

EXIT_MISSING = 1
#: Milliseconds one blocking read of the log waits before the run's status is looked at.
FOLLOW_BLOCK_MS = 1000


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "logs",
        help="print a run's event log; -f follows it until the run is finished",
        description="Print a run's event log, one line per event. Reads REDIS_URL.",
    )
    parser.add_argument("run", help="the run's id, e.g. 42 or #42")
    parser.add_argument(
        "-f", "--follow", action="store_true", help="keep printing until the run is finished"
    )
    parser.add_argument(
        "--runs",
        choices=sorted(STORE_PREFIXES),
        default="bot",
        help="whose runs: the bot's (default) or those `agents run` started",
    )
    parser.set_defaults(func=handle)


def event_line(event: Event) -> str:
    """``12:03:04 status  worker-1: queued -> running``: when, what, who, and its line."""
    line = " ".join(plain(event.line).split())
    return f"{event.at:%H:%M:%S} {event.kind:<14} {event.by}: {line}"


def follow_log(store: RunStore, run_id: int, after: str | None) -> None:
    """Print events after ``after`` as they come, until the run is final and its log
    has nothing more."""
    key = store.events_key(run_id)
    while True:
        final = store.get(run_id).status.is_final
        new = store.events(run_id, after=after)
        for event in new:
            print(event_line(event), flush=True)
            after = event.id or after
        if final and not new:
            return
        if not new:  # wait for the log to grow (or for a moment, then look at the status)
            store.redis.xread({key: after or "0-0"}, block=FOLLOW_BLOCK_MS)


def handle(args: argparse.Namespace) -> int:
    run_id = parse_run_id(args.run)
    if run_id is None:
        print(
            f"agents logs: {args.run[:40]!r} is not a run id; try `agents logs 42`", file=sys.stderr
        )
        return EXIT_USAGE
    operator = settings.load(settings.OperatorSettings)
    connection = redis.Redis.from_url(operator.redis_url, socket_connect_timeout=3)
    store = RunStore(
        connection,
        retention_seconds=operator.run_retention_seconds,
        prefix=STORE_PREFIXES[args.runs],
    )
    try:
        run = store.get(run_id)
        events = store.events(run_id)
        for event in events:
            print(event_line(event), flush=True)
        if args.follow:
            follow_log(store, run.id, events[-1].id if events else None)
    except RunNotFound:
        print(f"agents logs: there is no run #{run_id} (or its record expired)", file=sys.stderr)
        return EXIT_MISSING
    except RedisConnectionError as exc:
        print(
            f"agents logs: cannot reach Redis at {mask_url(operator.redis_url)} ({exc}); "
            "start it or set REDIS_URL",
            file=sys.stderr,
        )
        return EXIT_MISSING
    except KeyboardInterrupt:
        return 0
    finally:
        connection.close()
    return 0
