"""Workers: a recovery sweep that would take another pool's runs, and helper processes
that would outlive their commands in a sandbox (a real Docker sandbox).

The rows join the bad-input figure: what the operator sees in each case.
"""

from __future__ import annotations

from collections.abc import Iterator

import docker
import pytest
import redis

from jobs import recovery
from jobs.queue import RunQueue
from runs.record import RunStatus
from sandboxes.config import SandboxConfig
from sandboxes.docker_sandbox import DockerSandbox
from tests.bot.conftest import Harness, open_harness
from tests.reliability.figures import Table
from tests.reliability.surface import ask

TABLE = Table(
    "bad-input",
    "Bad input: what the user sees",
    ["input", "where the user sees it", "exact message"],
    order=70,
    part="workers",
)
record_table = TABLE.fixture()

#: How a watcher shows in /proc/<pid>/cmdline (sandboxes.wrapper).
WATCHER = 'sh -c eval "$AGENTS_WATCH" agents-watch'


@pytest.fixture
def surface(real_redis_conn: redis.Redis) -> Iterator[Harness]:
    with open_harness(real_redis_conn) as h:
        yield h


@pytest.mark.redis
def test_a_sweep_recovers_only_the_runs_of_its_own_queue(surface: Harness) -> None:
    h = surface
    store = h.services.store
    run = ask(h)  # the bot's queue is "bot-tests"
    store.transition(
        run.id, RunStatus.RUNNING, by="worker", change=lambda r: setattr(r, "attempts", 1)
    )
    other = RunQueue(h.services.connection, store, name="another-pool")
    assert recovery.sweep(store, other, max_attempts=3) == []
    assert store.get(run.id).status is RunStatus.RUNNING
    assert other.queue.count == 0
    own = RunQueue(h.services.connection, store, name="bot-tests")
    (found,) = recovery.sweep(store, own, max_attempts=3)
    assert (found.run_id, found.outcome) == (run.id, "requeued")
    assert own.job(store.get(run.id)) is not None
    TABLE.add(
        "a worker of another queue (AGENTS_QUEUE=another-pool) sweeps a dead run of bot-tests",
        "the run",
        f"left alone by another-pool; its own pool's sweep: {found.reason}",
    )


@pytest.mark.docker
@pytest.mark.slow
def test_no_helper_process_outlives_its_command(docker_client: docker.DockerClient) -> None:
    with DockerSandbox("watchers", SandboxConfig(), client=docker_client) as sandbox:
        for _ in range(150):
            assert sandbox.exec("true").ok
        listing = sandbox.exec(
            "for d in /proc/[0-9]*; do tr '\\0' ' ' < $d/cmdline 2>/dev/null; echo; done"
        )
    watchers = [line for line in listing.stdout.splitlines() if line.startswith(WATCHER)]
    # The listing command's own watcher is alive while it lists.
    assert len(watchers) == 1, watchers
    TABLE.add(
        "150 quick commands in one sandbox",
        "the sandbox's processes",
        f"{len(watchers) - 1} watcher processes left after them (each ends with its command)",
    )
