"""The ``agents`` command line, run as a real subprocess the way users run it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cli.commands.decide import VERBS
from cli.main import COMMANDS

REPO_ROOT = Path(__file__).resolve().parents[2]
SETTING_PREFIXES = ("AGENTS_", "SLACK_", "ANTHROPIC_", "GITHUB_", "REDIS_", "DOCKER_")


def agents(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(SETTING_PREFIXES)}
    base["PYTHONPATH"] = str(REPO_ROOT)
    base.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        cwd=cwd or REPO_ROOT,
        env=base,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


@pytest.mark.parametrize(
    "command",
    [
        "bot",
        "worker",
        "run",
        "rework",
        "approve",
        "cancel",
        "resume",
        "logs",
        "eval",
        "stats",
        "status",
        "doctor",
        "config",
    ],
)
def test_every_subcommand_has_help(command: str) -> None:
    assert command in COMMANDS or command in VERBS
    result = agents(command, "--help")
    assert result.returncode == 0, result.stderr
    assert f"usage: agents {command}" in result.stdout


def test_malformed_setting_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = agents("worker", env={"AGENTS_MAX_TURNS": "abc"}, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "AGENTS_MAX_TURNS" in lines[0]
    assert "integer" in lines[0]
    assert "Traceback" not in result.stderr + result.stdout


def test_missing_setting_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = agents("bot", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "agents bot: SLACK_BOT_TOKEN: required but not set"
    ]


def test_a_bad_secret_is_named_but_not_echoed(tmp_path: Path) -> None:
    result = agents("bot", env={"SLACK_BOT_TOKEN": "xoxp-private-value"}, cwd=tmp_path)
    assert result.returncode == 2
    assert "SLACK_BOT_TOKEN" in result.stderr
    assert "private-value" not in result.stderr + result.stdout


def test_run_without_a_model_key_names_the_setting(tmp_path: Path) -> None:
    result = agents("run", "do it", "--repo", "acme/api", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "agents run: ANTHROPIC_API_KEY: required when AGENTS_MODEL_BACKEND=anthropic "
        "(or set AGENTS_MODEL_BACKEND=replay)"
    ]


def test_doctor_with_nothing_configured_fails_every_check_with_a_fix(tmp_path: Path) -> None:
    env = {
        "REDIS_URL": "redis://127.0.0.1:1/0",
        "DOCKER_HOST": "tcp://127.0.0.1:1",
    }
    result = agents("doctor", env=env, cwd=tmp_path)
    assert result.returncode == 1
    failed = {
        line.split()[1]: line for line in result.stdout.splitlines() if line.startswith("FAIL")
    }
    assert set(failed) >= {"redis", "docker", "slack", "model", "forge"}
    for line in failed.values():
        assert "-> fix: " in line
    assert "check(s) failed" in result.stdout.splitlines()[-1]


def test_doctor_reports_a_malformed_setting(tmp_path: Path) -> None:
    result = agents("doctor", env={"AGENTS_MAX_TURNS": "abc"}, cwd=tmp_path)
    assert result.returncode == 1
    assert any(
        line.startswith("FAIL settings (worker)") and "AGENTS_MAX_TURNS" in line
        for line in result.stdout.splitlines()
    )


def test_doctor_accepts_well_formed_tokens_without_printing_them(tmp_path: Path) -> None:
    env = {
        "SLACK_BOT_TOKEN": "xoxb-secret-bot",
        "SLACK_APP_TOKEN": "xapp-secret-app",
        "SLACK_API_URL": "http://127.0.0.1:1/api/",
        "ANTHROPIC_API_KEY": "sk-ant-secret-key",
        "GITHUB_TOKEN": "ghp_secret_token",
    }
    result = agents("doctor", env=env, cwd=tmp_path)
    lines = result.stdout.splitlines()
    assert any(line.startswith("OK   slack bot token") for line in lines)
    assert any(line.startswith("OK   slack mode") for line in lines)
    assert any(line.startswith("SKIP slack auth.test") for line in lines)
    assert any(line.startswith("OK   model key") for line in lines)
    assert any(line.startswith("OK   forge token") for line in lines)
    assert "secret" not in result.stdout + result.stderr


@pytest.mark.redis
def test_status_lists_runs_from_real_redis(tmp_path: Path) -> None:
    import redis

    from runs.record import RunStatus
    from runs.store import RunStore
    from tests.conftest import TEST_REDIS_URL, real_redis

    conn = real_redis()
    try:
        store = RunStore(conn)
        running = store.create(requester="U1", repo="acme/api", request="a")
        store.transition(running.id, RunStatus.RUNNING, by="w")
        store.create(requester="U2", repo="acme/web", request="b")
        done = store.create(requester="U3", repo="acme/cli", request="c")
        store.transition(done.id, RunStatus.FAILED, by="w", reason="boom")
        result = agents("status", env={"REDIS_URL": TEST_REDIS_URL}, cwd=tmp_path)
    finally:
        conn.flushdb()
        conn.close()
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "runs: queued 1, running 1, failed 1" in out
    assert "#1 acme/api step=starting" in out
    assert "1. #2 acme/web by U2" in out
    assert "#3 acme/cli failed: boom" in out
    assert isinstance(redis.Redis, type)


def test_status_without_redis_says_how_to_fix(tmp_path: Path) -> None:
    result = agents("status", env={"REDIS_URL": "redis://127.0.0.1:1/0"}, cwd=tmp_path)
    assert result.returncode == 1
    assert "cannot reach Redis" in result.stdout
    assert "REDIS_URL" in result.stdout


def test_run_with_a_repo_that_is_neither_path_nor_name(tmp_path: Path) -> None:
    env = {"AGENTS_MODEL_BACKEND": "replay", "AGENTS_FORGE": "local"}
    result = agents("run", "do it", "--repo", "not-a-repo", env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert "neither a directory nor owner/name" in result.stderr
    assert "Traceback" not in result.stderr
