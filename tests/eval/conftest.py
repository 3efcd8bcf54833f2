"""The fixture repository, and `agents eval` run as a user would: the real CLI, with
real RQ workers it starts, on the test Redis, with the local sandbox."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TEST_REDIS_URL, real_redis
from tests.eval import fixture

SECRET_PREFIXES = ("AGENTS_", "SLACK_", "ANTHROPIC_", "GITHUB_", "REDIS_", "DOCKER_TLS")


@dataclass
class Built:
    root: Path
    repo: Path
    commits: dict[str, str]

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(SECRET_PREFIXES)}
        env.update(
            # The local sandbox takes PATH from the worker: this interpreter (with pytest) first.
            PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            REDIS_URL=TEST_REDIS_URL,
            AGENTS_FORGE="local",
            AGENTS_LOCAL_FORGE_DIR=str(self.root / "forge"),
            AGENTS_CACHE_DIR=str(self.root / "cache"),
            AGENTS_SANDBOX_BACKEND="local",
            AGENTS_LOG_LEVEL="WARNING",
            AGENTS_QUEUE="eval-tests",
        )
        env.update(extra)
        return env

    def agents(self, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "cli.main", *args],
            env=self.env(**extra),
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    root = tmp_path_factory.mktemp("eval")
    repo, commits = fixture.build(root)
    client = real_redis()  # flushed: this module's evals start from nothing
    yield Built(root, repo, commits)
    client.flushdb()
    client.close()


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]
