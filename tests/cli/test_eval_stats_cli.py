"""``agents eval`` refusing bad input with one line, and ``agents stats`` reading the
figures the workers keep, run as real subprocesses."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import redis

from runs.outcomes import OutcomeStore, RunOutcome
from runs.record import RunStatus, utcnow
from tests.cli.test_cli import agents
from tests.conftest import TEST_REDIS_URL


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tasks", "t.jsonl", "--compare", "model=a"], "--compare needs two or more variants"),
        (
            ["--tasks", "t.jsonl", "--compare", "model=a", "token=x"],
            "--compare 'token=x': token is not a setting",
        ),
        (["--tasks", "missing.jsonl", "--model", "oracle"], "cannot read missing.jsonl"),
        (["--repo", "acme/api", "--model", "null"], "--repo needs --from-history N"),
        (["--tasks", "bad.jsonl", "--model", "null"], "bad.jsonl: no usable task (bad.jsonl:1"),
    ],
)
def test_eval_refuses_bad_input_with_one_line(
    tmp_path: Path, args: list[str], message: str
) -> None:
    (tmp_path / "bad.jsonl").write_text("{not json\n")
    result = agents("eval", *args, env={"AGENTS_FORGE": "local"}, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith(f"agents eval: {message}"), result.stderr
    assert "Traceback" not in result.stderr
    assert not list(tmp_path.glob("eval-*"))  # no report, partial or not


@pytest.mark.redis
def test_stats_prints_the_figures_per_repository(real_redis_conn: redis.Redis) -> None:
    store = OutcomeStore(real_redis_conn)
    now = utcnow()
    for n, merged in enumerate((True, False, True, False), start=1):
        store.save(
            RunOutcome(
                run_id=n,
                repo="acme/api",
                requester="U1",
                created_at=now - timedelta(days=n),
                status=RunStatus.APPROVED,
                dollars=2.0,
                pr_number=n,
                pr_opened_at=now - timedelta(days=n) + timedelta(minutes=10),
                merged=merged,
            )
        )
    env = {"REDIS_URL": TEST_REDIS_URL}
    result = agents("stats", "--since", "30d", env=env)
    assert result.returncode == 0, result.stderr
    assert "acme/api" in result.stdout
    assert "runs: 4 · PRs opened: 4 · merged: 2 · merged rate: 50%" in result.stdout
    assert "cost per merged PR: $4.00" in result.stdout
    assert "median time to PR: 10 min" in result.stdout
    recent = agents("stats", "--since", "36h", env=env)
    assert "runs: 1 · PRs opened: 1 · merged: 1 · merged rate: 100%" in recent.stdout
    bad = agents("stats", "--since", "2y", env=env)
    assert bad.returncode == 2
    assert "is not a window" in bad.stderr
