"""GitHub through PyGithub: pull requests, checks, permissions; git over HTTPS.

PyGithub's own retries are switched off (its default retries POST on 5xx, which could
open a second pull request). Every call goes through :func:`jobs.forge.retry.with_retries`
instead: bounded backoff on 5xx, 429, rate limits and connection errors, and for
"create PR" a look-up by branch before each retry.

The credentials (:mod:`jobs.forge.credentials`: a static token, or a GitHub App's
installation tokens minted per job) are held by the PyGithub client and, for git, read
right before each git call and handed to that one git process
(:class:`jobs.forge.auth.GitCredentials`). It is never put in a URL, a file, or a
message: every error is redacted before it leaves this module.

A little over the usual size: it implements the whole :class:`~jobs.forge.protocol.Forge`
protocol for GitHub, one method per operation.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import requests
from github import Auth, Github, GithubException, RateLimitExceededException

from jobs.forge import git as gitops
from jobs.forge.auth import GitCredentials, mask_tokens
from jobs.forge.credentials import GitHubCredentials, StaticToken
from jobs.forge.protocol import (
    MAX_LINE_COMMENTS,
    CheckRun,
    CheckSummary,
    LineComment,
    MergeMethod,
    Permission,
    PullRequest,
    normalise_permission,
)
from jobs.forge.retry import ForgeRetry, Transient, with_retries
from process.exceptions import (
    ForgeRejected,
    ForgeUnavailable,
    GitFailed,
    MergeRejected,
    PushRejected,
    RefLocked,
)
from process.lifecycle import Lifecycle

log = logging.getLogger(__name__)

DEFAULT_API_URL = "https://api.github.com"
USER_AGENT = "agents-bot"

T = TypeVar("T")


class GitHubForge(Lifecycle):
    """A forge on GitHub (or GitHub Enterprise, or a fake, through ``base_url``)."""

    kind = "github"

    def __init__(
        self,
        token: str | None = None,
        *,
        credentials: GitHubCredentials | None = None,
        base_url: str = DEFAULT_API_URL,
        retry: ForgeRetry | None = None,
        timeout: int = 30,
        throttle: bool = True,
    ) -> None:
        """``token`` or ``credentials`` (a GitHub App's, say), one of them.

        ``throttle``: keep PyGithub's spacing between requests (GitHub asks for it)."""
        if credentials is None:
            if not token:
                raise ValueError("GitHubForge needs a token")
            credentials = StaticToken(token)
        elif token:
            raise ValueError("GitHubForge takes a token or credentials, not both")
        self._credentials = credentials
        self._retry = retry or ForgeRetry()
        self._client_options: dict[str, Any] = {
            "base_url": base_url.rstrip("/"),
            "timeout": timeout,
            "user_agent": USER_AGENT,
            "retry": None,
            "lazy": True,
            "seconds_between_requests": 0.25 if throttle else None,
            "seconds_between_writes": 1.0 if throttle else None,
        }
        #: One PyGithub client per auth (a GitHub App has one per installation).
        self._clients: dict[int, tuple[Auth.Auth, Github]] = {}
        self._repos: dict[str, Any] = {}

    def close(self) -> None:
        for _, client in self._clients.values():
            client.close()
        self._clients.clear()
        self._credentials.close()

    # -- repositories -----------------------------------------------------------------

    def _repo(self, repo: str) -> Any:
        cached = self._repos.get(repo)
        if cached is None:
            auth = self._call(f"authenticate for {repo}", lambda: self._credentials.auth(repo))
            entry = self._clients.get(id(auth))
            if entry is None:
                entry = (auth, Github(auth=auth, **self._client_options))
                self._clients[id(auth)] = entry
            cached = entry[1].get_repo(repo)
            self._repos[repo] = cached
        return cached

    def _repo_info(self, repo: str) -> tuple[str, str]:
        """(default branch, clone URL), one ``GET /repos/{repo}`` per forge object."""
        gh_repo = self._repo(repo)
        return self._call(
            f"read {repo}", lambda: (str(gh_repo.default_branch), str(gh_repo.clone_url))
        )

    def default_branch(self, repo: str) -> str:
        return self._repo_info(repo)[0]

    def clone_url(self, repo: str) -> str:
        return self._repo_info(repo)[1]

    # -- git transport ----------------------------------------------------------------

    def _git_credentials(self, repo: str, url: str) -> GitCredentials:
        """For one git call: the current token, taken right before it (an installation
        token is refreshed here when it is about to expire)."""
        token = self._call(f"authenticate for {repo}", lambda: self._credentials.token(repo))
        return GitCredentials(url, token)

    def remote_head(self, repo: str, branch: str) -> str | None:
        url = self.clone_url(repo)
        return self._git(
            f"read {branch}",
            lambda: gitops.ls_remote(url, branch, self._git_credentials(repo, url)),
        )

    def fetch(self, repo: str, workdir: Path, refspecs: Sequence[str]) -> None:
        url = self.clone_url(repo)
        self._git(
            f"fetch {repo}",
            lambda: gitops.fetch(workdir, url, refspecs, self._git_credentials(repo, url)),
        )

    def push(self, repo: str, workdir: Path, sha: str, branch: str) -> None:
        """Pushing the same commit again is a no-op, so a lost response is safe to retry."""
        url = self.clone_url(repo)
        self._git(
            f"push {branch}",
            lambda: gitops.push(workdir, url, sha, branch, self._git_credentials(repo, url)),
        )

    def _git(self, what: str, call: Callable[[], T]) -> T:
        return with_retries(
            self._retry,
            what,
            call,
            _classify_git,
            give_up=lambda last, attempts: ForgeUnavailable(
                f"{what}: git failed {attempts} times, last with {last}", attempts=attempts
            ),
        )

    # -- pull requests ----------------------------------------------------------------

    def _find_pr_once(self, repo: str, branch: str) -> PullRequest | None:
        owner = repo.split("/")[0]
        pulls = self._repo(repo).get_pulls(state="open", head=f"{owner}:{branch}")
        for pull in pulls:
            if pull.head.ref == branch:
                return _pull_request(repo, pull)
        return None

    def find_pr(self, repo: str, branch: str) -> PullRequest | None:
        return self._call(f"find the PR for {branch}", lambda: self._find_pr_once(repo, branch))

    def get_pr(self, repo: str, number: int) -> PullRequest:
        return self._call(f"read {repo}#{number}", lambda: self._get_pr_once(repo, number))

    def _get_pr_once(self, repo: str, number: int) -> PullRequest:
        return _pull_request(repo, self._repo(repo).get_pull(number))

    def create_pr(
        self, repo: str, *, branch: str, base: str, title: str, body: str, draft: bool
    ) -> PullRequest:
        gh_repo = self._repo(repo)

        def create(as_draft: bool) -> PullRequest:
            pull = gh_repo.create_pull(
                base=base, head=branch, title=title, body=body, draft=as_draft
            )
            return _pull_request(repo, pull)

        def attempt() -> PullRequest:
            try:
                return create(draft)
            except GithubException as exc:
                if exc.status != 422:
                    raise
                message = _message(exc).lower()
                if "already exists" in message:
                    found = self._find_pr_once(repo, branch)
                    if found is not None:
                        return found
                if draft and "draft" in message:
                    log.warning("%s does not support draft PRs; opening a ready one", repo)
                    return create(False)
                raise

        pr = self._call(
            f"create a PR for {branch}",
            attempt,
            recover=lambda: self._find_pr_once(repo, branch),
        )
        log.info("pull request %s#%d is open for %s", repo, pr.number, branch)
        return pr

    def update_pr_body(self, repo: str, number: int, body: str) -> PullRequest:
        def edit() -> PullRequest:
            pull = self._repo(repo).get_pull(number)
            pull.edit(body=body)
            return _pull_request(repo, pull)

        return self._call(f"update {repo}#{number}", edit)

    def post_review(self, repo: str, number: int, body: str) -> None:
        def review() -> None:
            self._repo(repo).get_pull(number).create_review(body=body, event="COMMENT")

        self._call(f"review {repo}#{number}", review)

    def comment(self, repo: str, number: int, body: str) -> None:
        def post() -> None:
            self._repo(repo).get_pull(number).create_issue_comment(body)

        self._call(f"comment on {repo}#{number}", post)

    def review_line_comments(self, repo: str, number: int, review_id: int) -> list[LineComment]:
        """``GET .../pulls/{n}/reviews/{id}/comments``: a review's line comments (the
        ``pull_request_review`` event carries the review's text only)."""

        def read() -> list[LineComment]:
            listed = self._repo(repo).get_pull(number).get_single_review_comments(review_id)
            found: list[LineComment] = []
            for comment in listed:
                line = comment.line or comment.original_line  # not raw_data: it reads again
                found.append(
                    LineComment(
                        path=str(comment.path or "")[:500],
                        line=line if isinstance(line, int) else None,
                        body=str(comment.body or ""),
                    )
                )
                if len(found) >= MAX_LINE_COMMENTS:
                    break
            return found

        return self._call(f"read review {review_id} on {repo}#{number}", read)

    def mark_ready(self, repo: str, number: int) -> PullRequest:
        def ready() -> PullRequest:
            pull = self._repo(repo).get_pull(number)
            if pull.draft:
                pull.mark_ready_for_review()
            return _pull_request(repo, pull)

        def recover() -> PullRequest | None:
            pr = self._get_pr_once(repo, number)
            return None if pr.draft else pr

        return self._call(f"mark {repo}#{number} ready", ready, recover=recover)

    def merge(
        self, repo: str, number: int, *, method: MergeMethod = "squash", sha: str | None = None
    ) -> PullRequest:
        def merge_once() -> PullRequest:
            pull = self._repo(repo).get_pull(number)
            if pull.merged:
                return _pull_request(repo, pull)
            if sha is not None:
                pull.merge(merge_method=method, sha=sha)
            else:
                pull.merge(merge_method=method)
            return self._get_pr_once(repo, number)

        def recover() -> PullRequest | None:
            pr = self._get_pr_once(repo, number)
            return pr if pr.merged else None

        try:
            return self._call(f"merge {repo}#{number}", merge_once, recover=recover)
        except ForgeRejected as exc:
            if exc.status in (405, 409, 422):
                raise MergeRejected(str(exc), status=exc.status) from None
            raise

    # -- checks and permissions -------------------------------------------------------

    def checks(self, repo: str, sha: str) -> CheckSummary:
        def read() -> CheckSummary:
            commit = self._repo(repo).get_commit(sha)
            runs = [
                CheckRun.from_check_run(
                    run.name,
                    run.status,
                    run.conclusion,
                    url=run.html_url or run.details_url,
                    summary=_output_summary(run),
                )
                for run in commit.get_check_runs()
            ]
            combined = commit.get_combined_status()
            if combined.total_count:
                runs.extend(
                    CheckRun.from_status(
                        status.context, status.state, status.target_url, status.description
                    )
                    for status in combined.statuses
                )
            return CheckSummary.of(sha, runs)

        return self._call(f"read checks on {sha[:12]}", read)

    def ci_configured(self, repo: str) -> bool:
        """Always True: GitHub has no answer to "is there CI?". Actions workflows are
        one source of checks among many (apps, external statuses) and checks register
        some time after a push, so the watch's settle time is what decides "none"."""
        del repo
        return True

    def permission(self, repo: str, login: str) -> Permission:
        def read() -> Permission:
            try:
                raw = self._repo(repo).get_collaborator_permission(login)
            except GithubException as exc:
                if exc.status == 404:
                    return "none"
                raise
            return normalise_permission(str(raw))

        return self._call(f"read {login}'s permission on {repo}", read)

    # -- retries and errors -----------------------------------------------------------

    def _call(
        self, what: str, call: Callable[[], T], *, recover: Callable[[], T | None] | None = None
    ) -> T:
        credentials = self._credentials
        try:
            return with_retries(
                self._retry,
                what,
                call,
                _classify,
                recover=recover,
                give_up=lambda last, attempts: ForgeUnavailable(
                    mask_tokens(
                        f"{what}: GitHub still failing after {attempts} attempts ({last})",
                        credentials.secrets,
                    ),
                    attempts=attempts,
                ),
            )
        except GithubException as exc:
            detail = mask_tokens(_message(exc), credentials.secrets)
            raise ForgeRejected(
                f"{what}: GitHub answered {exc.status}: {detail}", status=exc.status
            ) from None


def _classify(exc: Exception) -> Transient | None:
    if isinstance(exc, GithubException):
        retry_after = _retry_after(exc)
        if exc.status >= 500 or exc.status == 429:
            return Transient(f"HTTP {exc.status}", retry_after)
        if isinstance(exc, RateLimitExceededException) or (
            exc.status == 403 and retry_after is not None
        ):
            return Transient("rate limited", retry_after)
        return None
    if isinstance(exc, requests.RequestException):
        return Transient(type(exc).__name__)
    return None


#: git's messages for failures worth another try (the server or the network, not us).
_TRANSIENT_GIT = re.compile(
    r"returned error: (5\d\d|429)|RPC failed|early EOF|unexpected disconnect|"
    r"Could not resolve host|Connection (refused|reset|timed out)|Operation timed out|"
    r"remote end hung up",
    re.IGNORECASE,
)


def _classify_git(exc: Exception) -> Transient | None:
    if isinstance(exc, RefLocked):
        return Transient("git: the branch was locked by another push")
    if isinstance(exc, GitFailed) and not isinstance(exc, PushRejected):
        match = _TRANSIENT_GIT.search(str(exc))
        if match:
            return Transient(f"git: {match.group(0)}")
    return None


def _retry_after(exc: GithubException) -> float | None:
    for key, value in (exc.headers or {}).items():
        if key.lower() == "retry-after":
            try:
                return float(value)
            except ValueError:
                return None
    return None


def _message(exc: GithubException) -> str:
    data = exc.data
    if isinstance(data, dict):
        message = str(data.get("message") or "")
        errors = data.get("errors")
        if isinstance(errors, list):
            details = [
                str(e.get("message") or e.get("code") or e) if isinstance(e, dict) else str(e)
                for e in errors
            ]
            message = "; ".join(filter(None, [message, *details]))
        return message or str(data)
    return str(data or exc.message or "")


def _output_summary(run: Any) -> str | None:
    output = run.output
    if output is None:
        return None
    parts = [part for part in (output.title, output.summary) if part]
    return "\n".join(parts) or None


def _pull_request(repo: str, pull: Any) -> PullRequest:
    merged = pull.merged_at is not None
    return PullRequest(
        repo=repo,
        number=pull.number,
        url=pull.html_url,
        branch=pull.head.ref,
        base=pull.base.ref,
        title=pull.title or "",
        body=pull.body or "",
        draft=bool(pull.draft),
        state="closed" if pull.state == "closed" else "open",
        merged=merged,
        head_sha=pull.head.sha,
        merge_sha=pull.merge_commit_sha if merged else None,
    )


if TYPE_CHECKING:
    from jobs.forge.protocol import Forge

    def _conforms(forge: GitHubForge) -> Forge:
        return forge
