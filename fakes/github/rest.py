"""The REST endpoints the product calls, and the two GraphQL mutations, over the state.

What each endpoint does to the fake's state and what it answers, GitHub's way: 201 for
a new pull request, 422 ``Validation Failed`` for a duplicate or a missing branch, 405
for merging a draft, 409 when the head moved. The answers' shapes are in
:mod:`fakes.github.payloads`; authentication and faults happen before a request gets
here (:mod:`fakes.github.routes`).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable
from datetime import UTC
from typing import Any
from urllib.parse import unquote

from fakes.github import git as fakegit
from fakes.github import payloads
from fakes.github.state import GitHubState, Pull, Repo, now

Json = dict[str, Any]
Response = tuple[int, Any, dict[str, str]]


def not_found() -> Response:
    return 404, payloads.error(404, "Not Found"), {}


def _invalid(item: Json) -> Response:
    return 422, payloads.validation_failed(item), {}


def handle(
    state: GitHubState, method: str, path: str, query: dict[str, str], body: Any
) -> Response:
    """Answer one API request (already authenticated)."""
    if method == "POST" and path == "/graphql":
        return graphql(state, body or {})
    minting = re.fullmatch(r"/app/installations/(\d+)/access_tokens", path)
    if minting is not None and method == "POST":
        return mint(state, int(minting.group(1)))
    match = re.fullmatch(r"/repos/([^/]+/[^/]+)(/.*)?", path)
    if match is None:
        return not_found()
    with state.lock:
        repo = state.repos.get(unquote(match.group(1)))
        if repo is None:
            return not_found()
        rest = match.group(2) or ""
        data = body if isinstance(body, dict) else {}
        routes: list[tuple[str, str, Callable[..., Response]]] = [
            ("GET", r"", lambda: (200, payloads.repository(state, repo, full=True), {})),
            ("GET", r"/installation", lambda: installation(state, repo)),
            ("GET", r"/pulls", lambda: list_pulls(state, repo, query)),
            ("POST", r"/pulls", lambda: create_pull(state, repo, data)),
            ("GET", r"/pulls/(\d+)", lambda n: get_pull(state, repo, int(n))),
            ("PATCH", r"/pulls/(\d+)", lambda n: edit_pull(state, repo, int(n), data)),
            ("PUT", r"/pulls/(\d+)/merge", lambda n: merge(state, repo, int(n), data)),
            ("POST", r"/pulls/(\d+)/reviews", lambda n: post_review(state, repo, int(n), data)),
            (
                "GET",
                r"/pulls/(\d+)/reviews/(\d+)/comments",
                lambda n, r: review_comments(repo, int(n), int(r)),
            ),
            ("POST", r"/issues/(\d+)/comments", lambda n: add_comment(state, repo, int(n), data)),
            ("GET", r"/commits/([^/]+)/check-runs", lambda s: check_runs(repo, s)),
            (
                "GET",
                r"/commits/([^/]+)/status",
                lambda s: (200, payloads.combined_status(state, repo, s), {}),
            ),
            (
                "GET",
                r"/collaborators/([^/]+)/permission",
                lambda u: permission(state, repo, unquote(u)),
            ),
        ]
        for verb, pattern, route in routes:
            found = re.fullmatch(pattern, rest)
            if verb == method and found is not None:
                return route(*found.groups())
    return not_found()


def graphql(state: GitHubState, body: Json) -> Response:
    """``markPullRequestReadyForReview`` and ``convertPullRequestToDraft``, nothing else."""
    query = str(body.get("query", ""))
    match = re.search(r"(\w+)\(input: \$input\)", query)
    name = match.group(1) if match else ""
    node_id = ((body.get("variables") or {}).get("input") or {}).get("pullRequestId")
    drafts = {"markPullRequestReadyForReview": False, "convertPullRequestToDraft": True}
    if name not in drafts:
        return 200, {"errors": [{"message": f"fake github does not implement {name!r}"}]}, {}
    with state.lock:
        for repo in state.repos.values():
            for pr in repo.pulls:
                if pr.node_id == node_id:
                    pr.draft = drafts[name]
                    pr.updated_at = now()
                    data = {"clientMutationId": None, "pullRequest": {"isDraft": pr.draft}}
                    return 200, {"data": {name: data}}, {}
    error = {"type": "NOT_FOUND", "message": f"Could not resolve to a node with id {node_id}"}
    return 200, {"errors": [error]}, {}


def installation(state: GitHubState, repo: Repo) -> Response:
    if state.app is None:
        return not_found()
    return 200, payloads.installation(state, state.app, repo), {}


def mint(state: GitHubState, installation_id: int) -> Response:
    """A new installation token, valid for the App's ``lifetime`` on its clock."""
    app = state.app
    if app is None or installation_id != app.installation_id:
        return not_found()
    token = "ghs_" + secrets.token_urlsafe(27)
    expires_at = (app.clock() + app.lifetime).astimezone(UTC)
    with state.lock:
        app.tokens[token] = (len(app.tokens) + 1, expires_at)
    stamp = expires_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    return 201, payloads.installation_token(token, stamp), {}


def list_pulls(state: GitHubState, repo: Repo, query: dict[str, str]) -> Response:
    wanted = query.get("state", "open")
    pulls = [
        payloads.pull_request(state, repo, pr, simple=True)
        for pr in repo.pulls
        if (wanted == "all" or pr.state == wanted)
        and ("head" not in query or query["head"] == f"{repo.owner}:{pr.head_ref}")
        and ("base" not in query or query["base"] == pr.base_ref)
    ]
    return 200, pulls, {}


