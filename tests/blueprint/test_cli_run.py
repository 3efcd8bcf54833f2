"""``agents run``: one request end to end from the terminal, as users run it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.blueprint.conftest import CLEAN_REQUEST, ROOT, SAMPLE

TRANSCRIPTS = ROOT / "examples" / "transcripts" / "blueprint"
SETTING_PREFIXES = ("AGENTS_", "SLACK_", "ANTHROPIC_", "GITHUB_", "REDIS_")


def agents_run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(SETTING_PREFIXES)}
    env.update(
        PYTHONPATH=str(ROOT),
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        AGENTS_CACHE_DIR=str(tmp_path / "cache"),
        AGENTS_CI_TIMEOUT_SECONDS="0",
    )
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "run", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_a_request_from_the_terminal_ends_with_an_open_pr(tmp_path: Path) -> None:
    result = agents_run(
        tmp_path,
        CLEAN_REQUEST,
        "--repo", str(SAMPLE),
        "--name", "acme/retrying",
        "--model", f"replay:{TRANSCRIPTS}",
        "--sandbox", "local",
        "--forge", "local",
        "--forge-dir", str(tmp_path / "forge"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    last = result.stdout.rsplit("#1 acme/retrying:", 1)[1]
    assert last.splitlines()[0] == " awaiting decision"
    assert "[x] prepare  [x] agent  [x] checks  [x] review  [x] publish  [x] watch_ci" in last
    pr = tmp_path / "forge" / "acme" / "retrying.forge" / "pulls" / "1.json"
    assert f"PR: {pr.as_uri()}" in last
    assert "actions: approve, rework, cancel" in last
    # The progress shows the thread's view at each step, too.
    assert "[x] prepare  [>] agent" in result.stdout


def test_no_pr_means_a_failing_exit(tmp_path: Path) -> None:
    result = agents_run(
        tmp_path,
        "a request nobody recorded",
        "--repo", str(SAMPLE),
        "--model", f"replay:{TRANSCRIPTS}",
        "--sandbox", "local",
        "--forge", "local",
        "--forge-dir", str(tmp_path / "forge"),
    )  # fmt: skip
    assert result.returncode == 1
    assert ": failed" in result.stdout
    assert "error: the agent stopped (transcript_invalid): no transcript in" in result.stdout
    assert "Traceback" not in result.stderr


def test_a_malformed_model_flag_is_a_usage_error(tmp_path: Path) -> None:
    result = agents_run(tmp_path, "x", "--repo", "acme/api", "--model", "gpt")
    assert result.returncode == 2
    assert "--model must be `anthropic` or `replay:PATH`" in result.stderr
