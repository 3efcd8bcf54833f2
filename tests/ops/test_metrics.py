"""``/healthz`` and ``/metrics`` over real HTTP, from runs, queues and totals kept in
real Redis; and both served by real ``agents bot`` and ``agents worker`` processes."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families
from rq import Queue

from fakes.slack.server import SlackEmulator
from jobs.metrics import metrics_app
from process.endpoints import ops_app, ops_connection, redis_health, serve_ops
from process.http import HttpServer
from runs.artifacts import Cost
from runs.counters import Counters
from runs.record import RunStatus
from runs.store import RunStore
from tests.conftest import TEST_REDIS_URL

ROOT = Path(__file__).resolve().parents[2]
SETTING_PREFIXES = ("AGENTS_", "SLACK_", "ANTHROPIC_", "GITHUB_", "REDIS_", "DOCKER_")
QUEUE = "q-ops-metrics"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def open_url(url: str) -> Any:
    assert url.startswith("http://127.0.0.1:")
    return urllib.request.urlopen(url, timeout=10)  # noqa: S310 (local http only)


def scrape(url: str) -> Samples:
    """Every sample at ``url``, parsed by prometheus_client's own parser."""
    with open_url(url) as response:
        assert response.status == 200
        text = response.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def get(url: str) -> tuple[int, str]:
    try:
        with open_url(url) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


@pytest.fixture
def ops_server(real_redis_conn: redis.Redis) -> Iterator[str]:
    """/healthz and /metrics on the test Redis, served over real HTTP; yields the base URL."""
    store = RunStore(real_redis_conn)
    server = serve_ops(
        ops_app(redis_health(real_redis_conn), metrics_app(store, [QUEUE])), "127.0.0.1", 0
    )
    yield f"http://127.0.0.1:{server.port}"
    server.stop()


def make_runs(store: RunStore) -> None:
    """Two queued, one running, one awaiting a decision, one failed, one cancelled."""

    def create() -> int:
        return store.create(requester="U1", repo="acme/api", request="r").id

    create()
    create()
    running = create()
    store.transition(running, RunStatus.RUNNING, by="w")
    waiting = create()
    store.transition(waiting, RunStatus.RUNNING, by="w")
    store.transition(waiting, RunStatus.AWAITING_DECISION, by="w")
    failed = create()
    store.transition(failed, RunStatus.RUNNING, by="w")
    store.transition(failed, RunStatus.FAILED, by="w", reason="boom")
    store.transition(create(), RunStatus.CANCELLED, by="U1")
    store.add_cost(
        running,
        Cost(
            input_tokens=1000,
            output_tokens=200,
            cache_read_tokens=5000,
            cache_write_tokens=300,
            dollars=0.25,
        ),
    )
    store.add_cost(failed, Cost(input_tokens=10, output_tokens=2, dollars=0.5))


@pytest.mark.redis
def test_metrics_report_runs_queues_tokens_cost_and_step_durations(
    real_redis_conn: redis.Redis, ops_server: str
) -> None:
    store = RunStore(real_redis_conn)
    make_runs(store)
    counters = Counters(real_redis_conn)
    counters.observe_step("agent", 0.5)
    counters.observe_step("agent", 42.0)
    counters.observe_step("agent", 5000.0)
    counters.observe_step("checks", 3.0, outcome="failed")
    queue = Queue(QUEUE, connection=real_redis_conn)
    for n in range(3):
        queue.enqueue("jobs.entrypoints.run_job", n)
    failed_job = queue.enqueue("jobs.entrypoints.run_job", 99)
    queue.remove(failed_job)
    queue.failed_job_registry.add(failed_job, ttl=600)
    Queue("q-ops-other", connection=real_redis_conn).enqueue("jobs.entrypoints.run_job", 1)

    samples = scrape(f"{ops_server}/metrics")

    assert value(samples, "agents_redis_up") == 1
    runs = {s.value: value(samples, "agents_runs", status=s.value) for s in RunStatus}
    assert runs == {
        "queued": 2,
        "running": 1,
        "awaiting_decision": 1,
        "approved": 0,
        "rework": 0,
        "failed": 1,
        "cancelled": 1,
        "evaluated": 0,
        "awaiting_plan": 0,
        "awaiting_budget": 0,
        "merged": 0,
        "closed": 0,
    }
    assert value(samples, "agents_runs_created_total") == 6

    assert value(samples, "agents_queue_jobs", queue=QUEUE, state="queued") == 3
    assert value(samples, "agents_queue_jobs", queue=QUEUE, state="failed") == 1
    assert value(samples, "agents_queue_jobs", queue=QUEUE, state="started") == 0
    # A queue RQ knows of is reported too, not only the configured one.
    assert value(samples, "agents_queue_jobs", queue="q-ops-other", state="queued") == 1
    assert value(samples, "agents_workers", queue=QUEUE) == 0

    assert value(samples, "agents_tokens_total", kind="input") == 1010
    assert value(samples, "agents_tokens_total", kind="output") == 202
    assert value(samples, "agents_tokens_total", kind="cache_read") == 5000
    assert value(samples, "agents_tokens_total", kind="cache_write") == 300
    assert value(samples, "agents_cost_dollars_total") == pytest.approx(0.75)

    agent = {"step": "agent", "outcome": "done"}
    assert value(samples, "agents_step_duration_seconds_count", **agent) == 3
    assert value(samples, "agents_step_duration_seconds_sum", **agent) == pytest.approx(5042.5)
    buckets = {"1.0": 1, "30.0": 1, "60.0": 2, "3600.0": 2, "+Inf": 3}
    for le, expected in buckets.items():
        assert value(samples, "agents_step_duration_seconds_bucket", le=le, **agent) == expected
    checks = {"step": "checks", "outcome": "failed"}
    assert value(samples, "agents_step_duration_seconds_count", **checks) == 1
    assert value(samples, "agents_step_duration_seconds_bucket", le="1.0", **checks) == 0
    assert value(samples, "agents_step_duration_seconds_bucket", le="5.0", **checks) == 1


