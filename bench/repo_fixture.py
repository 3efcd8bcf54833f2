"""A synthetic repository shaped like a mid-sized project, for the benchmarks."""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

GIT_ENV = {
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@localhost",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@localhost",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_CONFIG_NOSYSTEM": "1",
    "PATH": "/usr/local/bin:/usr/bin:/bin",
}


def make_repo(path: Path, files: int = 5000, seed: int = 7) -> str:
    """Create a git repository with ``files`` source-like files; return the commit id."""
    rng = random.Random(seed)
    path.mkdir(parents=True)
    for i in range(files):
        package = path / f"pkg{i % 50:02d}" / f"mod{i % 7}"
        package.mkdir(parents=True, exist_ok=True)
        lines = [f"def f{i}_{n}(x):\n    return x * {rng.randint(1, 999)}\n" for n in range(30)]
        (package / f"file{i:05d}.py").write_text("".join(lines))
    subprocess.run(["git", "init", "-q", str(path)], check=True, env=GIT_ENV)
    subprocess.run(["git", "-C", str(path), "add", "-A"], check=True, env=GIT_ENV)
    subprocess.run(["git", "-C", str(path), "commit", "-qm", "bench repo"], check=True, env=GIT_ENV)
    return _head(path)


def commit_change(path: Path, text: str) -> str:
    """Commit a one-file change, as a new commit on the default branch would be."""
    (path / "bench-change.txt").write_text(text)
    subprocess.run(["git", "-C", str(path), "add", "-A"], check=True, env=GIT_ENV)
    subprocess.run(["git", "-C", str(path), "commit", "-qm", text], check=True, env=GIT_ENV)
    return _head(path)


def _head(path: Path) -> str:
    out = subprocess.run(
        ["git", "-C", str(path), "rev-parse", "HEAD"],
        check=True,
        env=GIT_ENV,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()
