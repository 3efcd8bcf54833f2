"""Real parts for the end-to-end tests: `agents worker` processes on the test Redis,
Docker sandboxes, and waiting for runs."""

from __future__ import annotations

import contextlib
import gzip
import os
import signal
import subprocess
import sys
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest
import redis

from runs.record import Run, RunStatus
from runs.store import RunStore
from sandboxes import engine, labels
from tests.conftest import TEST_REDIS_URL

ROOT = Path(__file__).resolve().parents[2]
TRANSCRIPTS = ROOT / "examples" / "transcripts" / "blueprint"
#: The image the end-to-end runs use; it must have python3 and pytest.
SANDBOX_IMAGE = os.environ.get("AGENTS_TEST_SANDBOX_IMAGE", "agents-sandbox:latest")
SECRET_PREFIXES = ("AGENTS_", "SLACK_", "ANTHROPIC_", "GITHUB_", "REDIS_", "DOCKER_TLS")


def docker_client() -> docker.DockerClient:
    try:
        client = engine.connect()
        client.ping()
    except docker.errors.DockerException as exc:
        pytest.skip(f"no Docker engine: {exc}")
    return client


def require_image(client: docker.DockerClient) -> None:
    """The image must run the sample repository's tests; say how to fix it if not."""
    try:
        output = client.containers.run(
            SANDBOX_IMAGE,
            ["python3", "-c", "import pytest"],
            network_mode="none",
            remove=True,
            stderr=True,
        )
    except docker.errors.ImageNotFound:
        pytest.fail(f"{SANDBOX_IMAGE} is missing: build it with `agents sandbox build`")
    except docker.errors.ContainerError as exc:
        pytest.fail(
            f"{SANDBOX_IMAGE} has no pytest ({exc}); rebuild it with "
            "`agents sandbox build --force` (the Dockerfile installs python3-pytest)"
        )
    del output


def containers_of(client: docker.DockerClient, store: RunStore, run_ids: list[int]) -> list[str]:
    """The containers of these runs of ``store``: run ids repeat across the stores (test
    databases, other checkouts) that share one engine."""
    found = []
    for run_id in run_ids:
        wanted = [f"{labels.RUN_ID}={run_id}", f"{labels.STORE}={store.identity}"]
        for container in client.containers.list(
            all=True, filters={"label": wanted}, ignore_removed=True
        ):
            found.append(str(container.name))
    return found


def wait_for(
    predicate: Callable[[], bool],
    what: str,
    limit: float = 240.0,
    detail: Callable[[], str] | None = None,
) -> None:
    """Poll until `predicate` holds; a hang guard, so `limit` is generous on purpose."""
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            extra = f": {detail()}" if detail is not None else ""
            pytest.fail(f"gave up waiting for {what}{extra}")
        time.sleep(0.1)


def wait_status(store: RunStore, run_id: int, *statuses: RunStatus, limit: float = 240) -> Run:
    def reached() -> bool:
        return store.get(run_id).status in statuses

    wait_for(reached, f"run #{run_id} to be {'/'.join(s.value for s in statuses)}", limit)
    return store.get(run_id)


def clean_env() -> dict[str, str]:
    """This process's environment without anything that could hold a secret."""
    return {k: v for k, v in os.environ.items() if not k.startswith(SECRET_PREFIXES)}


def worker_env(tmp: Path, queue: str, **extra: str) -> dict[str, str]:
    env = clean_env()
    env.update(
        REDIS_URL=TEST_REDIS_URL,
        PYTHONPATH=str(ROOT),
        AGENTS_QUEUE=queue,
        AGENTS_MODEL_BACKEND="replay",
        AGENTS_REPLAY_TRANSCRIPT=str(TRANSCRIPTS),
        AGENTS_FORGE="local",
        AGENTS_LOCAL_FORGE_DIR=str(tmp / "forge"),
        AGENTS_CACHE_DIR=str(tmp / "cache"),
        AGENTS_SANDBOX_BACKEND="docker",
        AGENTS_SANDBOX_IMAGE=SANDBOX_IMAGE,
        AGENTS_CI_TIMEOUT_SECONDS="0",
        AGENTS_HEARTBEAT_SECONDS="4",
        AGENTS_RECOVERY_INTERVAL="1",
    )
    env.update(extra)
    return env


