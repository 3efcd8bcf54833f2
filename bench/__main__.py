"""``python -m bench``: run every benchmark and write ``docs/benchmarks.md``.

It needs a Redis database of its own, which it empties before each benchmark and at
the end (``--redis-url``, default ``$AGENTS_BENCH_REDIS_URL`` or
``redis://127.0.0.1:6379/13``), and a Docker engine with the sandbox image for the
sandbox figures (whole runs fall back to the local sandbox without one, and say so).
``--quick`` takes a handful of samples of each, for the smoke test.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import redis

from bench import (
    ack,
    caching,
    ci_webhook,
    environments,
    mention,
    plan_step,
    runs,
    sandbox_ready,
    status,
    throughput,
)
from bench.machine import describe, load_average
from bench.report import render
from bench.stack import ROOT, forge_with_sample, workers
from bench.stats import Result
from cli.commands.demo import choose_sandbox

DEFAULT_REDIS = os.environ.get("AGENTS_BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
#: Sample counts: (full, --quick).
SIZES = {
    "ack": (1000, 20),
    "mention": (50, 5),
    "sandbox_rounds": (5, 1),
    "sandbox_files": (5000, 500),
    "runs": (3, 0),
    "throughput": (int(os.environ.get("AGENTS_BENCH_RUNS", "100")), 2),
    "status": (200, 5),
    "history": (10_000, 1_000),
    "plan_rounds": (5, 1),
    "env_rounds": (3, 1),
    "env_pool_rounds": (10, 2),
    "ci_rounds": (5, 1),
}
NAMES = (
    "ack",
    "status",
    "caching",
    "ci",
    "plan",
    "sandbox",
    "environments",
    "mention",
    "runs",
    "throughput",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few samples each (smoke test)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--redis-url", default=DEFAULT_REDIS)
    parser.add_argument("--sandbox", choices=["auto", "docker", "local"], default="auto")
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(NAMES)}")
    args = parser.parse_args(argv)
    size = {k: v[1] if args.quick else v[0] for k, v in SIZES.items()}
    only = set(args.only.split(",")) if args.only else set(NAMES)
    image = os.environ.get("AGENTS_SANDBOX_IMAGE", "agents-sandbox:latest")
    sandbox = choose_sandbox(args.sandbox, image)
    conn = redis.Redis.from_url(args.redis_url, socket_connect_timeout=5)
    conn.ping()
    machine = describe(conn)
    work = Path(tempfile.mkdtemp(prefix="agents-bench-"))
    forge_with_sample(work)
    url = args.redis_url
    solo: dict[str, tuple[str, Callable[[], Result]]] = {
        "ack": ("ack latency", lambda: ack.run(conn, size["ack"])),
        "status": (
            "/agents status",
            lambda: status.run(conn, size["status"], history=size["history"]),
        ),
        "caching": ("prompt caching", caching.run),
        "ci": (
            "CI webhooks against polling",
            lambda: ci_webhook.run(
                conn,
                size["ci_rounds"],
                scale=ci_webhook.QUICK_SCALE if args.quick else ci_webhook.SCALE,
            ),
        ),
        "plan": (
            "the plan step's price",
            lambda: plan_step.run(conn, sandbox, size["plan_rounds"], warm_up=not args.quick),
        ),
        "sandbox": (
            "sandbox ready",
            lambda: sandbox_ready.run(
                work / "sandbox", size["sandbox_files"], size["sandbox_rounds"]
            ),
        ),
        "environments": (
            "repository environments",
            lambda: environments.run(
                conn,
                work / "environments",
                rounds=size["env_rounds"],
                pool_rounds=size["env_pool_rounds"],
                quick=args.quick,
            ),
        ),
    }
    #: These share two worker processes (started once), in this order.
    fleet: dict[str, tuple[str, Callable[[Any], Result]]] = {
        "mention": ("mention → status message", lambda procs: mention.run(conn, size["mention"])),
        "runs": (
            "whole runs: orchestration overhead and Slack calls",
            lambda procs: runs.run(conn, procs, sandbox, size["runs"]),
        ),
        "throughput": (
            "throughput",
            lambda procs: throughput.run(conn, procs, sandbox, size["throughput"]),
        ),
    }
    started_at = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    started = time.monotonic()
    results: dict[str, Result] = {}
    failures: dict[str, str] = {}

    def measure(title: str, bench: Callable[[], Result]) -> None:
        print(f"bench: {title} ...", file=sys.stderr, flush=True)
        began = time.monotonic()
        try:
            result = bench()
        except Exception as exc:  # one broken hop must not hide the others' figures
            traceback.print_exc()
            failures[title] = f"{type(exc).__name__}: {exc}".replace("|", "/")[:300]
            return
        result.seconds = time.monotonic() - began
        results[title] = result
        print(f"bench: {title}: {result.seconds:.0f} s", file=sys.stderr, flush=True)

    try:
        for key, (title, bench) in solo.items():
            if key in only:
                conn.flushdb()
                measure(title, bench)
        wanted = [key for key in fleet if key in only]
        if wanted:
            conn.flushdb()
            try:
                with workers(2, work, url, runs.QUEUE, sandbox, conn) as procs:
                    for key in wanted:
                        title, group_bench = fleet[key]
                        measure(title, partial(group_bench, procs))
            except Exception as exc:  # the workers did not start
                traceback.print_exc()
                for key in wanted:
                    failures.setdefault(fleet[key][0], f"{type(exc).__name__}: {exc}"[:300])
    finally:
        conn.flushdb()
        conn.close()
        shutil.rmtree(work, ignore_errors=True)
    seconds = time.monotonic() - started
    machine["load average (1/5/15 min) at the end"] = load_average()
    command = "make bench" + (" (--quick)" if args.quick else "")
    text = render(
        machine,
        results,
        failures,
        command=command,
        started=started_at,
        seconds=seconds,
        sandbox=sandbox,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(f"bench: wrote {args.out} in {seconds:.0f} s", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
