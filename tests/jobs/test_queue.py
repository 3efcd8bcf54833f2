"""The run queue, against fakeredis for the bookkeeping and real RQ workers for the rest."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from rq.job import JobStatus

from jobs.queue import RunQueue, job_id_for
from runs.events import StatusChanged
from runs.record import RunStatus
from runs.store import RunStore
from tests.conftest import TEST_REDIS_URL

REPO_ROOT = Path(__file__).resolve().parents[2]


def make(store: RunStore) -> int:
    return store.create(requester="U1", repo="acme/api", request="do it").id


def test_enqueue_twice_enqueues_once(redis_conn: redis.Redis) -> None:
    store = RunStore(redis_conn)
    queue = RunQueue(redis_conn, store, name="q-twice", job_timeout=1234)
    run = store.get(make(store))
    job = queue.enqueue(run)
    assert job is not None
    assert job.id == job_id_for(run.id, 1) == "agents-run-1-1"
    assert queue.enqueue(run) is None
    assert queue.queue.count == 1
    assert queue.position(run) == 0


def test_job_timeout_and_meta_come_from_settings(redis_conn: redis.Redis) -> None:
    store = RunStore(redis_conn, retention_seconds=600)
    queue = RunQueue(redis_conn, store, name="q-timeout", job_timeout=5400)
    job = queue.enqueue(store.get(make(store)))
    assert job is not None
    assert job.timeout == 5400
    assert job.meta == {
        "run_id": 1,
        "iteration": 1,
        "retention_seconds": 600,
        "store_prefix": "agents",
    }
    assert job.failure_callback is not None


def test_a_new_iteration_is_a_new_job(redis_conn: redis.Redis) -> None:
    store = RunStore(redis_conn)
    queue = RunQueue(redis_conn, store, name="q-iter")
    run = store.get(make(store))
    assert queue.enqueue(run) is not None
    run.iteration = 2
    assert queue.enqueue(run) is not None
    assert queue.queue.count == 2


def test_cancel_a_queued_run_dequeues_its_job(redis_conn: redis.Redis) -> None:
    store = RunStore(redis_conn)
    queue = RunQueue(redis_conn, store, name="q-cancel")
    run = store.get(make(store))
    job = queue.enqueue(run)
    assert job is not None
    cancelled = queue.cancel(run.id, by="U9")
    assert cancelled.status is RunStatus.CANCELLED
    assert cancelled.status_by == "U9"
    assert store.events(run.id)[-1].reason == "cancelled by U9"
    assert job.get_status(refresh=True) == JobStatus.CANCELED
    assert queue.queue.count == 0


def worker_env(queue: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENTS_", "SLACK_"))}
    env.update(
        REDIS_URL=TEST_REDIS_URL,
        AGENTS_QUEUE=queue,
        AGENTS_MODEL_BACKEND="replay",
        AGENTS_FORGE="local",
        PYTHONPATH=str(REPO_ROOT),
    )
    return env


def wait_until(predicate: Callable[[], bool], what: str, limit: float = 180.0) -> None:
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def live_worker(real_redis_conn: redis.Redis) -> Iterator[Callable[[str], subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []

    def start(queue: str, *extra: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "worker", *extra],
            cwd=REPO_ROOT,
            env=worker_env(queue),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()


@pytest.mark.redis
def test_failure_callback_marks_the_run_failed_with_the_reason(
    real_redis_conn: redis.Redis, live_worker: Callable[..., subprocess.Popen[str]]
) -> None:
    store = RunStore(real_redis_conn)
    queue = RunQueue(
        real_redis_conn, store, name="q-fail", job_func="tests.jobs.slow_job.take_and_fail"
    )
    run = store.get(make(store))
    assert queue.enqueue(run) is not None
    proc = live_worker("q-fail", "--burst")
    assert proc.wait(timeout=180) == 0
    failed = store.get(run.id)
    assert failed.status is RunStatus.FAILED
    assert failed.error is not None
    assert failed.error == "RuntimeError: the job broke"
    statuses = [e.to for e in store.events(run.id) if isinstance(e, StatusChanged)]
    assert statuses == ["running", "failed"]


@pytest.mark.redis
def test_cancel_stops_a_started_job_and_records_who(
    real_redis_conn: redis.Redis, live_worker: Callable[..., subprocess.Popen[str]]
) -> None:
    store = RunStore(real_redis_conn)
    queue = RunQueue(
        real_redis_conn, store, name="q-stop", job_func="tests.jobs.slow_job.take_and_wait"
    )
    run = store.get(make(store))
    job = queue.enqueue(run)
    assert job is not None
    live_worker("q-stop")
    wait_until(lambda: store.get(run.id).status is RunStatus.RUNNING, "the job to start")
    cancelled = queue.cancel(run.id, by="U-admin")
    assert cancelled.status_by == "U-admin"
    wait_until(lambda: job.get_status(refresh=True) == JobStatus.STOPPED, "the job to stop")
    final = store.get(run.id)
    assert final.status is RunStatus.CANCELLED
    assert final.status_by == "U-admin"


def test_a_failed_approval_can_be_tried_again(redis_conn: redis.Redis) -> None:
    store = RunStore(redis_conn)
    queue = RunQueue(redis_conn, store, name="q-approve")
    run = store.get(make(store))
    first = queue.request_approval(run, by="U1")
    assert first is not None
    assert queue.request_approval(run, by="U1") is None
    first.set_status(JobStatus.FAILED)
    again = queue.request_approval(run, by="U1")
    assert again is not None
    assert again.id == first.id
    assert again.get_status(refresh=True) == JobStatus.QUEUED