def github_env(tmp: Path, queue: str, api_url: str, token: str, **extra: str) -> dict[str, str]:
    """``worker_env`` for a fake GitHub at ``api_url``, whose CI it polls quickly."""
    return worker_env(
        tmp,
        queue,
        AGENTS_FORGE="github",
        GITHUB_TOKEN=token,
        AGENTS_GITHUB_API_URL=api_url,
        AGENTS_CI_TIMEOUT_SECONDS="120",
        AGENTS_CI_POLL_SECONDS="0.2",
        AGENTS_CI_SETTLE_SECONDS="60",
        **extra,
    )


def unpacked(blob: bytes) -> list[bytes]:
    """``blob`` and, if it is zlib or gzip data (RQ compresses job payloads), what it holds."""
    out = [blob]
    for unpack in (zlib.decompress, gzip.decompress):
        try:
            out.append(unpack(blob))
        except Exception:  # noqa: S112 - not compressed that way
            continue
    return out


def redis_dump(connection: redis.Redis) -> list[tuple[str, bytes]]:
    """Every key, field and value in the database, as bytes, with its key."""
    out: list[tuple[str, bytes]] = []
    for raw_key in connection.scan_iter(count=1000):
        key = raw_key.decode() if isinstance(raw_key, bytes) else str(raw_key)
        kind = connection.type(raw_key)
        kind = kind.decode() if isinstance(kind, bytes) else kind
        values: list[Any] = []
        if kind == "string":
            values = [connection.get(raw_key)]
        elif kind == "hash":
            values = [v for pair in connection.hgetall(raw_key).items() for v in pair]
        elif kind == "list":
            values = connection.lrange(raw_key, 0, -1)
        elif kind == "set":
            values = list(connection.smembers(raw_key))
        elif kind == "zset":
            values = connection.zrange(raw_key, 0, -1)
        elif kind == "stream":
            values = [
                part
                for _, fields in connection.xrange(raw_key)
                for pair in fields.items()
                for part in pair
            ]
        out.extend((key, v if isinstance(v, bytes) else str(v).encode()) for v in values)
        out.append((key, raw_key if isinstance(raw_key, bytes) else key.encode()))
    return out


@dataclass
class Workers:
    """`agents worker` processes, logging to files; stopped at the end of the test."""

    tmp: Path
    started: list[tuple[subprocess.Popen[bytes], Path]] = field(default_factory=list)
    #: Work horses the test paused: killed at the end, whatever happened.
    horses: list[int] = field(default_factory=list)

    def start(
        self, env: dict[str, str], name: str, module: str = "cli.main"
    ) -> subprocess.Popen[bytes]:
        """``module``: what runs ``worker`` (tests.reliability.fault_worker adds hooks)."""
        log = self.tmp / f"worker-{name}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", module, "worker", "--name", f"{name}-{os.getpid()}"],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                # Its own process group: the RQ scheduler it forks goes with it.
                start_new_session=True,
            )
        self.started.append((proc, log))
        return proc

    def standby(
        self, env: dict[str, str], name: str, module: str = "cli.main"
    ) -> subprocess.Popen[bytes]:
        """Like :meth:`start`, but the process only imports the worker's code and waits
        (:mod:`tests.blueprint.standby`) until :meth:`go`: a replacement made ready
        before the worker it replaces is killed."""
        log = self.tmp / f"worker-{name}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "tests.blueprint.standby", module, "worker",
                 "--name", f"{name}-{os.getpid()}"],
                cwd=ROOT,
                env=env,
                stdin=subprocess.PIPE,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        self.started.append((proc, log))
        return proc

    @staticmethod
    def go(proc: subprocess.Popen[bytes]) -> subprocess.Popen[bytes]:
        """Tell a :meth:`standby` process to start working."""
        assert proc.stdin is not None
        proc.stdin.write(b"go\n")
        proc.stdin.close()
        return proc

    def logs(self) -> str:
        return "\n".join(log.read_text(errors="replace") for _, log in self.started)

    def stop(self) -> None:
        for pid in self.horses:
            if is_worker_process(pid):  # not a pid reused by something else since
                kill(pid)
        for proc, _ in self.started:
            if proc.stdin is not None and not proc.stdin.closed:
                proc.stdin.close()  # a standby never told to go: it leaves
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            kill_group(proc.pid)  # whatever it left: its scheduler, if it was killed


def is_worker_process(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"cli.main" in cmdline or b"tests.reliability.fault_worker" in cmdline


def kill_group(pgid: int) -> None:
    """SIGKILL a worker's process group (the worker and its RQ scheduler; work horses
    run in groups of their own)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
