"""CLI misuse: an empty request, a malformed ``REDIS_URL``, Redis down, an empty
directory and an undecodable file name as ``--repo``, Ctrl-C mid-run, and the transcript
recorder on a directory with a link out of it.

Each command runs as users run it (a subprocess of ``python -m cli.main``), on real
Redis where it keeps runs. The rule: one line, a non-zero exit, no traceback, and
every run the command created ends in a final state with its reason. The rows join
the bad-input figure.
"""

from __future__ import annotations

import gzip
import io
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import docker
import pytest
import redis

from cli.record_agent import snapshot
from runs.events import StatusChanged
from runs.record import RunStatus
from runs.store import RunStore
from sandboxes import labels
from tests.blueprint.conftest import CLEAN_REQUEST, ROOT, SAMPLE
from tests.conftest import TEST_REDIS_URL
from tests.reliability.figures import Table

TRANSCRIPTS = ROOT / "examples" / "transcripts" / "blueprint"
SETTING_PREFIXES = ("AGENTS_", "SLACK_", "ANTHROPIC_", "GITHUB_", "REDIS_")
CLI_PREFIX = "agents-cli"

TABLE = Table(
    "bad-input",
    "Bad input: what the user sees",
    ["input", "where the user sees it", "exact message"],
    order=70,
    part="cli",
)
record_table = TABLE.fixture()


def environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(SETTING_PREFIXES)}
    env.update(
        PYTHONPATH=str(ROOT),
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        AGENTS_CACHE_DIR=str(tmp_path / "cache"),
        AGENTS_CI_TIMEOUT_SECONDS="0",
        AGENTS_FORGE="local",
        AGENTS_LOCAL_FORGE_DIR=str(tmp_path / "forge"),
        AGENTS_MODEL_BACKEND="replay",
        AGENTS_REPLAY_TRANSCRIPT=str(TRANSCRIPTS),
        AGENTS_SANDBOX_BACKEND="local",
    )
    env.update(extra)
    return env