def create_pull(state: GitHubState, repo: Repo, body: Json) -> Response:
    head = str(body.get("head", "")).split(":", 1)[-1]
    base = str(body.get("base", ""))
    sha = repo.branch_sha(head)
    if sha is None or repo.branch_sha(base) is None:
        field_name = "head" if sha is None else "base"
        return _invalid({"resource": "PullRequest", "field": field_name, "code": "invalid"})
    if any(pr.head_ref == head and pr.state == "open" for pr in repo.pulls):
        message = f"A pull request already exists for {repo.owner}:{head}."
        return _invalid({"resource": "PullRequest", "code": "custom", "message": message})
    if body.get("draft") and not state.draft_prs:
        message = "Draft pull requests are not supported in this repository."
        return _invalid({"resource": "PullRequest", "code": "custom", "message": message})
    pr = Pull(
        id=state.next_id(),
        number=len(repo.pulls) + 1,
        title=str(body.get("title", "")),
        body=body.get("body"),
        draft=bool(body.get("draft", False)),
        head_ref=head,
        head_sha=sha,
        base_ref=base,
        base_sha=repo.branch_sha(base),
    )
    repo.pulls.append(pr)
    return 201, payloads.pull_request(state, repo, pr), {}


def get_pull(state: GitHubState, repo: Repo, number: int) -> Response:
    pr = repo.pull(number)
    return not_found() if pr is None else (200, payloads.pull_request(state, repo, pr), {})


def edit_pull(state: GitHubState, repo: Repo, number: int, body: Json) -> Response:
    pr = repo.pull(number)
    if pr is None:
        return not_found()
    if "title" in body:
        pr.title = str(body["title"])
    if "body" in body:
        pr.body = body["body"]
    if "state" in body:
        pr.state = str(body["state"])
    if "base" in body:
        pr.base_ref = str(body["base"])
    pr.updated_at = now()
    return 200, payloads.pull_request(state, repo, pr), {}


def merge(state: GitHubState, repo: Repo, number: int, body: Json) -> Response:
    """Merge as GitHub's merge button does, into the bare repository when there is one."""
    pr = repo.pull(number)
    if pr is None:
        return not_found()
    if pr.draft:
        return 405, payloads.error(405, "Pull Request is still a draft"), {}
    if pr.state != "open":
        return 405, payloads.error(405, "Pull Request is not mergeable"), {}
    head = repo.branch_sha(pr.head_ref) or pr.head_sha
    if body.get("sha") and body["sha"] != head:
        moved = "Head branch was modified. Review and try the merge again."
        return 409, payloads.error(409, moved), {}
    title = body.get("commit_title") or f"{pr.title} (#{number})"
    if repo.bare is not None:
        try:
            sha = fakegit.merge(
                repo.bare,
                base=pr.base_ref,
                head=head,
                method=str(body.get("merge_method", "merge")),
                message=f"{title}\n\n{body.get('commit_message') or ''}".rstrip() + "\n",
            )
        except fakegit.MergeConflict as exc:
            return 405, payloads.error(405, f"Pull Request is not mergeable: {exc}"), {}
    else:
        sha = hashlib.sha1(f"{repo.full_name}#{number}:{head}".encode()).hexdigest()  # noqa: S324
        repo.branches[pr.base_ref] = sha
    stamp = now()
    pr.state, pr.head_sha, pr.merge_commit_sha = "closed", head, sha
    pr.merged_at = pr.closed_at = pr.updated_at = stamp
    from fakes.github.webhooks import pull_closed_event

    state.outbox.append(("pull_request", pull_closed_event(state, repo, pr, "agents-bot")))
    return 200, {"sha": sha, "merged": True, "message": "Pull Request successfully merged"}, {}


def post_review(state: GitHubState, repo: Repo, number: int, body: Json) -> Response:
    """``pulls/create-review``: kept on the pull request (the product posts ``COMMENT``s)."""
    pr = repo.pull(number)
    if pr is None:
        return not_found()
    event = str(body.get("event", ""))
    pr.reviews.append((state.next_id(), event, str(body.get("body", "")), now()))
    return 200, payloads.review(state, repo, pr, len(pr.reviews) - 1), {}


def review_comments(repo: Repo, number: int, review_id: int) -> Response:
    """``pulls/list-comments-for-review``: the line comments of one review."""
    pr = repo.pull(number)
    if pr is None or review_id not in pr.review_comments:
        return not_found()
    return 200, list(pr.review_comments[review_id]), {}


def add_comment(state: GitHubState, repo: Repo, number: int, body: Json) -> Response:
    """``issues/create-comment``, as the token's user (the bot): on a pull request or
    an issue; kept in the conversation the fake shows."""
    if repo.pull(number) is None and number not in repo.issues:
        return not_found()
    text = body.get("body")
    if not isinstance(text, str) or not text:
        return _invalid({"resource": "IssueComment", "field": "body", "code": "missing_field"})
    comment = payloads.issue_comment(state, repo, number, payloads.BOT_LOGIN, text)
    repo.comments.setdefault(number, []).append(comment)
    return 201, comment, {}


def check_runs(repo: Repo, sha: str) -> Response:
    runs = repo.check_runs.get(sha, [])
    return 200, {"total_count": len(runs), "check_runs": runs}, {}


def permission(state: GitHubState, repo: Repo, login: str) -> Response:
    """``repository-collaborator-permission``; 404 for someone who is no collaborator."""
    level = repo.permissions.get(login)
    if level is None:
        return not_found()
    body = {
        "permission": level,
        "role_name": level,
        "user": payloads.collaborator(state, login, level),
    }
    return 200, body, {}
