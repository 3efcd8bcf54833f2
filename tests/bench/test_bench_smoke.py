"""``python -m bench --quick`` runs every benchmark and writes every figure's row.

A smoke test: a few samples of each, so a broken hop shows up before the real
benchmark is run. It asserts what the report contains, never how fast anything was.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cli.commands.demo import docker_ready
from tests.conftest import TEST_REDIS_URL, real_redis

ROOT = Path(__file__).resolve().parents[2]

ROWS = [
    "| ack latency |",
    "| mention → status message in thread |",
    "| `/agents status`, 1,000 runs in history |",
    "| … of which collect + render",
    "| prompt caching: share of input tokens served from cache |",
    "| prompt caching: cost with caching / cost without |",
    "| forge API calls per run's CI watch, with CI webhooks |",
    "| plan step: added wall time per run, share of a run without it |",
    "| plan step: added cost per run, share of a run without it (estimated) |",
    "| sandbox ready, cold |",
    "| sandbox ready, warm, new commit |",
    "| sandbox ready, warm |",
    "| sandbox ready with dependencies, warm environment |",
    "| sandbox claimed from the warm pool |",
    "| orchestration overhead (mention → awaiting decision, - model - checks) |",
    "| … whole run, mention → decision message |",
    "| Slack API calls per run (mention → approved) |",
    "| throughput |",
    "| Redis memory per run (record + events + RQ job + pointer) |",
]


@pytest.mark.redis
@pytest.mark.docker
@pytest.mark.slow
def test_every_figure_gets_a_row(tmp_path: Path) -> None:
    real_redis().close()  # skips (or fails under AGENTS_REQUIRE_SERVICES) without Redis
    if not docker_ready(os.environ.get("AGENTS_SANDBOX_IMAGE", "agents-sandbox:latest")):
        pytest.skip("no Docker engine with the sandbox image; run `make images`")
    out = tmp_path / "benchmarks.md"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--quick",
            "--sandbox",
            "docker",
            "--redis-url",
            TEST_REDIS_URL,
            "--out",
            str(out),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    report = out.read_text(encoding="utf-8")
    for row in ROWS:
        assert row in report, f"no row {row!r} in\n{report}"
    assert "not measured" not in report
    for heading in ("## Machine", "| CPU |", "| Docker |", "| Redis |", "| kernel |"):
        assert heading in report