def agents(
    tmp_path: Path, *args: str, timeout: float = 300, **extra: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        cwd=tmp_path,
        env=environment(tmp_path, **extra),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    """The command's own message: stderr, less the log lines a run writes."""
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    lines = [
        line
        for line in result.stderr.splitlines()
        if line.startswith("agents ") and " INFO " not in line and " WARNING " not in line
    ]
    assert len(lines) == 1, result.stderr[-3000:]
    return lines[0]


def cli_runs(connection: redis.Redis) -> list[tuple[int, RunStatus, str | None]]:
    store = RunStore(connection, prefix=CLI_PREFIX)
    return [(r.id, r.status, r.error) for r in store.list_recent(limit=50)]


@pytest.mark.redis
def test_an_empty_request_is_refused(tmp_path: Path, real_redis_conn: redis.Redis) -> None:
    result = agents(tmp_path, "run", "  ", "--repo", "acme/api", REDIS_URL=TEST_REDIS_URL)
    assert result.returncode == 2
    told = one_line(result)
    assert told.startswith("agents run: the request is empty")
    assert cli_runs(real_redis_conn) == []
    TABLE.add('`agents run "  " --repo acme/api`', "stderr, exit 2", told)


def test_a_malformed_redis_url_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = agents(tmp_path, "worker", "--burst", REDIS_URL="garbage", timeout=60)
    assert result.returncode == 2
    told = one_line(result)
    assert told.startswith("agents worker: REDIS_URL: expected a URL like redis://host:6379/0")
    TABLE.add("`REDIS_URL=garbage agents worker`", "stderr, exit 2", told)


def test_a_worker_with_redis_down_says_so_in_one_line(tmp_path: Path) -> None:
    result = agents(tmp_path, "worker", "--burst", REDIS_URL="redis://127.0.0.1:1/0", timeout=120)
    assert result.returncode == 1
    told = one_line(result)
    assert told.startswith("agents worker: cannot reach Redis at redis://127.0.0.1:1/0 (")
    TABLE.add("`agents worker` with Redis down", "stderr, exit 1", told)


@pytest.mark.redis
def test_an_empty_directory_as_repo_ends_the_run(
    tmp_path: Path, real_redis_conn: redis.Redis
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = agents(tmp_path, "run", CLEAN_REQUEST, "--repo", str(empty), REDIS_URL=TEST_REDIS_URL)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    ((_, status, error),) = cli_runs(real_redis_conn)
    assert status is RunStatus.FAILED
    assert error
    TABLE.add("`agents run --repo <an empty directory>`", "the run (failed), exit 1", error)


@pytest.mark.redis
def test_a_file_name_that_is_not_utf8(tmp_path: Path, real_redis_conn: redis.Redis) -> None:
    repo = tmp_path / "odd"
    shutil.copytree(SAMPLE, repo)
    (repo / os.fsdecode(b"notes-\xff.txt")).write_text("latin-1 name\n")
    result = agents(tmp_path, "run", CLEAN_REQUEST, "--repo", str(repo), REDIS_URL=TEST_REDIS_URL)
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert "published " in result.stdout
    ((_, status, _),) = cli_runs(real_redis_conn)
    assert status.is_final or status is RunStatus.AWAITING_DECISION
    TABLE.add(
        "`agents run --repo <a directory with a file named notes-\\xff.txt>`",
        "stdout",
        next(line for line in result.stdout.splitlines() if line.startswith("published ")).replace(
            str(tmp_path), "…"
        ),
    )


@pytest.mark.redis
@pytest.mark.docker
@pytest.mark.slow
def test_ctrl_c_cancels_the_run_and_removes_its_sandbox(
    tmp_path: Path, real_redis_conn: redis.Redis, docker_client: docker.DockerClient
) -> None:
    repo = tmp_path / "slow"
    shutil.copytree(SAMPLE, repo)
    (repo / ".agents.yml").write_text("setup: sleep 600\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "run", CLEAN_REQUEST, "--repo", str(repo),
         "--name", "acme/retrying", "--sandbox", "docker"],
        cwd=tmp_path,
        env=environment(tmp_path, REDIS_URL=TEST_REDIS_URL),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    store = RunStore(real_redis_conn, prefix=CLI_PREFIX)

    def sandboxes(run_id: int) -> list[object]:
        """The run's containers: its own sandbox, or the build of its environment (where
        setup runs, `env-<key>`), of this store only."""
        mine = docker_client.containers.list(
            all=True, filters={"label": f"{labels.STORE}={store.identity}"}, ignore_removed=True
        )
        return [
            c
            for c in mine
            if c.labels.get(labels.RUN_ID) == str(run_id)
            or c.labels.get(labels.RUN_ID, "").startswith("env-")
        ]

    try:
        deadline = time.monotonic() + 240  # a bound against a hang, not a timing assertion
        while True:
            runs = store.list_recent(limit=5)
            if runs and runs[0].step is not None and sandboxes(runs[0].id):
                break
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "the run never started its sandbox"
            time.sleep(0.5)
        run_id = runs[0].id
        time.sleep(2)  # into the `sleep 600` setup command
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()  # reads and closes its pipes, so a failure leaks no file
    assert proc.returncode == 130, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]
    run = store.get(run_id)
    assert run.status is RunStatus.CANCELLED
    assert run.error is None or "Ctrl-C" in (run.error or "")
    reason = next(
        e.reason
        for e in reversed(store.events(run_id))
        if isinstance(e, StatusChanged) and e.to is RunStatus.CANCELLED
    )
    assert reason == "interrupted at the terminal (Ctrl-C)"
    assert sandboxes(run_id) == []
    told = next(line for line in stderr.splitlines() if line.startswith("agents run:"))
    TABLE.add(
        "Ctrl-C on `agents run` (in its setup, building its environment)",
        "stderr, exit 130; the run",
        f"{told}; run cancelled: {reason}; its sandbox removed",
    )


def test_the_recorder_never_reads_outside_the_repository(tmp_path: Path) -> None:
    outside = tmp_path / "host-secret.txt"
    outside.write_text("HOST-SECRET-CONTENT\n")
    repo = tmp_path / "repo"
    shutil.copytree(SAMPLE, repo)
    (repo / "innocent.txt").symlink_to(outside)
    (repo / "etc").symlink_to("/etc")
    os.mkfifo(repo / "pipe")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    workspace = snapshot(repo, scratch)
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(workspace.archive))) as tar:
        members = {m.name.removeprefix("./"): m for m in tar}
        contents = b"".join(
            (tar.extractfile(m) or io.BytesIO()).read() for m in members.values() if m.isfile()
        )
    assert b"HOST-SECRET-CONTENT" not in contents
    assert b"root:x:0:0" not in contents
    assert members["innocent.txt"].issym()
    assert members["etc"].issym()
    assert "pipe" not in members
    TABLE.add(
        "`python -m cli.record_agent --repo-dir` with links out of the directory",
        "the recorded workspace",
        "links kept as links (to "
        + members["innocent.txt"].linkname.replace(str(tmp_path), "…")
        + ", /etc); nothing outside the directory read; a FIFO skipped",
    )
