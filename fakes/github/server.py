"""A small fake of GitHub's REST API, GraphQL mutations and git-over-HTTP, on 127.0.0.1.

Ships in the package so forge tests, end-to-end tests, the demo and the compose test can
all drive the real PyGithub client (and real git) without reaching GitHub::

    with FakeGitHub(token="t0ken") as fake:
        fake.add_repo("acme/api", bare=path_to_bare_repo)
        forge = GitHubForge("t0ken", base_url=fake.base_url, throttle=False)

It implements what :class:`jobs.forge.github.GitHubForge` calls: repository, pull
requests (list, create, read, edit, merge), check runs, combined status, collaborator
permission, the ``markPullRequestReadyForReview`` / ``convertPullRequestToDraft``
mutations, and git's smart HTTP protocol through ``git http-backend`` for repositories
added with a bare repository (``clone_url`` points at ``/git/<owner>/<name>.git``).

Every request is recorded (:attr:`FakeGitHub.requests`), the API demands
``Authorization: token|Bearer <token>`` and git demands HTTP Basic with the token as
password (401 otherwise), and :meth:`FakeGitHub.fail_next` injects faults, including
"did it, then answered 502".

:meth:`FakeGitHub.enable_app` turns it into a GitHub App's view of GitHub: ``GET
/repos/{owner}/{repo}/installation`` and ``POST /app/installations/{id}/access_tokens``
demand the App's RS256 JWT (checked against its public key), and every other endpoint,
git included, then accepts only an unexpired installation token it minted (not the JWT,
not the static token).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import os
import re
import secrets
import socket
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qsl, unquote, urlsplit

from fakes.github import git as fakegit
from process.lifecycle import Lifecycle

log = logging.getLogger(__name__)

BOT_LOGIN = "agents-bot"

Response = tuple[int, Any, dict[str, str]]

#: The permissions docs/github.md asks a GitHub App for.
APP_PERMISSIONS = {
    "metadata": "read",
    "contents": "write",
    "pull_requests": "write",
    "checks": "read",
    "statuses": "read",
}


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


@dataclass
class _Fault:
    method: str
    pattern: re.Pattern[str]
    status: int
    remaining: int
    after: bool
    retry_after: float | None
    message: str


@dataclass
class _App:
    app_id: int
    public_key: Any
    installation_id: int
    lifetime: timedelta
    clock: Callable[[], datetime]
    #: token -> (n, expires_at), n counting from 1.
    tokens: dict[str, tuple[int, datetime]] = field(default_factory=dict)


@dataclass
class _Repo:
    full_name: str
    id: int
    default_branch: str
    bare: Path | None
    private: bool
    branches: dict[str, str] = field(default_factory=dict)
    pulls: list[dict[str, Any]] = field(default_factory=list)
    check_runs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    statuses: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    permissions: dict[str, str] = field(default_factory=dict)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Server(ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True
    fake: FakeGitHub


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.fake._connections.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.fake._connections.discard(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("fake github: %s", format % args)

    def do_GET(self) -> None:
        self.server.fake._serve(self)

    do_POST = do_PATCH = do_PUT = do_DELETE = do_GET


class FakeGitHub(Lifecycle):
    """A threaded fake GitHub. Use as a context manager, or call start() and close()."""

    def __init__(self, token: str, *, host: str = "127.0.0.1") -> None:
        self.token = token
        self._host = host
        self._lock = threading.RLock()
        self._repos: dict[str, _Repo] = {}
        self._faults: list[_Fault] = []
        self._ids = 1000
        self._connections: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.requests: list[RecordedRequest] = []
        #: False: creating a draft PR fails with 422, as on plans without draft PRs.
        self.draft_prs = True
        self._app: _App | None = None

    # -- lifecycle --------------------------------------------------------------------

    def start(self) -> Self:
        if self._server is None:
            server = _Server((self._host, 0), _Handler)
            server.fake = self
            self._server = server
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
        for conn in list(self._connections):
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

    def add_repo(
        self,
        full_name: str,
        *,
        bare: Path | None = None,
        default_branch: str = "main",
        private: bool = True,
    ) -> None:
        """Serve a repository; with ``bare``, git fetch/push go to that bare repository."""
        with self._lock:
            self._repos[full_name] = _Repo(
                full_name=full_name,
                id=self._next_id(),
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
        with self._lock:
            self._app = _App(
                app_id,
                public_key,
                installation_id,
                lifetime,
                clock or (lambda: datetime.now(UTC)),
            )

    @property
    def minted_tokens(self) -> list[str]:
        """The installation tokens minted so far, oldest first."""
        with self._lock:
            return [] if self._app is None else list(self._app.tokens)

    def set_branch(self, full_name: str, branch: str, sha: str) -> None:
        """Point a branch at a commit (for repositories without a bare repository)."""
        with self._lock:
            self._repos[full_name].branches[branch] = sha

    def set_check_runs(self, full_name: str, sha: str, runs: list[dict[str, Any]]) -> None:
        """Replace the check runs on ``sha``: dicts with ``name``, ``status``, ``conclusion``.

        ``output`` (``title``, ``summary``) and ``html_url`` are optional.
        """
        with self._lock:
            repo = self._repos[full_name]
            repo.check_runs[sha] = [self._check_run_json(repo, sha, run) for run in runs]

    def set_statuses(self, full_name: str, sha: str, statuses: list[dict[str, Any]]) -> None:
        """Replace the commit statuses on ``sha``: dicts with ``context`` and ``state``."""
        with self._lock:
            repo = self._repos[full_name]
            repo.statuses[sha] = [
                {
                    "id": self._next_id(),
                    "node_id": f"SC_{self._next_id()}",
                    "url": f"{self.base_url}/repos/{full_name}/statuses/{sha}",
                    "state": status["state"],
                    "context": status["context"],
                    "description": status.get("description"),
                    "target_url": status.get("target_url"),
                    "created_at": _now(),
                    "updated_at": _now(),
                }
                for status in statuses
            ]

    def set_permission(self, full_name: str, login: str, permission: str) -> None:
        with self._lock:
            self._repos[full_name].permissions[login] = permission

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
        with self._lock:
            self._faults.append(
                _Fault(method.upper(), re.compile(path), status, count, after, retry_after, message)
            )

    def pulls(self, full_name: str) -> list[dict[str, Any]]:
        """Every pull request of the repository, as the API would show it."""
        with self._lock:
            repo = self._repos[full_name]
            return [self._pull_json(repo, pr) for pr in repo.pulls]

    def calls(self, method: str | None = None, path: str | None = None) -> list[RecordedRequest]:
        """Recorded requests, filtered by method and by regex search on the path."""
        with self._lock:
            return [
                r
                for r in self.requests
                if (method is None or r.method == method.upper())
                and (path is None or re.search(path, r.path))
            ]

    def api_calls(self) -> list[tuple[str, str]]:
        """(method, path) of every API request, git transport left out."""
        with self._lock:
            return [(r.method, r.path) for r in self.requests if not r.path.startswith("/git/")]

    # -- serving ----------------------------------------------------------------------

    def _serve(self, handler: _Handler) -> None:
        url = urlsplit(handler.path)
        path, query = url.path, dict(parse_qsl(url.query))
        body = _read_body(handler)
        is_git = path.startswith("/git/")
        parsed: Any = None
        if body and not is_git:
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = None
        credential = self._credential(handler.headers.get("Authorization"), git=is_git)
        authorized = self._accepts(credential, path, is_git)
        method = handler.command.upper()

        def record(status: int) -> None:
            headers = {k: v for k, v in handler.headers.items() if k.lower() != "authorization"}
            with self._lock:
                self.requests.append(
                    RecordedRequest(
                        method, path, query, parsed, headers, authorized, status, credential
                    )
                )

        if not authorized:
            record(401)
            if is_git:
                _send(
                    handler,
                    401,
                    b"Authentication required\n",
                    "text/plain",
                    {"WWW-Authenticate": 'Basic realm="GitHub"'},
                )
            else:
                _send_json(handler, 401, {"message": "Bad credentials"})
            return
        fault = self._take_fault(method, path)
        if fault is not None and not fault.after:
            record(fault.status)
            self._send_fault(handler, fault, is_git)
            return
        if is_git:
            status, payload, content_type, headers = self._git(handler, path, url.query, body)
            record(status if fault is None else fault.status)
            if fault is not None:
                self._send_fault(handler, fault, is_git)
            else:
                _send(handler, status, payload, content_type, headers)
            return
        try:
            status, data, extra = self._api(method, path, query, parsed)
        except Exception:
            log.exception("fake github: %s %s failed", method, path)
            status, data, extra = 500, {"message": "fake github crashed"}, {}
        record(status if fault is None else fault.status)
        if fault is not None:
            self._send_fault(handler, fault, is_git)
        else:
            _send_json(handler, status, data, extra)

    def _credential(self, header: str | None, *, git: bool) -> str:
        """What the ``Authorization`` header carries, as :attr:`RecordedRequest.credential`."""
        if not header:
            return ""
        scheme, _, value = header.partition(" ")
        scheme = scheme.lower()
        if git:
            if scheme != "basic":
                return ""
            try:
                value = base64.b64decode(value, validate=True).decode().partition(":")[2]
            except ValueError:
                return ""
        elif scheme not in ("token", "bearer"):
            return ""
        app = self._app
        if app is None:
            return "token" if value == self.token else ""
        with self._lock:
            minted = app.tokens.get(value)
            if minted is not None:
                return f"installation-{minted[0]}" if minted[1] > app.clock() else ""
        if not git and scheme == "bearer" and self._valid_jwt(app, value):
            return "jwt"
        return ""

    @staticmethod
    def _valid_jwt(app: _App, value: str) -> bool:
        import jwt

        try:
            claims = jwt.decode(
                value,
                app.public_key,
                algorithms=["RS256"],
                options={"require": ["iat", "exp", "iss"]},
                leeway=0,
            )
        except jwt.PyJWTError:
            return False
        # GitHub refuses JWTs that live longer than 10 minutes.
        return str(claims["iss"]) == str(app.app_id) and 0 < claims["exp"] - claims["iat"] <= 660

    def _accepts(self, credential: str, path: str, git: bool) -> bool:
        if self._app is None:
            return credential == "token"
        app_endpoint = not git and (
            path.startswith("/app/") or re.fullmatch(r"/repos/[^/]+/[^/]+/installation", path)
        )
        return credential == "jwt" if app_endpoint else credential.startswith("installation-")

    def _take_fault(self, method: str, path: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.remaining > 0 and fault.method == method and fault.pattern.search(path):
                    fault.remaining -= 1
                    return fault
        return None

    @staticmethod
    def _send_fault(handler: _Handler, fault: _Fault, is_git: bool) -> None:
        headers = {} if fault.retry_after is None else {"Retry-After": f"{fault.retry_after:g}"}
        if is_git:
            _send(handler, fault.status, f"{fault.message}\n".encode(), "text/plain", headers)
        else:
            _send_json(handler, fault.status, {"message": fault.message}, headers)

    # -- git smart HTTP ---------------------------------------------------------------

    def _git(
        self, handler: _Handler, path: str, query: str, body: bytes
    ) -> tuple[int, bytes, str, dict[str, str]]:
        match = re.fullmatch(r"/git/([^/]+/[^/]+?)\.git(/.*)", path)
        repo = self._repos.get(match.group(1)) if match else None
        if match is None or repo is None or repo.bare is None:
            return 404, b"Repository not found\n", "text/plain", {}
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": str(repo.bare.parent),
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": f"/{repo.bare.name}{match.group(2)}",
            "REQUEST_METHOD": handler.command,
            "QUERY_STRING": query,
            "CONTENT_TYPE": handler.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_USER": "x-access-token",
            "REMOTE_ADDR": "127.0.0.1",
        }
        if handler.headers.get("Git-Protocol"):
            env["GIT_PROTOCOL"] = handler.headers["Git-Protocol"]
        if handler.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = handler.headers["Content-Encoding"]
        proc = subprocess.run(
            ["git", "http-backend"],
            input=body,
            env=env,
            capture_output=True,
            timeout=120,
            check=False,
        )
        raw = proc.stdout
        head, sep, payload = raw.partition(b"\r\n\r\n")
        if not sep:
            head, _, payload = raw.partition(b"\n\n")
        status, content_type, headers = 200, "application/octet-stream", {}
        for line in head.decode("latin-1").splitlines():
            key, _, value = line.partition(":")
            key, value = key.strip(), value.strip()
            if key.lower() == "status":
                status = int(value.split()[0])
            elif key.lower() == "content-type":
                content_type = value
            elif key:
                headers[key] = value
        if proc.returncode != 0 and not raw:
            status, payload = 500, proc.stderr
        return status, payload, content_type, headers

    # -- REST and GraphQL -------------------------------------------------------------

    def _api(
        self, method: str, path: str, query: dict[str, str], body: Any
    ) -> tuple[int, Any, dict[str, str]]:
        if method == "POST" and path == "/graphql":
            return self._graphql(body or {})
        minting = re.fullmatch(r"/app/installations/(\d+)/access_tokens", path)
        if minting is not None and method == "POST":
            return self._mint(int(minting.group(1)))
        match = re.fullmatch(r"/repos/([^/]+/[^/]+)(/.*)?", path)
        if match is None:
            return _not_found()
        with self._lock:
            repo = self._repos.get(unquote(match.group(1)))
            if repo is None:
                return _not_found()
            rest = match.group(2) or ""
            routes: list[tuple[str, str, Callable[..., Response]]] = [
                ("GET", r"", lambda: (200, self._repo_json(repo), {})),
                ("GET", r"/installation", lambda: self._installation(repo)),
                ("GET", r"/pulls", lambda: self._list_pulls(repo, query)),
                ("POST", r"/pulls", lambda: self._create_pull(repo, body or {})),
                ("GET", r"/pulls/(\d+)", lambda n: self._get_pull(repo, int(n))),
                ("PATCH", r"/pulls/(\d+)", lambda n: self._edit_pull(repo, int(n), body or {})),
                ("PUT", r"/pulls/(\d+)/merge", lambda n: self._merge(repo, int(n), body or {})),
                ("POST", r"/pulls/(\d+)/reviews", lambda n: self._review(repo, int(n), body or {})),
                ("GET", r"/commits/([^/]+)/check-runs", lambda s: self._check_runs(repo, s)),
                ("GET", r"/commits/([^/]+)/status", lambda s: self._combined(repo, s)),
                (
                    "GET",
                    r"/collaborators/([^/]+)/permission",
                    lambda u: self._permission(repo, unquote(u)),
                ),
            ]
            for verb, pattern, handle in routes:
                found = re.fullmatch(pattern, rest)
                if verb == method and found is not None:
                    return handle(*found.groups())
        return _not_found()

    def _graphql(self, body: dict[str, Any]) -> Response:
        query = str(body.get("query", ""))
        match = re.search(r"(\w+)\(input: \$input\)", query)
        name = match.group(1) if match else ""
        node_id = ((body.get("variables") or {}).get("input") or {}).get("pullRequestId")
        drafts = {"markPullRequestReadyForReview": False, "convertPullRequestToDraft": True}
        if name not in drafts:
            return 200, {"errors": [{"message": f"fake github does not implement {name!r}"}]}, {}
        with self._lock:
            for repo in self._repos.values():
                for pr in repo.pulls:
                    if pr["node_id"] == node_id:
                        pr["draft"] = drafts[name]
                        pr["updated_at"] = _now()
                        data = {"clientMutationId": None, "pullRequest": {"isDraft": pr["draft"]}}
                        return 200, {"data": {name: data}}, {}
        error = {"type": "NOT_FOUND", "message": f"Could not resolve to a node with id {node_id}"}
        return 200, {"errors": [error]}, {}

    def _installation(self, repo: _Repo) -> Response:
        app = self._app
        if app is None:
            return _not_found()
        owner = repo.full_name.split("/")[0]
        iid = app.installation_id
        return (
            200,
            {
                "id": iid,
                "app_id": app.app_id,
                "target_type": "Organization",
                "account": self._user(owner),
                "repository_selection": "selected",
                "access_tokens_url": f"{self.base_url}/app/installations/{iid}/access_tokens",
                "html_url": f"{self.base_url}/organizations/{owner}/settings/installations/{iid}",
                "permissions": dict(APP_PERMISSIONS),
                "created_at": _now(),
                "updated_at": _now(),
            },
            {},
        )

    def _mint(self, installation_id: int) -> Response:
        app = self._app
        if app is None or installation_id != app.installation_id:
            return _not_found()
        token = "ghs_" + secrets.token_urlsafe(27)
        expires_at = (app.clock() + app.lifetime).astimezone(UTC)
        with self._lock:
            app.tokens[token] = (len(app.tokens) + 1, expires_at)
        return (
            201,
            {
                "token": token,
                "expires_at": expires_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "permissions": dict(APP_PERMISSIONS),
                "repository_selection": "selected",
            },
            {},
        )

    def _list_pulls(self, repo: _Repo, query: dict[str, str]) -> Response:
        state = query.get("state", "open")
        owner = repo.full_name.split("/")[0]
        pulls = []
        for pr in repo.pulls:
            if state != "all" and pr["state"] != state:
                continue
            if "head" in query and query["head"] != f"{owner}:{pr['head_ref']}":
                continue
            if "base" in query and query["base"] != pr["base_ref"]:
                continue
            pulls.append(self._pull_json(repo, pr))
        return 200, pulls, {}

    def _create_pull(self, repo: _Repo, body: dict[str, Any]) -> Response:
        head, base = str(body.get("head", "")), str(body.get("base", ""))
        head = head.split(":", 1)[-1]
        sha = self._branch_sha(repo, head)
        if sha is None or self._branch_sha(repo, base) is None:
            field_name = "head" if sha is None else "base"
            return _invalid({"resource": "PullRequest", "field": field_name, "code": "invalid"})
        for pr in repo.pulls:
            if pr["head_ref"] == head and pr["state"] == "open":
                owner = repo.full_name.split("/")[0]
                return _invalid(
                    {
                        "resource": "PullRequest",
                        "code": "custom",
                        "message": f"A pull request already exists for {owner}:{head}.",
                    }
                )
        if body.get("draft") and not self.draft_prs:
            message = "Draft pull requests are not supported in this repository."
            return _invalid({"resource": "PullRequest", "code": "custom", "message": message})
        pr_id = self._next_id()
        pr = {
            "id": pr_id,
            "node_id": f"PR_kwDO{pr_id}",
            "number": len(repo.pulls) + 1,
            "title": body.get("title", ""),
            "body": body.get("body"),
            "draft": bool(body.get("draft", False)),
            "state": "open",
            "head_ref": head,
            "head_sha": sha,
            "base_ref": base,
            "merged_at": None,
            "merge_commit_sha": None,
            "created_at": _now(),
            "updated_at": _now(),
            "closed_at": None,
        }
        repo.pulls.append(pr)
        return 201, self._pull_json(repo, pr), {}

    def _pull(self, repo: _Repo, number: int) -> dict[str, Any] | None:
        return repo.pulls[number - 1] if 0 < number <= len(repo.pulls) else None

    def _get_pull(self, repo: _Repo, number: int) -> Response:
        pr = self._pull(repo, number)
        return _not_found() if pr is None else (200, self._pull_json(repo, pr), {})

    def _edit_pull(self, repo: _Repo, number: int, body: dict[str, Any]) -> Response:
        pr = self._pull(repo, number)
        if pr is None:
            return _not_found()
        for key in ("title", "body", "state"):
            if key in body:
                pr[key] = body[key]
        if "base" in body:
            pr["base_ref"] = body["base"]
        pr["updated_at"] = _now()
        return 200, self._pull_json(repo, pr), {}

    def _review(self, repo: _Repo, number: int, body: dict[str, Any]) -> Response:
        """A review; kept on the pull request as ``reviews`` (event and body)."""
        pr = self._pull(repo, number)
        if pr is None:
            return _not_found()
        review = {
            "id": self._next_id(),
            "body": str(body.get("body", "")),
            "state": {"COMMENT": "COMMENTED"}.get(str(body.get("event")), "PENDING"),
            "submitted_at": _now(),
        }
        pr.setdefault("reviews", []).append(review)
        return 200, review, {}

    def _merge(self, repo: _Repo, number: int, body: dict[str, Any]) -> Response:
        pr = self._pull(repo, number)
        if pr is None:
            return _not_found()
        if pr["draft"]:
            return 405, {"message": "Pull Request is still a draft"}, {}
        if pr["state"] != "open":
            return 405, {"message": "Pull Request is not mergeable"}, {}
        head = self._branch_sha(repo, pr["head_ref"]) or pr["head_sha"]
        if body.get("sha") and body["sha"] != head:
            return 409, {"message": "Head branch was modified. Review and try the merge again."}, {}
        method = body.get("merge_method", "merge")
        title = body.get("commit_title") or f"{pr['title']} (#{number})"
        if repo.bare is not None:
            try:
                sha = fakegit.merge(
                    repo.bare,
                    base=pr["base_ref"],
                    head=head,
                    method=method,
                    message=f"{title}\n\n{body.get('commit_message') or ''}".rstrip() + "\n",
                )
            except fakegit.MergeConflict as exc:
                return 405, {"message": f"Pull Request is not mergeable: {exc}"}, {}
        else:
            sha = hashlib.sha1(f"{repo.full_name}#{number}:{head}".encode()).hexdigest()  # noqa: S324
            repo.branches[pr["base_ref"]] = sha
        pr.update(
            state="closed",
            head_sha=head,
            merged_at=_now(),
            closed_at=_now(),
            merge_commit_sha=sha,
            updated_at=_now(),
        )
        return 200, {"sha": sha, "merged": True, "message": "Pull Request successfully merged"}, {}

    def _check_runs(self, repo: _Repo, sha: str) -> Response:
        runs = repo.check_runs.get(sha, [])
        return 200, {"total_count": len(runs), "check_runs": runs}, {}

    def _combined(self, repo: _Repo, sha: str) -> Response:
        statuses = repo.statuses.get(sha, [])
        states = {s["state"] for s in statuses}
        if states & {"failure", "error"}:
            state = "failure"
        elif not statuses or "pending" in states:
            state = "pending"
        else:
            state = "success"
        return (
            200,
            {
                "state": state,
                "sha": sha,
                "total_count": len(statuses),
                "statuses": statuses,
                "repository": self._repo_json(repo),
                "commit_url": f"{self.base_url}/repos/{repo.full_name}/commits/{sha}",
                "url": f"{self.base_url}/repos/{repo.full_name}/commits/{sha}/status",
            },
            {},
        )

    def _permission(self, repo: _Repo, login: str) -> Response:
        permission = repo.permissions.get(login)
        if permission is None:
            return _not_found()
        return (
            200,
            {"permission": permission, "role_name": permission, "user": self._user(login)},
            {},
        )

    # -- JSON shapes ------------------------------------------------------------------

    def _next_id(self) -> int:
        with self._lock:
            self._ids += 1
            return self._ids

    def _branch_sha(self, repo: _Repo, branch: str) -> str | None:
        if repo.bare is None:
            return repo.branches.get(branch)
        return fakegit.branch_sha(repo.bare, branch)

    def _user(self, login: str) -> dict[str, Any]:
        digest = int(hashlib.sha256(login.encode()).hexdigest()[:8], 16)
        return {
            "login": login,
            "id": digest,
            "node_id": f"U_{digest}",
            "type": "User",
            "site_admin": False,
            "url": f"{self.base_url}/users/{login}",
            "html_url": f"{self.base_url}/{login}",
        }

    def _repo_json(self, repo: _Repo) -> dict[str, Any]:
        owner, name = repo.full_name.split("/")
        api = f"{self.base_url}/repos/{repo.full_name}"
        return {
            "id": repo.id,
            "node_id": f"R_{repo.id}",
            "name": name,
            "full_name": repo.full_name,
            "private": repo.private,
            "owner": self._user(owner),
            "html_url": f"{self.base_url}/{repo.full_name}",
            "url": api,
            "pulls_url": f"{api}/pulls{{/number}}",
            "clone_url": f"{self.base_url}/git/{repo.full_name}.git",
            "default_branch": repo.default_branch,
            "visibility": "private" if repo.private else "public",
        }

    def _pull_json(self, repo: _Repo, pr: dict[str, Any]) -> dict[str, Any]:
        owner = repo.full_name.split("/")[0]
        api = f"{self.base_url}/repos/{repo.full_name}"
        head_sha = pr["head_sha"]
        if pr["state"] == "open":
            head_sha = self._branch_sha(repo, pr["head_ref"]) or head_sha
        repo_json = self._repo_json(repo)

        def part(ref: str, sha: str) -> dict[str, Any]:
            return {
                "label": f"{owner}:{ref}",
                "ref": ref,
                "sha": sha,
                "user": self._user(owner),
                "repo": repo_json,
            }

        base_sha = self._branch_sha(repo, pr["base_ref"]) or "0" * 40
        number = pr["number"]
        return {
            "url": f"{api}/pulls/{number}",
            "id": pr["id"],
            "node_id": pr["node_id"],
            "html_url": f"{self.base_url}/{repo.full_name}/pull/{number}",
            "issue_url": f"{api}/issues/{number}",
            "number": number,
            "state": pr["state"],
            "locked": False,
            "title": pr["title"],
            "body": pr["body"],
            "user": self._user(BOT_LOGIN),
            "draft": pr["draft"],
            "merged": pr["merged_at"] is not None,
            "merged_at": pr["merged_at"],
            "merge_commit_sha": pr["merge_commit_sha"],
            "mergeable": pr["state"] == "open",
            "mergeable_state": "draft" if pr["draft"] else "clean",
            "created_at": pr["created_at"],
            "updated_at": pr["updated_at"],
            "closed_at": pr["closed_at"],
            "head": part(pr["head_ref"], head_sha),
            "base": part(pr["base_ref"], base_sha),
        }

    def _check_run_json(self, repo: _Repo, sha: str, run: dict[str, Any]) -> dict[str, Any]:
        run_id = self._next_id()
        output = run.get("output") or {}
        completed = run.get("status", "completed") == "completed"
        html_url = run.get("html_url") or f"{self.base_url}/{repo.full_name}/runs/{run_id}"
        api = f"{self.base_url}/repos/{repo.full_name}"
        return {
            "id": run_id,
            "node_id": f"CR_{run_id}",
            "head_sha": sha,
            "name": run["name"],
            "status": run.get("status", "completed"),
            "conclusion": run.get("conclusion") if completed else None,
            "url": f"{api}/check-runs/{run_id}",
            "html_url": html_url,
            "details_url": html_url,
            "started_at": _now(),
            "completed_at": _now() if completed else None,
            "output": {
                "title": output.get("title"),
                "summary": output.get("summary"),
                "text": output.get("text"),
                "annotations_count": 0,
                "annotations_url": f"{api}/check-runs/{run_id}/annotations",
            },
        }


def _not_found() -> Response:
    return 404, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}, {}


def _invalid(error: dict[str, Any]) -> Response:
    return 422, {"message": "Validation Failed", "errors": [error]}, {}


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        chunks: list[bytes] = []
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length) if length else b""


def _send(
    handler: BaseHTTPRequestHandler,
    status: int,
    payload: bytes,
    content_type: str,
    headers: dict[str, str] | None = None,
) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(payload)))
    for key, value in (headers or {}).items():
        if key.lower() not in ("content-length", "content-type"):
            handler.send_header(key, value)
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(payload)


def _send_json(
    handler: BaseHTTPRequestHandler,
    status: int,
    data: Any,
    headers: dict[str, str] | None = None,
) -> None:
    payload = json.dumps(data).encode()
    _send(handler, status, payload, "application/json; charset=utf-8", headers)
