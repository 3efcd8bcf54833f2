"""``agents stats``: what the agent delivered, per repository and in total, over a
window: runs, PRs opened and merged, merged rate, median time to PR, cost per run and
per merged PR, rework and CI rounds per PR, top failure reasons, and the share of
merged lines still on the default branch after 30 and 90 days.

It reads the outcomes the workers' stats pass keeps in Redis (as ``/agents stats``
does). ``--refresh`` runs a pass here first, with the worker's settings (the forge
token, the mirror cache), instead of waiting for the next one.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import timedelta
from pathlib import Path

import redis
from redis.exceptions import ConnectionError as RedisConnectionError

from process import settings
from process.exceptions import ForgeError, RepoCacheError
from process.logs import mask_url
from runs.outcomes import OutcomeStore
from runs.record import utcnow
from runs.stats import parse_window, render_stats, stats_report
from runs.store import RunStore

EXIT_USAGE = 2


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "stats",
        help="merged-PR rate, cost per merged PR, line survival, per repository",
        description="Show what the agent delivered over a window, per repository and in "
        "total. Reads REDIS_URL; --refresh also needs the worker's settings.",
    )
    parser.add_argument("--since", default="30d", help="window: hours, days or weeks (30d)")
    parser.add_argument("--repo", help="only this repository (owner/name)")
    parser.add_argument(
        "--refresh", action="store_true", help="poll the forge and measure survival here first"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.set_defaults(func=handle)


def refresh_here(connection: redis.Redis, store: RunStore) -> list[str]:
    from jobs.blueprint.wiring import git_auth_for, open_forge
    from jobs.stats import refresh
    from sandboxes.cache import RepoCache

    worker = settings.load(settings.WorkerSettings)
    forge = open_forge(worker)
    try:
        done = refresh(
            store,
            OutcomeStore(connection, prefix=store.prefix),
            forge,
            RepoCache(Path(worker.cache_dir) / "repos"),
            git_auth=git_auth_for(worker),
            retention=timedelta(days=worker.stats_retention_days),
        )
    finally:
        forge.close()
    return done.errors


def handle(args: argparse.Namespace) -> int:
    try:
        window = parse_window(args.since)
    except ValueError as err:
        print(f"agents stats: --since {err}", file=sys.stderr)
        return EXIT_USAGE
    if args.repo and not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", args.repo):
        print(f"agents stats: --repo {args.repo!r} is not owner/name", file=sys.stderr)
        return EXIT_USAGE
    common = settings.load(settings.CommonSettings)
    connection = redis.Redis.from_url(common.redis_url, socket_connect_timeout=3)
    try:
        store = RunStore(connection, retention_seconds=common.run_retention_seconds)
        if args.refresh:
            for error in refresh_here(connection, store):
                print(f"agents stats: {error}", file=sys.stderr)
        outcomes = OutcomeStore(connection, prefix=store.prefix)
        report = stats_report(
            outcomes.since(None),
            since=utcnow() - window,
            repos={args.repo} if args.repo else None,
        )
        refreshed = outcomes.refreshed_at()
    except RedisConnectionError as exc:
        print(
            f"agents stats: cannot reach Redis at {mask_url(common.redis_url)} ({exc}); "
            "start it or set REDIS_URL",
            file=sys.stderr,
        )
        return 1
    except (ForgeError, RepoCacheError) as exc:
        print(f"agents stats: the refresh failed: {exc}", file=sys.stderr)
        return 1
    finally:
        connection.close()
    if args.json:
        print(json.dumps(report.model_dump(mode="json"), indent=2))
        return 0
    print(render_stats(report, args.since))
    when = f"{refreshed:%Y-%m-%d %H:%M} UTC" if refreshed else "never yet"
    print(f"\nMerged PRs and survival as of the last stats pass: {when}")
    return 0
