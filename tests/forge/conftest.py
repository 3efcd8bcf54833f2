"""Fixtures for the forge suite: a sample repository, a local forge, a fake GitHub."""

from __future__ import annotations

import itertools
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fakes.github.server import FakeGitHub
from jobs.forge.github import GitHubForge
from jobs.forge.local import LocalForge
from jobs.forge.retry import ForgeRetry

REPO = "acme/api"
TOKEN = "ghs_fakeTOKEN0123456789abcdefXYZ"
#: Bytes that are not valid UTF-8 and have NULs: git must carry them as a binary patch.
LOGO = bytes(range(256)) * 8

Edit = Callable[[Path], None]
MakePatch = Callable[[str, Edit], bytes]


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture(scope="session")
def sample_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("sample")
    (src / "app").mkdir(parents=True)
    (src / "app" / "client.py").write_text("RETRIES = 3\n\n\ndef fetch():\n    return RETRIES\n")
    (src / "docs").mkdir()
    (src / "docs" / "retries.txt").write_text("".join(f"line {i}\n" for i in range(40)))
    (src / "README.md").write_text("# api\n")
    return src


@pytest.fixture(scope="session")
def template_forge(tmp_path_factory: pytest.TempPathFactory, sample_source: Path) -> Path:
    """A local forge holding the sample repository, built once and copied per test."""
    root = tmp_path_factory.mktemp("template") / "forge"
    LocalForge(root).create_repo(REPO, source=sample_source)
    return root


@pytest.fixture
def local_forge(tmp_path: Path, template_forge: Path) -> LocalForge:
    shutil.copytree(template_forge, tmp_path / "forge", symlinks=True)
    return LocalForge(tmp_path / "forge")


@pytest.fixture
def bare(local_forge: LocalForge) -> Path:
    return local_forge.repo_path(REPO)


@pytest.fixture
def base_commit(bare: Path) -> str:
    return git(bare, "rev-parse", "main")


_patches: dict[tuple[str, str], bytes] = {}


@pytest.fixture
def make_patch(tmp_path: Path, bare: Path) -> MakePatch:
    """What a sandbox exports: ``git diff --binary`` from ``start`` after ``edit``.

    Every test's repository is a copy of one template, so patches against its commits
    are the same in every test and are made once.
    """
    counter = itertools.count()

    def make(start: str, edit: Edit) -> bytes:
        key = (start, edit.__qualname__)
        if key not in _patches:
            _patches[key] = _make(start, edit)
        return _patches[key]

    def _make(start: str, edit: Edit) -> bytes:
        work = tmp_path / f"sandbox-{next(counter)}"
        git(tmp_path, "clone", "-q", str(bare), str(work))
        git(work, "checkout", "-q", "--detach", start)
        edit(work)
        git(work, "add", "--all")
        return subprocess.run(
            ["git", "diff", "--cached", "--binary", "-M", start],
            cwd=work,
            check=True,
            capture_output=True,
        ).stdout

    return make


def first_change(work: Path) -> None:
    """Edit a file, add a binary file, rename a file, add an executable and a symlink."""
    client = work / "app" / "client.py"
    client.write_text(client.read_text().replace("RETRIES = 3", "RETRIES = int(env('N', 3))"))
    (work / "assets").mkdir()
    (work / "assets" / "logo.bin").write_bytes(LOGO)
    (work / "docs" / "retries.txt").rename(work / "docs" / "retry-limit.txt")
    (work / "run.sh").write_text("#!/bin/sh\nexec python -m app\n")
    (work / "run.sh").chmod(0o755)
    (work / "docs" / "latest.txt").symlink_to("retry-limit.txt")


def second_change(work: Path) -> None:
    (work / "app" / "config.py").write_text("MAX_RETRIES = 3\n")


@pytest.fixture
def fake_github(bare: Path) -> Iterator[FakeGitHub]:
    with FakeGitHub(TOKEN) as fake:
        fake.add_repo(REPO, bare=bare)
        yield fake


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def github_forge(fake_github: FakeGitHub, sleeps: list[float]) -> Iterator[GitHubForge]:
    policy = ForgeRetry(attempts=4, initial_delay=0.5, sleep=sleeps.append)
    with GitHubForge(TOKEN, base_url=fake_github.base_url, retry=policy, throttle=False) as forge:
        yield forge
