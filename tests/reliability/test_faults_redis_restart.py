"""Restart Redis in the middle of runs. The server is a private `redis-server` with AOF on
(fsync on every write), restarted cleanly on the same port while the runs' jobs are
inside their steps; the shared test Redis is never touched.

Two real `agents worker` processes (Docker sandboxes, the replay model, the local
forge) and the bot's reporter, drawing the threads into the Slack emulator, all lose
their connections and must carry on: every run ends awaiting a decision or failed, its
thread says so, and nothing is left queued, running or unaccounted for.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.reporter import Reporter
from bot.slack_client import web_client
from fakes.slack.server import SlackEmulator
from jobs.forge.local import LocalForge
from jobs.queue import RunQueue
from jobs.worker import redis_for_rq
from runs.record import RunStatus, Step
from runs.store import RunStore
from tests.blueprint.conftest import CLEAN_REQUEST, FIX_ONCE_REQUEST, REPO, SAMPLE
from tests.blueprint.e2e import (
    Workers,
    docker_client,
    require_image,
    wait_for,
    worker_env,
)
from tests.reliability import fault_worker
from tests.reliability.harness import (
    PrivateRedis,
    describe,
    final_or_resumable,
    paused,
    private_redis,
    record_fault,
    start_fault_worker,
    store_containers,
    wait_settled,
)

pytestmark = [pytest.mark.redis, pytest.mark.docker, pytest.mark.slow]

CHANNEL = "C_GENERAL"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[PrivateRedis]:
    with private_redis(tmp_path) as started:
        yield started


def test_a_redis_restart_mid_run_loses_nothing(
    server: PrivateRedis, workers: Workers, tmp_path: Path
) -> None:
    client = docker_client()
    require_image(client)
    forge = LocalForge(tmp_path / "forge")
    forge.create_repo(REPO, source=SAMPLE)
    connection = redis_for_rq(server.url)  # retries through the restart, as the workers do
    store = RunStore(connection)
    queue = RunQueue(connection, store, name="faults-redis")
    env = worker_env(tmp_path, "faults-redis", REDIS_URL=server.url)
    first = start_fault_worker(workers, env, "redis-a")
    second = start_fault_worker(workers, env, "redis-b")

    emu = SlackEmulator().start()
    slack = web_client(emu.bot_token, emu.api_url)
    reporter = Reporter(RunStore(redis_for_rq(server.url)), slack, min_interval=0.2)
    stop = threading.Event()
    drawing = threading.Thread(target=reporter.run_forever, args=(stop,), daemon=True)
    try:
        reporter.ensure_group()
        drawing.start()
        run_ids = []
        for request, gate in ((CLEAN_REQUEST, Step.AGENT), (FIX_ONCE_REQUEST, Step.CHECKS)):
            root = slack.chat_postMessage(channel=CHANNEL, text=request)["ts"]
            run = store.create(
                requester="U1",
                repo=REPO,
                request=request,
                channel=CHANNEL,
                thread_ts=root,
                message_ts=root,
            )
            status = slack.chat_postMessage(channel=CHANNEL, thread_ts=root, text="queued")["ts"]
            store.update(run.id, lambda r, ts=status: setattr(r, "status_ts", ts))
            fault_worker.plan(connection, run.id, gate=[gate])
            queue.enqueue(run)
            run_ids.append(run.id)

        # Mid-run: one job is inside its agent step, the other inside its checks, both
        # polling Redis, when the server goes away; they go on once it is back.
        wait_for(
            lambda: all(paused(connection, run_id) for run_id in run_ids),
            "the runs to be inside their agent and checks steps",
        )
        server.restart()
        for run_id in run_ids:
            fault_worker.open_gate(connection, run_id)

        wait_settled(store, run_ids, "every run to end after the restart")
        finals = [store.get(run_id) for run_id in run_ids]

        def thread_told(run_id: int) -> bool:
            run = store.get(run_id)
            texts = " ".join(m.get("text", "") for m in emu.thread(CHANNEL, run.thread_ts or ""))
            if run.status is RunStatus.FAILED:
                return f"{run.label} failed" in texts
            return "ready for review" in texts or "awaiting" in texts

        wait_for(lambda: all(thread_told(r) for r in run_ids), "every thread to tell the outcome")
        assert first.poll() is None, "a worker died with the connection"
        assert second.poll() is None, "a worker died with the connection"
        assert drawing.is_alive(), "the reporter died with the connection"
    finally:
        stop.set()
        drawing.join(timeout=30)
        emu.stop()

    for final in finals:
        assert final.status in (RunStatus.AWAITING_DECISION, RunStatus.FAILED)
        if final.status is RunStatus.FAILED:
            assert final.error, "a failed run must say why"
    # Nothing unaccounted for: every run the store knows is final or awaiting a decision.
    assert sorted(r.id for r in store.list_recent(limit=50)) == sorted(run_ids)
    for status in (RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.REWORK):
        assert store.list_by_status(status, limit=50) == []
    assert queue.queue.count == 0
    assert store_containers(client, store, run_ids) == []
    client.close()
    connection.close()

    counts = final_or_resumable(store, run_ids)
    record_fault(
        "Redis restart (AOF on)",
        "private `redis-server` (appendonly, fsync always) restarted while one run was "
        "in its agent step and one in its checks",
        len(run_ids),
        f"{describe(counts)}; every thread in the Slack emulator shows the outcome; both "
        "workers and the reporter survived; nothing left queued or running",
        rank=2,
    )
