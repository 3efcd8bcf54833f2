"""Shared fixtures: Redis connections (fake and real) and the skip guard for CI.

With ``AGENTS_REQUIRE_SERVICES=1`` (set by ``make test``, and so by CI), a test marked
``redis``, ``docker`` or ``browser`` that skips, or a test module skipped whole while
being collected, fails the session: a green run must mean the real services were
exercised.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import fakeredis
import pytest
import redis
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from process import logs
from tests import scheduling

SERVICE_MARKERS = ("redis", "docker", "browser")

#: Property tests (tests/hostile/) are reproducible and bounded: the same examples on
#: every run (derandomize: the seed comes from the test), at most ``max_examples`` each,
#: no example database, no per-example deadline (no timed assertions).
hypothesis_settings.register_profile(
    "agents",
    max_examples=100,
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
hypothesis_settings.load_profile("agents")
#: Environment variables that settings are read from.
SETTING_PREFIXES = ("AGENTS_", "SLACK_", "ANTHROPIC_", "GITHUB_", "REDIS_", "DOCKER_")


def _test_redis_url(base: str, xdist_worker: str) -> str:
    """The database this process flushes: ``base``'s for one process; under pytest-xdist
    one per worker, counting down from it (gw0 has 15, gw1 14, and so on)."""
    index = int(xdist_worker.removeprefix("gw") or 0)
    head, _, db = base.rpartition("/")
    return f"{head}/{int(db) - index}" if db.isdigit() and index else base


TEST_REDIS_URL = _test_redis_url(
    os.environ.get("AGENTS_TEST_REDIS_URL", "redis://127.0.0.1:6379/15"),
    os.environ.get("PYTEST_XDIST_WORKER", "gw0"),
)

_skipped_services: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    """pytest-xdist's workers start with SIGINT ignored, and processes a test starts
    inherit that: a demo or bot asked to stop with SIGINT would never hear it. Tests
    start processes as a shell would, with the default handler. The controller keeps
    the order tests/scheduling.py gives the groups."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        signal.signal(signal.SIGINT, signal.default_int_handler)
    scheduling.keep_order(config)


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups into node ids
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Group and order the tests for ``pytest -n`` (tests/scheduling.py says how)."""
    scheduling.order(items, scheduling.load_durations())


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and any(marker in report.keywords for marker in SERVICE_MARKERS):
        _skipped_services.append(report.nodeid)


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if report.skipped:
        _skipped_services.append(f"{report.nodeid} (skipped while collecting)")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _skipped_services and os.environ.get("AGENTS_REQUIRE_SERVICES") == "1":
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _skipped_services and os.environ.get("AGENTS_REQUIRE_SERVICES") == "1":
        terminalreporter.section("service tests skipped: failing the run", red=True)
        for nodeid in _skipped_services:
            terminalreporter.line(f"SKIPPED (required) {nodeid}")


def real_redis() -> redis.Redis:
    """A client for the test Redis database, flushed; skips if no server answers."""
    client = redis.Redis.from_url(TEST_REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.ConnectionError as exc:
        client.close()
        pytest.skip(f"no Redis at {TEST_REDIS_URL} ({exc}); run `make services`")
    client.flushdb()
    return client


@pytest.fixture
def real_redis_conn() -> Iterator[redis.Redis]:
    client = real_redis()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture(params=["fakeredis", pytest.param("redis", marks=pytest.mark.redis)])
def redis_conn(request: pytest.FixtureRequest) -> Iterator[redis.Redis]:
    """The same test against fakeredis and against a real server."""
    if request.param == "fakeredis":
        client: redis.Redis = fakeredis.FakeRedis()
        yield client
        client.close()
        return
    client = real_redis()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def root_logging() -> Iterator[None]:
    """``logs.configure`` takes over the root logger; afterwards remove its handler and
    restore the level (pytest adds its own handlers afresh for each phase)."""
    root = logging.getLogger()
    level = root.level
    yield
    for handler in list(root.handlers):
        if any(isinstance(f, logs.Redactor) for f in handler.filters):
            root.removeHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(False)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Settings from the test only: none from the developer's shell, no ``.env``."""
    for name in list(os.environ):
        if name.startswith(SETTING_PREFIXES):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
