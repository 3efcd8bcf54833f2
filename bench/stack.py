"""The product's parts, wired as ``agents demo`` wires them, for the benchmarks.

Real Redis, the Slack emulator reached through slack_sdk's WebClient, the bolt app
served over HTTP by :mod:`bot.http`, the thread reporter, and real ``agents worker``
processes with the replay model and the local forge (the demo's own worker uses the
fake GitHub; these use the local forge, so the figures hold no fake's HTTP).
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from bot.reporter import Reporter
from bot.services import Services
from cli.commands.demo import (
    CHANNEL,
    DEMO_REPO,
    DEMO_REQUEST,
    REQUESTER,
    SAMPLE,
    serve_bot,
    transcript_for,
    worker_environment,
)
from cli.commands.run import publish_directory
from fakes.slack.server import SlackEmulator
from runs.record import RunStatus

ROOT = Path(__file__).resolve().parents[1]
__all__ = [
    "CHANNEL",
    "DEMO_REPO",
    "DEMO_REQUEST",
    "REQUESTER",
    "Stack",
    "forge_with_sample",
    "is_settled",
    "slack_stack",
    "wait_until",
    "workers",
]


@dataclass
class Stack:
    emu: SlackEmulator
    services: Services
    reporter: Reporter | None


@contextmanager
def slack_stack(
    conn: redis.Redis, *, queue: str, reporter: bool = False, min_interval: float = 1.0
) -> Iterator[Stack]:
    """Emulator, bot over HTTP (and the reporter, with production's 1 s coalescing)."""
    emu = SlackEmulator().start()
    stop = threading.Event()
    threads: list[threading.Thread] = []
    try:
        bot = serve_bot(emu, conn, channel_repos={CHANNEL: DEMO_REPO}, queue=queue)
        services, client, server = bot.services, bot.client, bot.server
        gc.collect()  # as `agents bot` does once its app is built
        gc.freeze()
        threads.append(threading.Thread(target=server.serve_forever, daemon=True))
        drawer = None
        if reporter:
            drawer = Reporter(services.store, client, min_interval=min_interval)
            drawer.ensure_group()
            threads.append(threading.Thread(target=drawer.run_forever, args=(stop,), daemon=True))
        for thread in threads:
            thread.start()
        try:
            yield Stack(emu=emu, services=services, reporter=drawer)
        finally:
            stop.set()
            server.stop()
            for thread in threads:
                thread.join(timeout=10)
    finally:
        emu.stop()


def forge_with_sample(work: Path) -> Path:
    """A local forge holding the sample repository as ``acme/retrying``."""
    forge = work / "forge"
    publish_directory(SAMPLE, forge, DEMO_REPO)
    return forge


def worker_env(work: Path, redis_url: str, queue: str, sandbox: str) -> dict[str, str]:
    """The environment of an ``agents worker`` process, as the demo configures one."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENTS_", "SLACK_"))}
    env.update(worker_environment(work, sandbox))
    env.update(
        {
            "AGENTS_FORGE": "local",  # whole runs measure the product, not the fake GitHub
            "AGENTS_LOCAL_FORGE_DIR": str(work / "forge"),
            "REDIS_URL": redis_url,
            "AGENTS_QUEUE": queue,
            "AGENTS_LOG_LEVEL": "WARNING",
            # Approving marks the PR ready instead of merging it, so every run starts
            # from the commit its transcript was recorded on.
            "AGENTS_APPROVE_ACTION": "ready",
            "AGENTS_REPLAY_TRANSCRIPT": str(transcript_for(sandbox)),
            "PYTHONPATH": str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
        }
    )
    env.pop("ANTHROPIC_API_KEY", None)
    env["AGENTS_MODEL_BACKEND"] = "replay"
    return env


@contextmanager
def workers(
    count: int, work: Path, redis_url: str, queue: str, sandbox: str, conn: redis.Redis
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """``count`` real ``agents worker`` processes; waits until RQ lists them all."""
    from rq import Queue, Worker

    env = worker_env(work, redis_url, queue, sandbox)
    logs = [(work / f"worker-{n}.log").open("wb") for n in range(count)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "cli.main", "worker", "--name", f"bench-{queue}-{n}"],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        for n, log in enumerate(logs)
    ]
    try:
        wait_until(
            lambda: Worker.count(queue=Queue(queue, connection=conn)) >= count,
            60,
            f"{count} worker(s) to register",
            procs,
        )
        yield procs
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for log in logs:
            log.close()


def wait_until(
    done: Callable[[], Any],
    limit: float,
    what: str,
    procs: list[subprocess.Popen[bytes]] | None = None,
    every: float = 0.02,
) -> Any:
    """Poll ``done()`` until truthy; fail fast if a worker process died."""
    deadline = time.monotonic() + limit
    while True:
        value = done()
        if value:
            return value
        for proc in procs or ():
            if proc.poll() is not None:
                raise RuntimeError(f"a worker exited ({proc.returncode}) waiting for {what}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {limit:.0f} s waiting for {what}")
        time.sleep(every)


def is_settled(status: RunStatus) -> bool:
    """The run stopped working: it awaits a decision or ended."""
    return status not in (RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.REWORK)
