"""The fake GitHub's web pages: a pull request's page, and its comment box.

``GET /{owner}/{name}/pull/{n}`` is the page a pull request's ``html_url`` names (the
link the bot posts in its thread); ``POST /{owner}/{name}/pull/{n}/comments`` is its
comment box. A comment posted there is what a comment on github.com is: it joins the
conversation, and the signed ``issue_comment`` webhook goes out
(:func:`fakes.github.webhooks.comment_event`), after the answer, as the API's events do.

Pages are a browser's, not the API's: no token, and they are not in
:attr:`FakeGitHub.requests` (which the contract tests and the benchmark read). Who
comments is the page's ``?user=`` (default :data:`VIEWER`), a login or nothing.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, quote

from fakes.github import git as fakegit
from fakes.github import pages, payloads
from fakes.github.state import GitHubState, Pull, Repo
from fakes.github.webhooks import comment_event

#: Who the page comments as unless ``?user=`` says otherwise.
VIEWER = "octocat"
#: GitHub's limit on a comment's length.
MAX_COMMENT = 65536

_PAGE = re.compile(r"/([^/]+/[^/]+)/pull/(\d{1,9})(/comments)?")

#: (status, body, content type, headers)
Page = tuple[int, bytes, str, dict[str, str]]


def is_page(path: str) -> bool:
    return _PAGE.fullmatch(path) is not None


def _text(status: int, message: str) -> Page:
    return status, f"{message}\n".encode(), "text/plain; charset=utf-8", {}


def view_of(state: GitHubState, repo: Repo, pr: Pull, viewer: str) -> pages.PullView:
    """What the page shows of ``pr``, read from the state (hold its lock)."""
    head = repo.branch_sha(pr.head_ref) if pr.state == "open" else None
    head = head or pr.head_sha
    diff = ""
    if repo.bare is not None and pr.base_sha is not None:
        diff = fakegit.diff(repo.bare, pr.base_sha, head, pages.MAX_DIFF_CHARS)
    files, truncated = pages.split_diff(diff)
    checks = [
        pages.CheckView(
            str(run["name"]),
            str(run["conclusion"] or run["status"]),
            run.get("html_url"),
        )
        for run in repo.check_runs.get(head, [])
    ]
    checks += [
        pages.CheckView(str(s["context"]), str(s["state"]), s.get("target_url"))
        for s in repo.statuses.get(head, [])
    ]
    said: list[tuple[str, pages.CommentView]] = [
        (str(c["created_at"]), pages.CommentView(c["user"]["login"], c["body"], c["created_at"]))
        for c in repo.comments.get(pr.number, [])
    ]
    said += [
        (when, pages.CommentView(payloads.BOT_LOGIN, body, when, "review"))
        for _, _, body, when in pr.reviews
    ]
    said.sort(key=lambda pair: pair[0])  # stable: same-second entries keep their order
    return pages.PullView(
        repo=repo.full_name,
        number=pr.number,
        title=pr.title,
        body=pr.body or "",
        state="merged" if pr.merged_at else pr.state,
        draft=pr.draft,
        head_ref=pr.head_ref,
        base_ref=pr.base_ref,
        head_sha=head,
        author=payloads.BOT_LOGIN,
        files=files,
        truncated=truncated,
        checks=checks,
        conversation=[view for _, view in said],
        viewer=viewer,
    )


def serve(state: GitHubState, method: str, path: str, query: str, body: bytes) -> Page:
    """Answer a request for a page (:func:`is_page` said it is one)."""
    match = _PAGE.fullmatch(path)
    if match is None:
        return _text(404, "Not Found")
    name, number, commenting = match.group(1), int(match.group(2)), match.group(3)
    viewer = dict(parse_qsl(query)).get("user", VIEWER)
    with state.lock:
        repo = state.repos.get(name)
        pr = repo.pull(number) if repo is not None else None
        if repo is None or pr is None:
            return _text(404, "Not Found")
        if not commenting:
            if method not in ("GET", "HEAD"):
                return _text(405, "Method Not Allowed")
            if not pages.LOGIN.fullmatch(viewer):
                return _text(400, "?user= is not a GitHub login")
            html = pages.pull_page(view_of(state, repo, pr, viewer))
            return 200, html.encode(), "text/html; charset=utf-8", {}
        if method != "POST":
            return _text(405, "Method Not Allowed")
        form = dict(parse_qsl(body.decode("utf-8", errors="replace"), max_num_fields=10))
        login, text = form.get("user", ""), form.get("body", "").strip()
        if not pages.LOGIN.fullmatch(login):
            return _text(400, "user is not a GitHub login")
        if not text or len(text) > MAX_COMMENT:
            return _text(422, f"a comment is 1 to {MAX_COMMENT} characters")
        event = comment_event(state, repo, number, login, text)
        state.outbox.append(("issue_comment", event))
    back = f"/{quote(name, safe='/')}/pull/{number}?user={quote(login)}#conversation"
    return 303, b"", "text/plain; charset=utf-8", {"Location": back}
