"""The forge interface the blueprint talks to, and the plain types it returns.

A forge is where branches are pushed and pull requests live: GitHub (:mod:`jobs.forge.github`)
or a local bare repository plus PR records (:mod:`jobs.forge.local`). Both speak this
protocol, so the publish, watch-CI and approve steps never know which one they drive.

Git transport (``remote_head``, ``fetch``, ``push``) is part of the protocol because it
needs the forge's credential: the forge hands it to that one git call only, and it is
never written to the workspace.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

#: What a whole set of checks on one commit adds up to. ``none``: nothing reported (yet).
CheckState = Literal["pending", "success", "failure", "none"]

#: One check, normalised. ``neutral`` covers GitHub's neutral and skipped conclusions.
RunState = Literal["pending", "success", "failure", "neutral"]

#: GitHub's collaborator permission levels (the REST ``permission`` field).
Permission = Literal["admin", "write", "read", "none"]

MergeMethod = Literal["merge", "squash", "rebase"]

PERMISSION_RANK: dict[str, int] = {"none": 0, "read": 1, "write": 2, "admin": 3}

#: The most line comments of one review a forge reads (a review is feedback, not a log).
MAX_LINE_COMMENTS = 50

_NEUTRAL_CONCLUSIONS = frozenset({"neutral", "skipped"})


def can_write(permission: str) -> bool:
    """True for ``write`` and ``admin`` (who may approve and merge)."""
    return PERMISSION_RANK.get(permission, 0) >= PERMISSION_RANK["write"]


def normalise_permission(raw: str | None) -> Permission:
    """Map GitHub's permission strings (including ``maintain`` and ``triage``) onto four."""
    value = (raw or "none").lower()
    if value == "admin":
        return "admin"
    if value in ("write", "maintain", "push"):
        return "write"
    if value in ("read", "triage", "pull"):
        return "read"
    return "none"


class PullRequest(BaseModel):
    """A pull request as the blueprint sees it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    repo: str
    number: int
    url: str
    branch: str
    base: str
    title: str
    body: str
    draft: bool
    state: Literal["open", "closed"]
    merged: bool
    head_sha: str
    merge_sha: str | None = None


class CheckRun(BaseModel):
    """One check run or one commit status, flattened to what a thread needs to show."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    kind: Literal["check_run", "status"] = "check_run"
    state: RunState
    conclusion: str | None = None
    url: str | None = None
    summary: str | None = None

    @classmethod
    def from_check_run(
        cls,
        name: str,
        status: str,
        conclusion: str | None,
        url: str | None = None,
        summary: str | None = None,
    ) -> CheckRun:
        """Normalise GitHub's (``status``, ``conclusion``) pair."""
        state: RunState
        if status != "completed":
            state = "pending"
        elif conclusion == "success":
            state = "success"
        elif conclusion in _NEUTRAL_CONCLUSIONS:
            state = "neutral"
        else:  # failure, timed_out, cancelled, action_required, stale, or unknown
            state = "failure"
        return cls(
            name=name,
            kind="check_run",
            state=state,
            conclusion=conclusion,
            url=url,
            summary=_bounded(summary),
        )

    @classmethod
    def from_status(
        cls, context: str, state: str, url: str | None = None, description: str | None = None
    ) -> CheckRun:
        """Normalise a commit status (``pending``, ``success``, ``failure``, ``error``)."""
        mapped: RunState = (
            "success" if state == "success" else "pending" if state == "pending" else "failure"
        )
        return cls(
            name=context,
            kind="status",
            state=mapped,
            conclusion=state,
            url=url,
            summary=_bounded(description),
        )


class CheckSummary(BaseModel):
    """Every check and status on one commit, and what they add up to."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sha: str
    state: CheckState
    runs: list[CheckRun]
    failing: list[CheckRun]

    @classmethod
    def of(cls, sha: str, runs: Sequence[CheckRun]) -> CheckSummary:
        """Pending wins over failure (the picture is not final yet), failure over success."""
        states = {run.state for run in runs}
        state: CheckState
        if not runs:
            state = "none"
        elif "pending" in states:
            state = "pending"
        elif "failure" in states:
            state = "failure"
        else:
            state = "success"
        failing = [run for run in runs if run.state == "failure"]
        return cls(sha=sha, state=state, runs=list(runs), failing=failing)

    @property
    def done(self) -> bool:
        return self.state in ("success", "failure")


class LineComment(BaseModel):
    """One line comment of a pull request review: where it is, and what it says."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str
    line: int | None
    body: str


def _bounded(text: str | None, limit: int = 2000) -> str | None:
    if text is None or len(text) <= limit:
        return text
    suffix = "\n... (truncated)"
    return text[: limit - len(suffix)] + suffix


@runtime_checkable
class Forge(Protocol):
    """Branches, pull requests, checks and permissions on one forge.

    ``repo`` is always ``owner/name``. Every method is safe to call again after a crash:
    reads are reads, and writes check the current state first.
    """

    kind: str

    def default_branch(self, repo: str) -> str: ...

    def clone_url(self, repo: str) -> str:
        """The URL git fetches from; it never carries a credential."""
        ...

    def remote_head(self, repo: str, branch: str) -> str | None:
        """The commit ``branch`` points at on the forge, or None if it does not exist."""
        ...

    def fetch(self, repo: str, workdir: Path, refspecs: Sequence[str]) -> None:
        """Fetch ``refspecs`` (refs or commit ids) from the forge into ``workdir``."""
        ...

    def push(self, repo: str, workdir: Path, sha: str, branch: str) -> None:
        """Push commit ``sha`` to ``branch``. Never forced: a moved branch is rejected."""
        ...

    def find_pr(self, repo: str, branch: str) -> PullRequest | None:
        """The open pull request whose head is ``branch``, if any."""
        ...

    def get_pr(self, repo: str, number: int) -> PullRequest: ...

    def create_pr(
        self, repo: str, *, branch: str, base: str, title: str, body: str, draft: bool
    ) -> PullRequest:
        """Open a pull request; if one is already open for ``branch``, return it instead."""
        ...

    def update_pr_body(self, repo: str, number: int, body: str) -> PullRequest: ...

    def mark_ready(self, repo: str, number: int) -> PullRequest:
        """Take the pull request out of draft. A no-op if it is not a draft."""
        ...

    def post_review(self, repo: str, number: int, body: str) -> None:
        """Add a review that comments (neither approves nor requests changes)."""
        ...

    def merge(
        self, repo: str, number: int, *, method: MergeMethod = "squash", sha: str | None = None
    ) -> PullRequest:
        """Merge into the base branch. A no-op if already merged. ``sha``: expected head."""
        ...

    def checks(self, repo: str, sha: str) -> CheckSummary:
        """Check runs and commit statuses on ``sha``."""
        ...

    def comment(self, repo: str, number: int, body: str) -> None:
        """Add a comment to the pull request's conversation (an answer on GitHub)."""
        ...

    def review_line_comments(self, repo: str, number: int, review_id: int) -> list[LineComment]:
        """The line comments of review ``review_id`` on the pull request, in order (at
        most :data:`MAX_LINE_COMMENTS`)."""
        ...

    def ci_configured(self, repo: str) -> bool:
        """False only when the forge knows ``repo`` has no CI at all, so watching a
        pushed head would only wait for the settle time to pass."""
        ...

    def permission(self, repo: str, login: str) -> Permission:
        """``login``'s permission on ``repo`` (``none`` for strangers)."""
        ...

    def close(self) -> None: ...
