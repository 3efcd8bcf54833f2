"""What the fake GitHub does to its bare repositories, with the git CLI directly.

It shares no code with the product's git helpers (``jobs.forge.git``), so a bug there
cannot hide behind an agreeing fake: the fake merges the way GitHub's merge button does,
and reads branches the way any git client would.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

#: Who GitHub's merge button commits as.
MERGER = ("GitHub", "noreply@github.com")


class MergeConflict(Exception):
    """The head does not merge cleanly into the base, or the base moved meanwhile."""


def _git(repo: Path, *args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), *args],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    if done.returncode != 0:
        raise MergeConflict(done.stderr.strip() or done.stdout.strip())
    return done.stdout.strip()


def branch_sha(bare: Path, branch: str) -> str | None:
    """Where ``branch`` points, or None when there is no such branch."""
    done = subprocess.run(
        ["git", "-C", str(bare), "rev-parse", "--verify", "-q", f"refs/heads/{branch}"],
        capture_output=True,
        text=True,
        check=False,
    )
    return (done.stdout.strip() or None) if done.returncode == 0 else None


def merge(bare: Path, *, base: str, head: str, method: str, message: str) -> str:
    """Merge commit ``head`` into branch ``base`` of ``bare``: a two-parent merge commit
    (``merge``) or one commit with the merged tree (``squash``); the new base's sha."""
    if method not in ("merge", "squash"):
        raise MergeConflict(f"merge method {method!r} is not supported here")
    name, email = MERGER
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": name,
        "GIT_AUTHOR_EMAIL": email,
        "GIT_COMMITTER_NAME": name,
        "GIT_COMMITTER_EMAIL": email,
    }
    old = _git(bare, "rev-parse", "--verify", f"refs/heads/{base}^{{commit}}")
    tree = _git(bare, "merge-tree", "--write-tree", old, head).splitlines()[0]
    parents = ["-p", old] + (["-p", head] if method == "merge" else [])
    new = subprocess.run(
        ["git", "-C", str(bare), "commit-tree", tree, *parents, "-F", "-"],
        input=message,
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    if new.returncode != 0:
        raise MergeConflict(new.stderr.strip())
    _git(bare, "update-ref", f"refs/heads/{base}", new.stdout.strip(), old)
    return new.stdout.strip()


def diff(bare: Path, base: str, head: str, limit: int) -> str:
    """``git diff base...head`` (what the pull request changes since it forked), at most
    ``limit`` bytes of it; empty when either commit is unknown."""
    proc = subprocess.Popen(
        ["git", "-C", str(bare), "diff", "--no-color", "--no-ext-diff", f"{base}...{head}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    try:
        out = proc.stdout.read(limit + 1)
    finally:
        proc.stdout.close()
        proc.kill()
        proc.wait()
    return out.decode("utf-8", errors="replace")
