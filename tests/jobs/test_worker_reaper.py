"""A worker reaps leftover sandboxes when it starts, judging runs by the run store."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import docker
import pytest
import redis

from jobs.attempts import Heartbeat
from runs.record import RunStatus
from runs.store import RunStore
from sandboxes import labels
from sandboxes.owner import Owner
from tests.conftest import TEST_REDIS_URL

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.docker
@pytest.mark.redis
def test_worker_start_removes_sandboxes_of_final_runs(real_redis_conn: redis.Redis) -> None:
    try:
        client = docker.from_env(timeout=30)
        client.images.get("agents-sandbox:latest")
    except docker.errors.DockerException as exc:
        pytest.skip(f"no Docker engine or sandbox image: {exc}")
    store = RunStore(real_redis_conn)
    done = store.create(requester="U1", repo="acme/api", request="x")
    store.transition(done.id, RunStatus.CANCELLED, by="U1")
    live = store.create(requester="U1", repo="acme/api", request="y")
    store.transition(live.id, RunStatus.RUNNING, by="w")
    # A running run is live while its attempt's heartbeat is fresh: without one, the
    # worker's recovery would (rightly) fail it as abandoned, and then reap its sandbox.
    attempt = store.get(live.id).attempts
    heartbeat = Heartbeat(store, live.id, attempt=attempt, ttl=60).start()
    me = Owner.current()
    made = {}
    try:
        for key, run_id, store_label in (
            ("done", done.id, store.identity),
            ("live", live.id, store.identity),
            # Same run id as the final run, but another store's: not this worker's call.
            ("foreign", done.id, "elsewhere:6379/0/agents"),
        ):
            made[key] = client.containers.run(
                "agents-sandbox:latest",
                ["sleep", "600"],
                detach=True,
                network_mode="none",
                labels=labels.sandbox_labels(str(run_id), me, datetime.now(UTC), 3600, store_label),
            )
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENTS_", "REDIS_"))}
        env.update(
            REDIS_URL=TEST_REDIS_URL,
            AGENTS_QUEUE="q-reap",
            AGENTS_MODEL_BACKEND="replay",
            AGENTS_FORGE="local",
            PYTHONPATH=str(ROOT),
        )
        result = subprocess.run(
            [sys.executable, "-m", "cli.main", "worker", "--burst"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        remaining = {c.id for c in client.containers.list(all=True, ignore_removed=True)}
        assert made["done"].id not in remaining
        assert made["live"].id in remaining
        assert made["foreign"].id in remaining
        assert store.get(live.id).status is RunStatus.RUNNING  # not taken for abandoned
    finally:
        heartbeat.close()
        for container in made.values():
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True, v=True)
        client.close()
