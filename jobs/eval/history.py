"""Tasks from a repository's own history: commits that change both source and tests.

For each such commit (newest first, on the default branch's first-parent line, merges
left out): the task text is the commit's message, or its pull request's title and
body when the forge knows one; the base is its parent; the hidden tests are its
changes to test files (``test_patch``) and the true change is the rest (``patch``,
what ``--model oracle`` applies). Which tests fail before and pass after is found
later, by running them (:mod:`jobs.eval.hidden`).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Iterator

from jobs.eval.tasks import EvalTask
from jobs.forge.protocol import PullRequest
from sandboxes.cache import RepoCache

#: Commits looked at before giving up on finding N qualifying ones.
MAX_COMMITS_SCANNED = 2000
#: A commit whose diff is larger is skipped: a task is a focused change.
MAX_PATCH_BYTES = 1024 * 1024
#: Extensions that make a non-test file "source" (a docs-only change is not a task).
CODE_EXTENSIONS = frozenset(
    {".py", ".pyx", ".js", ".jsx", ".ts", ".tsx", ".go", ".rs", ".rb", ".java", ".kt"}
    | {".c", ".h", ".cc", ".cpp", ".hpp", ".cs", ".php", ".swift", ".scala", ".ex", ".exs"}
)
_TEST_DIRS = frozenset({"test", "tests", "testing", "__tests__", "spec"})
_TEST_NAME = re.compile(r"^(test_.*|.*_test|.*_tests|.*\.test|.*\.spec|conftest)\.[A-Za-z]+$")

PullLookup = Callable[[str, str], PullRequest | None]


def is_test_file(path: str) -> bool:
    """Tests by the usual conventions: a ``tests/`` directory, ``test_*.py``,
    ``*_test.go``, ``*.spec.ts``, ``conftest.py``."""
    parts = path.split("/")
    return any(part in _TEST_DIRS for part in parts[:-1]) or bool(_TEST_NAME.match(parts[-1]))


def is_source_file(path: str) -> bool:
    return not is_test_file(path) and posixpath.splitext(path)[1] in CODE_EXTENSIONS


def _lines(raw: bytes) -> list[str]:
    return [line for line in raw.decode("utf-8", errors="replace").splitlines() if line]


def _commits(cache: RepoCache, url: str, branch: str) -> Iterator[tuple[str, str]]:
    """``(commit, parent)`` on ``branch``'s first-parent line, newest first, no merges."""
    out = cache.git_output(
        url,
        [
            "log",
            "--first-parent",
            "--no-merges",
            f"--max-count={MAX_COMMITS_SCANNED}",
            "--format=%H %P",
            f"refs/heads/{branch}",
            "--",
        ],
    )
    for line in _lines(out):
        ids = line.split()
        if len(ids) == 2:  # a root commit has no parent to be the base
            yield ids[0], ids[1]


def _diff(cache: RepoCache, url: str, parent: str, commit: str, paths: list[str]) -> str:
    raw = cache.git_output(
        url, ["diff", "--no-color", "--no-ext-diff", "--binary", parent, commit, "--", *paths]
    )
    return raw.decode("utf-8", errors="replace")


def commit_text(cache: RepoCache, url: str, commit: str) -> str:
    return cache.git_output(url, ["show", "-s", "--format=%B", commit]).decode(
        "utf-8", errors="replace"
    )


def task_text(message: str, pull: PullRequest | None) -> str:
    """The pull request's title and body when there is one, else the commit message."""
    if pull is not None:
        return f"{pull.title.strip()}\n\n{pull.body.strip()}".strip()
    return message.strip()


def history_tasks(
    cache: RepoCache,
    url: str,
    repo: str,
    branch: str,
    count: int,
    *,
    pull_for: PullLookup | None = None,
) -> list[EvalTask]:
    """Up to ``count`` tasks from ``repo``'s history (its mirror must exist)."""
    tasks: list[EvalTask] = []
    name = repo.split("/")[-1]
    for commit, parent in _commits(cache, url, branch):
        changed = _lines(
            cache.git_output(url, ["diff", "--name-only", "--no-renames", parent, commit])
        )
        tests = sorted(path for path in changed if is_test_file(path))
        others = sorted(path for path in changed if not is_test_file(path))
        if not tests or not any(is_source_file(path) for path in others):
            continue
        test_patch = _diff(cache, url, parent, commit, tests)
        patch = _diff(cache, url, parent, commit, others)
        if len(test_patch) + len(patch) > MAX_PATCH_BYTES or "GIT binary patch" in patch:
            continue
        message = commit_text(cache, url, commit)
        pull = pull_for(repo, commit) if pull_for is not None else None
        text = task_text(message, pull)
        if not text:
            continue
        tasks.append(
            EvalTask(
                instance_id=f"{name}-{commit[:12]}",
                repo=repo,
                base_commit=parent,
                commit=commit,
                problem_statement=text,
                test_patch=test_patch,
                patch=patch,
                origin="history",
            )
        )
        if len(tasks) >= count:
            break
    return tasks
