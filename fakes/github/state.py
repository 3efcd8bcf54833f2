"""What the fake GitHub knows: its repositories, pull requests, checks, the App, faults.

Plain data, guarded by one lock (:attr:`GitHubState.lock`): the REST handlers
(:mod:`fakes.github.rest`) change it, the payloads (:mod:`fakes.github.payloads`) show
it as JSON, and the server (:mod:`fakes.github.server`) lets a test set it up.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fakes.github import git as fakegit


def now() -> str:
    """A timestamp as GitHub writes them: ``2011-01-26T19:01:12Z``."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake saw it. The ``Authorization`` header is not kept."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    headers: dict[str, str]
    authorized: bool
    status: int
    #: Which credential it carried: ``token``, ``jwt``, ``installation-<n>`` (the n-th
    #: installation token minted, from 1), or ``""`` (none that the fake accepts).
    credential: str = ""
    #: The JSON the fake answered with (``None`` for git's transport): what the contract
    #: tests check against GitHub's OpenAPI description.
    response: Any = None


@dataclass
class Fault:
    method: str
    pattern: re.Pattern[str]
    status: int
    remaining: int
    after: bool
    retry_after: float | None
    message: str


@dataclass
class App:
    """A GitHub App installed on every repository of the fake."""

    app_id: int
    public_key: Any
    installation_id: int
    lifetime: timedelta
    clock: Callable[[], datetime]
    #: token -> (n, expires_at), n counting from 1.
    tokens: dict[str, tuple[int, datetime]] = field(default_factory=dict)


@dataclass
class Pull:
    """A pull request; ``head_sha`` is where the head was when it was last read or merged."""

    id: int
    number: int
    title: str
    body: str | None
    draft: bool
    head_ref: str
    head_sha: str
    base_ref: str
    state: str = "open"
    merged_at: str | None = None
    merge_commit_sha: str | None = None
    created_at: str = field(default_factory=now)
    updated_at: str = field(default_factory=now)
    closed_at: str | None = None
    #: Where the base branch was when it was opened: the diff the page shows is
    #: ``base_sha...head``, merged or not.
    base_sha: str | None = None
    #: Reviews posted on it: (id, event, body, submitted_at), oldest first.
    reviews: list[tuple[int, str, str, str]] = field(default_factory=list)
    #: The line comments of each review submitted on it (review id -> ``review-comment``
    #: JSON, in order), as ``GET .../reviews/{id}/comments`` lists them.
    review_comments: dict[int, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def node_id(self) -> str:
        return f"PR_kwDO{self.id}"


@dataclass
class Repo:
    full_name: str
    id: int
    default_branch: str
    bare: Path | None
    private: bool
    created_at: str = field(default_factory=now)
    branches: dict[str, str] = field(default_factory=dict)
    pulls: list[Pull] = field(default_factory=list)
    check_runs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    statuses: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    permissions: dict[str, str] = field(default_factory=dict)
    #: Issues opened through the fake (number -> title, body, author); they share
    #: numbers with the pull requests, as on GitHub.
    issues: dict[int, tuple[str, str, str]] = field(default_factory=dict)
    #: The conversation of each pull request or issue: comments as the API shows them.
    comments: dict[int, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def owner(self) -> str:
        return self.full_name.split("/")[0]

    def branch_sha(self, branch: str) -> str | None:
        """Where ``branch`` points: in the bare repository, or as set by the test."""
        if self.bare is None:
            return self.branches.get(branch)
        return fakegit.branch_sha(self.bare, branch)

    def pull(self, number: int) -> Pull | None:
        return self.pulls[number - 1] if 0 < number <= len(self.pulls) else None


class GitHubState:
    """Everything the fake serves. Hold :attr:`lock` around any access."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.lock = threading.RLock()
        self.base_url = "http://127.0.0.1"  # set by the server once it listens
        self.repos: dict[str, Repo] = {}
        self.faults: list[Fault] = []
        self.requests: list[RecordedRequest] = []
        self.app: App | None = None
        #: False: creating a draft PR fails with 422, as on plans without draft PRs.
        self.draft_prs = True
        self._ids = 1000
        #: Where webhooks go (:mod:`fakes.github.webhooks`), and events the API queued
        #: for after its answer.
        from fakes.github.webhooks import Webhooks

        self.webhooks = Webhooks()
        self.outbox: list[tuple[str, dict[str, Any]]] = []

    def next_id(self) -> int:
        with self.lock:
            self._ids += 1
            return self._ids

    def take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.remaining > 0 and fault.method == method and fault.pattern.search(path):
                    fault.remaining -= 1
                    return fault
        return None