@pytest.mark.redis
def test_totals_outlive_the_run_records(real_redis_conn: redis.Redis, ops_server: str) -> None:
    """Counters must never go down: retention removing a run leaves its cost counted."""
    store = RunStore(real_redis_conn)
    run = store.create(requester="U1", repo="acme/api", request="r")
    store.add_cost(run.id, Cost(input_tokens=7, dollars=1.5))
    real_redis_conn.delete(f"agents:run:{run.id}", store.events_key(run.id))

    samples = scrape(f"{ops_server}/metrics")
    assert value(samples, "agents_tokens_total", kind="input") == 7
    assert value(samples, "agents_cost_dollars_total") == 1.5


@pytest.mark.redis
def test_healthz_is_ok_while_redis_answers(ops_server: str) -> None:
    assert get(f"{ops_server}/healthz") == (200, "ok\n")
    assert get(f"{ops_server}/nothing")[0] == 404


def test_healthz_is_503_with_the_reason_and_metrics_say_redis_is_down() -> None:
    down = ops_connection("redis://127.0.0.1:1/0")
    store = RunStore(down)
    server: HttpServer = serve_ops(
        ops_app(redis_health(down), metrics_app(store, [QUEUE])), "127.0.0.1", 0
    )
    base = f"http://127.0.0.1:{server.port}"
    try:
        status, body = get(f"{base}/healthz")
        assert status == 503
        assert body.startswith("redis unreachable: ")
        assert "127.0.0.1:1" in body
        samples = scrape(f"{base}/metrics")
        assert value(samples, "agents_redis_up") == 0
        assert not any(name == "agents_runs" for name, _ in samples)
    finally:
        server.stop()
        down.close()


# -- real processes --------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(SETTING_PREFIXES)}
    base.update(env, PYTHONPATH=str(ROOT))
    return subprocess.Popen(
        [sys.executable, "-m", "cli.main", *args],
        cwd=ROOT,
        env=base,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def wait_healthy(proc: subprocess.Popen[bytes], url: str) -> None:
    deadline = time.monotonic() + 120
    while True:
        try:
            with open_url(url) as response:
                assert response.status == 200
                return
        except OSError:
            assert proc.poll() is None, "the process exited"
            assert time.monotonic() < deadline, f"{url} never answered"
            time.sleep(0.2)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.mark.redis
def test_a_real_bot_serves_metrics_in_http_mode_and_on_the_metrics_port(
    real_redis_conn: redis.Redis,
) -> None:
    store = RunStore(real_redis_conn)
    store.create(requester="U1", repo="acme/api", request="r")
    bot_port, metrics_port = free_port(), free_port()
    with SlackEmulator() as emu:
        proc = start(
            ["bot", "--host", "127.0.0.1"],
            {
                **emu.env(),
                "REDIS_URL": TEST_REDIS_URL,
                "AGENTS_BOT_PORT": str(bot_port),
                "AGENTS_METRICS_PORT": str(metrics_port),
                "AGENTS_QUEUE": QUEUE,
            },
        )
        try:
            wait_healthy(proc, f"http://127.0.0.1:{bot_port}/healthz")
            wait_healthy(proc, f"http://127.0.0.1:{metrics_port}/healthz")
            for port in (bot_port, metrics_port):
                samples = scrape(f"http://127.0.0.1:{port}/metrics")
                assert value(samples, "agents_runs", status="queued") == 1
                assert value(samples, "agents_queue_jobs", queue=QUEUE, state="queued") == 0
        finally:
            stop(proc)


@pytest.mark.redis
def test_a_real_worker_serves_healthz_and_metrics_on_the_metrics_port(
    real_redis_conn: redis.Redis, tmp_path: Path
) -> None:
    port = free_port()
    proc = start(
        ["worker", "--host", "127.0.0.1", "--name", f"ops-metrics-{os.getpid()}"],
        {
            "REDIS_URL": TEST_REDIS_URL,
            "AGENTS_QUEUE": QUEUE,
            "AGENTS_MODEL_BACKEND": "replay",
            "AGENTS_FORGE": "local",
            "AGENTS_METRICS_PORT": str(port),
            "AGENTS_CACHE_DIR": str(tmp_path / "cache"),
        },
    )
    try:
        wait_healthy(proc, f"http://127.0.0.1:{port}/healthz")
        base = f"http://127.0.0.1:{port}/metrics"

        def workers() -> float:
            return value(scrape(base), "agents_workers", queue=QUEUE)

        deadline = time.monotonic() + 60
        while workers() != 1:
            assert time.monotonic() < deadline, "the worker never registered on its queue"
            time.sleep(0.2)
    finally:
        stop(proc)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # its RQ scheduler, if left behind
