"""The commands, as users run them: ``agents run`` twice on a repository with a setup
(the second run's thread says its environment was reused), and ``agents env``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sandboxes.env_images import EnvEngine, EnvImage
from tests.blueprint.conftest import CLEAN_REQUEST, ROOT
from tests.blueprint.test_cli_run import TRANSCRIPTS
from tests.environments.conftest import env_repo

pytestmark = [pytest.mark.docker, pytest.mark.slow]

SETTING_PREFIXES = ("AGENTS_", "SLACK_", "ANTHROPIC_", "GITHUB_", "REDIS_")


def agents(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(SETTING_PREFIXES)}
    env.update(
        PYTHONPATH=str(ROOT),
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        AGENTS_CACHE_DIR=str(tmp_path / "cache"),
        AGENTS_CI_TIMEOUT_SECONDS="0",
        AGENTS_FORGE="local",
        AGENTS_LOCAL_FORGE_DIR=str(tmp_path / "forge"),
    )
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def last_view(stdout: str) -> str:
    return stdout.rsplit("acme/retrying: ", 1)[1]


def test_agents_run_twice_reuses_the_environment_and_env_lists_and_removes_it(
    tmp_path: Path, wheelhouse: Path, engine: EnvEngine, env_owners: set[str]
) -> None:
    source = env_repo(tmp_path / "src", wheelhouse)
    before = {image.id for image in engine.images()}

    def made() -> list[EnvImage]:
        """acme/retrying's images made since the test began: the runs' own, as no test
        outside tests/environments/ (one worker, one after another) finishes one."""
        found = [i for i in engine.images() if i.repo == "acme/retrying" and i.id not in before]
        env_owners.update(i.owner for i in found)  # removed afterwards, whatever happens
        return found

    run = ("run", CLEAN_REQUEST, "--repo", str(source), "--name", "acme/retrying",
           "--model", f"replay:{TRANSCRIPTS}", "--sandbox", "docker")  # fmt: skip

    first = agents(tmp_path, *run)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    [image] = made()
    assert f"environment {image.short_key} built in" in last_view(first.stdout)

    second = agents(tmp_path, *run)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    view = last_view(second.stdout)
    assert view.startswith("awaiting decision")
    assert f"environment {image.short_key} reused (built " in view
    assert [i.id for i in made()] == [image.id]

    built = agents(tmp_path, "env", "build", str(source), "--name", "acme/retrying")
    assert built.returncode == 0, built.stderr
    assert f"environment {image.short_key} of acme/retrying at {image.commit[:12]}" in built.stdout
    assert "(reused)" in built.stdout

    listed = agents(tmp_path, "env", "ls")
    assert listed.returncode == 0, listed.stderr
    [row] = [line for line in listed.stdout.splitlines() if image.short_key in line]
    assert "acme/retrying" in row
    assert "requirements.txt" in row

    removed = agents(tmp_path, "env", "rm", "--repo", "acme/retrying")
    assert removed.returncode == 0, removed.stdout + removed.stderr
    assert f"removed {image.short_key} (acme/retrying)" in removed.stdout
    assert made() == []
