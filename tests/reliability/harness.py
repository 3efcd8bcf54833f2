"""Real parts the fault-injection tests break on purpose: a private Redis (AOF on) and a
private dockerd that a test may restart, fault-hooked workers, and a fake GitHub with CI.

The shared Redis and the shared dockerd serve every other test running at the same
time, so they are never stopped: a test that restarts a service starts its own, on its
own port or socket, and stops it at the end. The workers and the waiting helpers are
those of the end-to-end tests (:mod:`tests.blueprint.e2e`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import docker
import docker.errors
import pytest
import redis

from fakes.github.server import FakeGitHub
from jobs.forge.local import LocalForge
from jobs.queue import RunQueue
from runs.record import Run, RunStatus, Step
from runs.store import RunStore
from sandboxes import labels
from sandboxes.reaper import Reaper
from tests.blueprint.conftest import REPO, SAMPLE
from tests.blueprint.e2e import SANDBOX_IMAGE, Workers, kill, kill_group, wait_for
from tests.reliability import fault_worker
from tests.reliability.figures import FIGURES_DIR, record

#: Where the private dockerd keeps its data between sessions: loading the sandbox image
#: into a fresh data root costs half a minute, so it is done once per image id.
CACHE = Path(os.environ.get("AGENTS_FAULT_CACHE", "/var/cache/agents/fault-tests"))
FAULT_WORKER = "tests.reliability.fault_worker"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """SIGTERM, then SIGKILL if it will not go."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- a private Redis ----------------------------------------------------------------------


@dataclass
class PrivateRedis:
    """``redis-server`` on a free port with AOF on (fsync on every write), in ``dir``."""

    dir: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        if shutil.which("redis-server") is None:
            pytest.fail("redis-server is not installed: run `make services`")
        self.dir.mkdir(parents=True, exist_ok=True)
        log = (self.dir / "redis.log").open("ab")
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--dir", str(self.dir),
                "--appendonly", "yes",
                "--appendfsync", "always",
                "--save", "",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        log.close()
        client = redis.Redis(port=self.port, socket_connect_timeout=1)
        try:
            wait_for(lambda: _pings(client), f"the private Redis on port {self.port}", 30)
        except BaseException:
            self.stop()
            raise
        finally:
            client.close()

    def stop(self) -> None:
        """A clean shutdown (SIGTERM: Redis flushes its AOF and exits)."""
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()
        self.restarts += 1

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_connect_timeout=2)


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


@contextlib.contextmanager
def private_redis(tmp: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp / "redis")
    server.start()
    try:
        yield server
    finally:
        server.stop()


# -- a private dockerd --------------------------------------------------------------------


