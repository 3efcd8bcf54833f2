"""A small fake of GitHub's REST API, GraphQL mutations and git-over-HTTP, on 127.0.0.1.

Ships in the package so forge tests, end-to-end tests, the demo and the compose test can
all drive the real PyGithub client (and real git) without reaching GitHub::

    with FakeGitHub(token="t0ken") as fake:
        fake.add_repo("acme/api", bare=path_to_bare_repo)
        forge = GitHubForge("t0ken", base_url=fake.base_url, throttle=False)

It implements what :class:`jobs.forge.github.GitHubForge` calls: repository, pull
requests (list, create, read, edit, merge, comment, review, a review's line comments),
check runs, combined status, collaborator permission, the
``markPullRequestReadyForReview`` / ``convertPullRequestToDraft`` mutations, and git's
smart HTTP protocol through ``git http-backend`` for repositories added with a bare
repository (``clone_url`` points at ``/git/<owner>/<name>.git``).

Every request is recorded (:attr:`FakeGitHub.requests`), the API demands
``Authorization: token|Bearer <token>`` and git demands HTTP Basic with the token as
password (401 otherwise), and :meth:`FakeGitHub.fail_next` injects faults, including
"did it, then answered 502".

:meth:`FakeGitHub.enable_app` turns it into a GitHub App's view of GitHub: ``GET
/repos/{owner}/{repo}/installation`` and ``POST /app/installations/{id}/access_tokens``
demand the App's RS256 JWT (checked against its public key), and every other endpoint,
git included, then accepts only an unexpired installation token it minted (not the JWT,
not the static token).

Each pull request also has its web page at its ``html_url`` (:mod:`~fakes.github.web`,
rendered by :mod:`~fakes.github.pages`), whose comment box sends the signed
``issue_comment`` webhook (:mod:`~fakes.github.webhooks`), as github.com does.

The modules, one concern each: this one (what a test sets up and reads back),
:mod:`~fakes.github.routes` (HTTP: auth, faults, recording), :mod:`~fakes.github.auth`,
:mod:`~fakes.github.rest` (what each endpoint does), :mod:`~fakes.github.payloads` (the
JSON shapes, held to GitHub's OpenAPI description by the contract tests),
:mod:`~fakes.github.smart_http` (git) and :mod:`~fakes.github.state`.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Self

from fakes.github import payloads, webhooks
from fakes.github.payloads import APP_PERMISSIONS, BOT_LOGIN
from fakes.github.routes import Server
from fakes.github.state import App, Fault, GitHubState, Pull, RecordedRequest, Repo, now
from process.lifecycle import Lifecycle

__all__ = ["APP_PERMISSIONS", "BOT_LOGIN", "FakeGitHub", "RecordedRequest"]


class FakeGitHub(Lifecycle):
    """A threaded fake GitHub. Use as a context manager, or call start() and close()."""

    def __init__(self, token: str, *, host: str = "127.0.0.1") -> None:
        self.state = GitHubState(token)
        self._host = host
        self._server: Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------

    def start(self) -> Self:
        if self._server is None:
            server = Server((self._host, 0), self.state)
            self._server = server
            self.state.base_url = self.base_url
            self._thread = threading.Thread(
                target=server.serve_forever, name="fake-github", kwargs={"poll_interval": 0.01}
            )
            self._thread.start()
        return self

    def close(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        for conn in list(server.connections):
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        server.server_close()
        if self._thread is not None:
            self._thread.join()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeGitHub is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # -- test-facing state ------------------------------------------------------------

    @property
    def token(self) -> str:
        return self.state.token

    @property
    def draft_prs(self) -> bool:
        """False: creating a draft PR fails with 422, as on plans without draft PRs."""
        return self.state.draft_prs

    @draft_prs.setter
    def draft_prs(self, allowed: bool) -> None:
        self.state.draft_prs = allowed

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request so far, oldest first, with what was answered."""
        return self.state.requests

    def add_repo(
        self,
        full_name: str,
        *,
        bare: Path | None = None,
        default_branch: str = "main",
        private: bool = True,
    ) -> None:
        """Serve a repository; with ``bare``, git fetch/push go to that bare repository."""
        with self.state.lock:
            self.state.repos[full_name] = Repo(
                full_name=full_name,
                id=self.state.next_id(),
                default_branch=default_branch,
                bare=Path(bare) if bare is not None else None,
                private=private,
            )

    def enable_app(
        self,
        app_id: int,
        public_key: Any,
        *,
        installation_id: int = 4242,
        lifetime: timedelta = timedelta(hours=1),
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        """Authenticate as GitHub does for a GitHub App (see the module's docstring).

        ``public_key``: the App's (a ``cryptography`` public key, or PEM). Installation
        tokens expire ``lifetime`` after ``clock()`` (default: now), checked on ``clock``
        too, so a test moves time on by moving its clock. The App is installed on every
        repository, as ``installation_id``."""
        with self.state.lock:
            self.state.app = App(
                app_id,
                public_key,
                installation_id,
                lifetime,
                clock or (lambda: datetime.now(UTC)),
            )

    @property
    def minted_tokens(self) -> list[str]:
        """The installation tokens minted so far, oldest first."""
        with self.state.lock:
            app = self.state.app
            return [] if app is None else list(app.tokens)

    def set_branch(self, full_name: str, branch: str, sha: str) -> None:
        """Point a branch at a commit (for repositories without a bare repository)."""
        with self.state.lock:
            self.state.repos[full_name].branches[branch] = sha

    def set_check_runs(self, full_name: str, sha: str, runs: list[dict[str, Any]]) -> None:
        """Replace the check runs on ``sha``: dicts with ``name``, ``status``, ``conclusion``.

        ``output`` (``title``, ``summary``) and ``html_url`` are optional.
        """
        with self.state.lock:
            repo = self.state.repos[full_name]
            repo.check_runs[sha] = [payloads.check_run(self.state, repo, sha, r) for r in runs]

    def set_statuses(self, full_name: str, sha: str, statuses: list[dict[str, Any]]) -> None:
        """Replace the commit statuses on ``sha``: dicts with ``context`` and ``state``."""
        with self.state.lock:
            repo = self.state.repos[full_name]
            repo.statuses[sha] = [
                payloads.commit_status(self.state, repo, sha, s) for s in statuses
            ]

    def set_permission(self, full_name: str, login: str, permission: str) -> None:
        with self.state.lock:
            self.state.repos[full_name].permissions[login] = permission

    def fail_next(
        self,
        method: str,
        path: str,
        status: int = 502,
        *,
        count: int = 1,
        after: bool = False,
        retry_after: float | None = None,
        message: str = "injected fault",
    ) -> None:
        """Answer the next ``count`` requests matching ``method`` and regex ``path`` with
        ``status``. With ``after``, the request takes effect first (a lost response)."""
        fault = Fault(method.upper(), re.compile(path), status, count, after, retry_after, message)
        with self.state.lock:
            self.state.faults.append(fault)

    # -- webhooks, and what people do on GitHub that sends them ------------------------

    def deliver_to(self, url: str | None, secret: str | None) -> None:
        """Send webhooks to ``url`` (None: send none), signed with ``secret`` (None:
        unsigned)."""
        self.state.webhooks.url, self.state.webhooks.secret = url, secret

    @property
    def deliveries(self) -> list[webhooks.Delivery]:
        return self.state.webhooks.deliveries

    def redeliver(self, delivery_id: str) -> webhooks.Delivery:
        return self.state.webhooks.redeliver(delivery_id)

    def _send(self, event: str, make: Callable[[Repo], dict[str, Any]], repo: str) -> Any:
        with self.state.lock:
            payload = make(self.state.repos[repo])
        return self.state.webhooks.send(event, payload)

    def open_issue(self, full_name: str, title: str, body: str, login: str) -> int:
        """Open an issue (no event: the bot acts when it is labelled or mentioned)."""
        with self.state.lock:
            repo = self.state.repos[full_name]
            number = len(repo.pulls) + len(repo.issues) + 1
            repo.issues[number] = (title, body, login)
            return number

    def comment(self, full_name: str, number: int, login: str, body: str) -> Any:
        """``login`` comments on pull request or issue ``number``: ``issue_comment``."""
        return self._send(
            "issue_comment",
            lambda r: webhooks.comment_event(self.state, r, number, login, body),
            full_name,
        )

    def review_comment(
        self, full_name: str, number: int, login: str, body: str, path: str, line: int
    ) -> Any:
        """A comment on a line of the PR's diff: ``pull_request_review_comment``."""

        def make(repo: Repo) -> dict[str, Any]:
            pr = _pull(repo, number)
            return webhooks.review_comment_event(self.state, repo, pr, login, body, path, line)

        return self._send("pull_request_review_comment", make, full_name)

    def review(
        self,
        full_name: str,
        number: int,
        login: str,
        state: str,
        body: str,
        comments: list[tuple[str, int, str]] | None = None,
    ) -> Any:
        """A review submitted (``approved``, ``changes_requested``, ``commented``), with
        its line ``comments``: (path, line, body) each."""

        def make(repo: Repo) -> dict[str, Any]:
            pr = _pull(repo, number)
            return webhooks.review_event(self.state, repo, pr, login, state, body, comments)

        return self._send("pull_request_review", make, full_name)

    def label_issue(self, full_name: str, number: int, login: str, label: str) -> Any:
        return self._send(
            "issues",
            lambda r: webhooks.issue_event(self.state, r, number, login, label),
            full_name,
        )

    def close_pull(self, full_name: str, number: int, login: str) -> Any:
        """Close a pull request without merging: ``pull_request`` closed."""

        def make(repo: Repo) -> dict[str, Any]:
            pr = _pull(repo, number)
            pr.state, pr.closed_at = "closed", now()
            return webhooks.pull_closed_event(self.state, repo, pr, login)

        return self._send("pull_request", make, full_name)

    def complete_checks(self, full_name: str, sha: str, conclusion: str = "success") -> Any:
        """CI finished on ``sha``: one check run, then ``check_suite`` completed."""
        self.set_check_runs(
            full_name, sha, [{"name": "ci/test", "status": "completed", "conclusion": conclusion}]
        )
        return self._send(
            "check_suite",
            lambda r: webhooks.check_suite_event(self.state, r, sha, conclusion),
            full_name,
        )

    def pulls(self, full_name: str) -> list[dict[str, Any]]:
        """Every pull request of the repository, as the API would show it."""
        with self.state.lock:
            repo = self.state.repos[full_name]
            return [payloads.pull_request(self.state, repo, pr) for pr in repo.pulls]

    def reviews(self, full_name: str, number: int) -> list[str]:
        """The bodies of the reviews posted on a pull request, oldest first."""
        with self.state.lock:
            pr = self.state.repos[full_name].pull(number)
            return [] if pr is None else [body for _, _, body, _ in pr.reviews]

    def calls(self, method: str | None = None, path: str | None = None) -> list[RecordedRequest]:
        """Recorded requests, filtered by method and by regex search on the path."""
        with self.state.lock:
            return [
                r
                for r in self.state.requests
                if (method is None or r.method == method.upper())
                and (path is None or re.search(path, r.path))
            ]

    def api_calls(self) -> list[tuple[str, str]]:
        """(method, path) of every API request, git transport left out."""
        with self.state.lock:
            return [
                (r.method, r.path) for r in self.state.requests if not r.path.startswith("/git/")
            ]


def _pull(repo: Repo, number: int) -> Pull:
    pr = repo.pull(number)
    if pr is None:
        raise LookupError(f"{repo.full_name} has no pull request #{number}")
    return pr
