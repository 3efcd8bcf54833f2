"""The worker's registration in Redis, as ``/agents status`` and ``/metrics`` count it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from rq import Queue, Worker

from jobs.worker import RunWorker
from tests.blueprint.e2e import worker_env

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.redis
def test_a_killed_worker_stops_counting_within_two_minutes(
    real_redis_conn: redis.Redis, tmp_path: Path
) -> None:
    """Its key expires at most two minutes after the last heartbeat (RQ's default TTL kept
    a dead worker "alive" for eight minutes). Checked on the key's TTL, not by waiting;
    the bound is the promise to operators, pinned here, not read from the product."""
    env = worker_env(tmp_path, "q-ttl", DOCKER_HOST="unix:///nonexistent/docker.sock")
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "worker", "--name", "ttl-probe"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its RQ scheduler is a child: killed with it below
    )
    try:
        queue = Queue("q-ttl", connection=real_redis_conn)
        deadline = time.monotonic() + 120
        workers: list[Worker] = []
        while not workers and proc.poll() is None and time.monotonic() < deadline:
            workers = Worker.all(queue=queue)
            time.sleep(0.2)
        assert [w.name for w in workers] == ["ttl-probe"], proc.stderr and proc.stderr.read()
        ttl = real_redis_conn.ttl(workers[0].key)
        assert 0 < ttl <= 120
        assert Worker.count(queue=queue) == 1

        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        # No goodbye: only the expiry above takes it out of the count.
        assert Worker.count(queue=queue) == 1
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        if proc.stderr is not None:
            proc.stderr.close()


#: Far above the listener's poll (1 s), far below RQ's own (60 s): a hang guard.
LET_GO_GUARD = 15.0


@pytest.mark.redis
def test_a_stopped_worker_lets_go_of_its_command_channel_without_waiting_a_minute(
    real_redis_conn: redis.Redis,
) -> None:
    """The listener thread that took the reply to the worker's UNSUBSCRIBE then waits
    for a new subscription; redis-py's ``stop()`` waits for it. With RQ's 60 s poll a
    burst worker, or one stopped by SIGTERM, lingered up to a minute before exiting."""
    worker = RunWorker(
        [Queue("q-let-go", connection=real_redis_conn)],
        connection=real_redis_conn,
        name=f"let-go-{os.getpid()}",
    )
    worker.subscribe()
    thread = worker.pubsub_thread
    assert thread is not None
    try:
        worker.pubsub.unsubscribe()
        deadline = time.monotonic() + 30
        while worker.pubsub.subscribed and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not worker.pubsub.subscribed  # the thread has taken the reply
        thread.stop(timeout=LET_GO_GUARD)
        assert not thread.is_alive()
    finally:
        thread.stop(timeout=0)


@pytest.mark.redis
@pytest.mark.parametrize(("backend", "inherited"), [("replay", []), ("anthropic", ["anthropic"])])
def test_a_worker_loads_the_anthropic_sdk_before_forking_only_when_it_calls_the_api(
    real_redis_conn: redis.Redis, tmp_path: Path, backend: str, inherited: list[str]
) -> None:
    """The SDK takes seconds of CPU to import. A worker on the real API imports it once,
    so its work horses inherit it rather than each importing it; a replay worker (the
    demo, the tests, `agents eval` offline) never pays for it."""
    queue = Queue(f"q-sdk-{backend}", connection=real_redis_conn)
    job = queue.enqueue("tests.jobs.slow_job.loaded_modules", ["anthropic", "jobs.entrypoints"])
    env = worker_env(
        tmp_path,
        queue.name,
        AGENTS_MODEL_BACKEND=backend,
        ANTHROPIC_API_KEY="sk-ant-test-not-a-key",
        AGENTS_SANDBOX_BACKEND="local",
        DOCKER_HOST="unix:///nonexistent/docker.sock",
    )
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "worker", "--burst"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    job.refresh()
    assert job.return_value() == [*inherited, "jobs.entrypoints"]