@dataclass
class PrivateDockerd:
    """A dockerd of its own: own socket, data root, exec root, pid file and containerd;
    no bridge and no iptables rules, so it touches nothing the shared engine uses.

    It also gets its own network namespace (``unshare --net``): a dockerd started with
    ``--bridge=none`` deletes any ``docker0`` link it sees, which would cut the shared
    engine's default bridge from under every other test.

    Sandboxes run with ``network_mode=none`` unless a repository asks for network, so no
    bridge is needed. The data root is kept between sessions (see :data:`CACHE`).
    """

    run_dir: Path
    data_root: Path
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0

    @property
    def socket(self) -> Path:
        return self.run_dir / "docker.sock"

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    def start(self) -> None:
        if shutil.which("dockerd") is None:
            pytest.fail("dockerd is not installed: run `make services`")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.data_root.mkdir(parents=True, exist_ok=True)
        log = (self.run_dir / "dockerd.log").open("ab")
        self.proc = subprocess.Popen(
            [
                "unshare", "--net",
                "dockerd",
                "-H", self.host,
                "--data-root", str(self.data_root),
                "--exec-root", str(self.run_dir / "exec"),
                "--pidfile", str(self.run_dir / "docker.pid"),
                "--bridge=none",
                "--iptables=false",
                "--ip-masq=false",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        log.close()
        try:
            wait_for(self._answers, f"the private dockerd at {self.host}", 60)
        except BaseException:
            self.stop()
            raise

    def _answers(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            log = (self.run_dir / "dockerd.log").read_text(errors="replace")[-2000:]
            pytest.fail(f"the private dockerd exited ({self.proc.returncode}):\n{log}")
        if not self.socket.exists():
            return False
        try:
            with self.client() as client:
                return bool(client.ping())
        except docker.errors.DockerException:
            return False

    def client(self) -> contextlib.closing[docker.DockerClient]:
        """``with engine.client() as client:`` a client of this engine, closed after."""
        return contextlib.closing(docker.DockerClient(base_url=self.host, timeout=60))

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, timeout=60)
            kill_group(self.proc.pid)  # its containerd and shims, if any were left
            self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()
        self.restarts += 1

    def load_image(self, shared: docker.DockerClient, image: str) -> None:
        """Give this engine the shared engine's ``image`` (once per image id)."""
        wanted = str(shared.images.get(image).id)
        with self.client() as client:
            with contextlib.suppress(docker.errors.ImageNotFound):
                if str(client.images.get(image).id) == wanted:
                    return
            tarball = CACHE / f"{wanted.replace(':', '-')}.tar"
            if not tarball.is_file():
                CACHE.mkdir(parents=True, exist_ok=True)
                partial = tarball.with_suffix(".partial")
                with partial.open("wb") as out:
                    for chunk in shared.images.get(image).save(named=True):
                        out.write(chunk)
                partial.replace(tarball)
            with tarball.open("rb") as data:
                client.images.load(data.read())


@contextlib.contextmanager
def private_dockerd(tmp: Path, shared: docker.DockerClient) -> Iterator[PrivateDockerd]:
    image_id = str(shared.images.get(SANDBOX_IMAGE).id)
    key = hashlib.sha256(image_id.encode()).hexdigest()[:12]
    # A short run directory: the socket's path must fit in sun_path (108 bytes).
    run_dir = Path(f"/tmp/agents-fault-dockerd-{os.getpid()}")
    engine = PrivateDockerd(run_dir=run_dir, data_root=CACHE / f"dockerd-{key}")
    try:
        engine.start()
        engine.load_image(shared, SANDBOX_IMAGE)
        yield engine
    finally:
        engine.stop()
        shutil.rmtree(run_dir, ignore_errors=True)
        del tmp


# -- workers with fault hooks ---------------------------------------------------------------


def sample_on_local_forge(
    connection: redis.Redis, tmp: Path, queue: str
) -> tuple[LocalForge, RunStore, RunQueue]:
    """The sample repository on a local forge in ``tmp`` (where `worker_env` points the
    workers), a run store on ``connection`` and the run queue ``queue``."""
    forge = LocalForge(tmp / "forge")
    forge.create_repo(REPO, source=SAMPLE)
    store = RunStore(connection)
    return forge, store, RunQueue(connection, store, name=queue)


def start_fault_worker(workers: Workers, env: dict[str, str], name: str) -> subprocess.Popen[bytes]:
    return workers.start(env, name, module=FAULT_WORKER)


def paused(connection: redis.Redis, run_id: int) -> tuple[Step, int] | None:
    """Where a fault-hooked job of ``run_id`` stopped, and its pid (None if it has not)."""
    raw = connection.get(fault_worker.paused_key(run_id))
    if raw is None:
        return None
    step, _, pid = (raw.decode() if isinstance(raw, bytes) else str(raw)).partition(" ")
    return Step(step), int(pid)


def parent_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rpartition(")")[2].split()[1])


def kill_worker_of(workers: Workers, horse: int) -> subprocess.Popen[bytes] | None:
    """SIGKILL the work horse ``horse`` and the worker that forked it (with its group)."""
    parent = parent_of(horse)
    owner = next((proc for proc, _ in workers.started if proc.pid == parent), None)
    if owner is not None:
        kill_group(owner.pid)
        owner.wait()
    kill(horse)
    return owner


# -- the forge's CI and the final accounting -------------------------------------------------


class GreenCI(threading.Thread):
    """Reports CI success on the head of every pull request the fake GitHub holds."""

    def __init__(self, fake: FakeGitHub, repo: str) -> None:
        super().__init__(daemon=True, name="green-ci")
        self.fake = fake
        self.repo = repo
        self.stop = threading.Event()
        self.done: set[str] = set()

    def run(self) -> None:
        while not self.stop.wait(0.1):
            for pull in self.fake.pulls(self.repo):
                sha = pull["head"]["sha"]
                if sha not in self.done:
                    self.fake.set_check_runs(
                        self.repo,
                        sha,
                        [{"name": "ci/test", "status": "completed", "conclusion": "success"}],
                    )
                    self.done.add(sha)

    def __enter__(self) -> GreenCI:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.join()


def final_or_resumable(store: RunStore, run_ids: list[int]) -> dict[str, int]:
    """Counts of the runs by status (the figures' "final states")."""
    counts: dict[str, int] = {}
    for run_id in run_ids:
        status = store.get(run_id).status.value
        counts[status] = counts.get(status, 0) + 1
    return counts


def describe(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))


