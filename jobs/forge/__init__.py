"""The forge layer: where branches are pushed and pull requests live.

The blueprint uses :func:`make_forge` once per job, then :func:`push_and_open_pr`,
:func:`poll_ci` and :func:`finish_pr` (in :mod:`jobs.forge.steps`) against the
:class:`Forge` protocol; GitHub and the embedded local forge are interchangeable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from jobs.forge.credentials import AppInstallation, GitHubCredentials, StaticToken
from jobs.forge.git import BOT_IDENTITY, Identity, branch_name, commit_message, run_marker
from jobs.forge.protocol import (
    CheckRun,
    CheckSummary,
    Forge,
    MergeMethod,
    Permission,
    PullRequest,
    can_write,
)
from jobs.forge.retry import ForgeRetry
from jobs.forge.steps import (
    CiOutcome,
    PublishRequest,
    PublishResult,
    finish_pr,
    may_approve,
    minimal_pr_body,
    poll_ci,
    push_and_open_pr,
)

__all__ = [
    "BOT_IDENTITY",
    "AppInstallation",
    "CheckRun",
    "CheckSummary",
    "CiOutcome",
    "Forge",
    "ForgeRetry",
    "GitHubCredentials",
    "Identity",
    "MergeMethod",
    "Permission",
    "PublishRequest",
    "PublishResult",
    "PullRequest",
    "StaticToken",
    "branch_name",
    "can_write",
    "commit_message",
    "finish_pr",
    "make_forge",
    "may_approve",
    "minimal_pr_body",
    "poll_ci",
    "push_and_open_pr",
    "run_marker",
]


def make_forge(
    kind: Literal["github", "local"],
    *,
    token: str | None = None,
    credentials: GitHubCredentials | None = None,
    github_url: str = "https://api.github.com",
    local_root: Path | None = None,
    retry: ForgeRetry | None = None,
) -> Forge:
    """The forge the worker settings ask for (``AGENTS_FORGE``).

    GitHub takes ``credentials`` (:mod:`jobs.forge.credentials`: a token, or a GitHub
    App's installation tokens) or a plain ``token``."""
    if kind == "github":
        if credentials is None:
            if not token:
                raise ValueError(
                    "GITHUB_TOKEN: required when AGENTS_FORGE=github "
                    "(or AGENTS_GITHUB_APP_ID and AGENTS_GITHUB_APP_PRIVATE_KEY)"
                )
            credentials = StaticToken(token)
        from jobs.forge.github import GitHubForge

        return GitHubForge(credentials=credentials, base_url=github_url, retry=retry)
    if kind == "local":
        if local_root is None:
            raise ValueError("the local forge needs a directory (local_root)")
        from jobs.forge.local import LocalForge

        return LocalForge(local_root)
    raise ValueError(f"unknown forge {kind!r}: expected github or local")