def store_containers(client: docker.DockerClient, store: RunStore, run_ids: list[int]) -> list[str]:
    """Names of the containers of these runs of ``store``. Run ids repeat across stores
    (other tests' runs #1 share the engine), so the store's label is matched too."""
    names = []
    for run_id in run_ids:
        wanted = [f"{labels.RUN_ID}={run_id}", f"{labels.STORE}={store.identity}"]
        for container in client.containers.list(
            all=True, filters={"label": wanted}, ignore_removed=True
        ):
            names.append(str(container.name))
    return names


def reap_and_count(client: docker.DockerClient, store: RunStore, run_ids: list[int]) -> int:
    """Run the reaper as a worker would until the runs' containers are gone (a job that
    just ended may still be removing its own: the engine finishes that on its own
    time); the count left, 0 unless the wait gave up (which fails the test)."""
    reaper = Reaper(client, is_final=store.is_final, store=store.identity)

    def none_left() -> bool:
        reaper.reap()
        return store_containers(client, store, run_ids) == []

    wait_for(none_left, "the reaper to leave no container of the runs", 60)
    return len(store_containers(client, store, run_ids))


def settled(run: Run) -> bool:
    return run.status in (RunStatus.AWAITING_DECISION, RunStatus.FAILED, RunStatus.CANCELLED)


def wait_settled(store: RunStore, run_ids: list[int], what: str, limit: float = 240) -> None:
    wait_for(lambda: all(settled(store.get(r)) for r in run_ids), what, limit)


def elapsed(start: float) -> str:
    return f"{time.monotonic() - start:.1f} s"


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Workers]:
    """`agents worker` processes for one test, stopped afterwards (``tests/reliability``
    gets it from its conftest; elsewhere, import it into the test module)."""
    started = Workers(tmp_path)
    yield started
    started.stop()


# -- the table of fault kinds -----------------------------------------------------------------

FAULT_COLUMNS = ["fault", "injected how", "runs", "outcome"]


def record_fault(kind: str, how: str, runs: int, outcome: str, *, rank: int) -> None:
    """One row of the "fault kinds" table; each test adds its own, and the table is
    rebuilt from every row recorded so far (``rank`` orders the rows)."""
    parts = FIGURES_DIR / "fault-kinds"
    parts.mkdir(parents=True, exist_ok=True)
    row = {"rank": rank, "cells": [kind, how, runs, outcome]}
    (parts / f"{kind_slug(kind)}.json").write_text(json.dumps(row), encoding="utf-8")
    rows = sorted(
        (json.loads(p.read_text(encoding="utf-8")) for p in parts.glob("*.json")),
        key=lambda r: (int(r["rank"]), str(r["cells"][0])),
    )
    record(
        "faults-kinds",
        "Faults by kind",
        FAULT_COLUMNS,
        [r["cells"] for r in rows],
        notes=(
            "Each row is one automated test in `tests/reliability/test_faults_*.py` "
            "(Slack rows: `tests/bot/test_reporter.py`), with real Redis, real RQ "
            "workers, Docker and the fakes named."
        ),
        order=20,
    )


def kind_slug(kind: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in kind.lower()).strip("-")
