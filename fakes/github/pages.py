"""The fake GitHub's pull-request page, as pure functions: data in, HTML out.

What a person sees of a pull request on github.com, reduced to what the demo needs: the
title and body, the diff file by file, the checks with their state, the conversation,
and a comment box. Everything shown comes from a repository or from whoever commented,
so all of it is hostile: every value is escaped (:func:`html.escape`, quotes included)
at the one place it enters the markup, and the diff is bounded before it is split.

:mod:`fakes.github.web` gathers a :class:`PullView` from the fake's state and serves
what :func:`pull_page` makes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html import escape
from urllib.parse import quote

#: The most of a diff shown (characters), and the most files; the rest is summarised.
MAX_DIFF_CHARS = 512 * 1024
MAX_FILES = 300
#: A GitHub login: what the page accepts as who is commenting.
LOGIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})")


@dataclass(frozen=True)
class DiffFile:
    """One file of a diff: its path, its lines (``+``, ``-``, `` ``, ``@@``, ``\\``)."""

    path: str
    lines: list[str]
    status: str = "modified"  # added, deleted, renamed, binary, modified

    @property
    def additions(self) -> int:
        return sum(1 for line in self.lines if line.startswith("+"))

    @property
    def deletions(self) -> int:
        return sum(1 for line in self.lines if line.startswith("-"))


@dataclass(frozen=True)
class CheckView:
    name: str
    state: str  # queued, in_progress, success, failure, neutral, pending, error...
    url: str | None = None


@dataclass(frozen=True)
class CommentView:
    author: str
    body: str
    when: str
    kind: str = "comment"  # comment, review


@dataclass(frozen=True)
class PullView:
    """Everything the page shows of one pull request."""

    repo: str
    number: int
    title: str
    body: str
    state: str  # open, closed, merged
    draft: bool
    head_ref: str
    base_ref: str
    head_sha: str
    author: str
    files: list[DiffFile] = field(default_factory=list)
    truncated: bool = False
    checks: list[CheckView] = field(default_factory=list)
    conversation: list[CommentView] = field(default_factory=list)
    #: Who the comment box posts as (the page's ``?user=``).
    viewer: str = "octocat"


def _path_of(header: str, lines: list[str]) -> tuple[str, str]:
    """(path, status) of one file's part of a ``git diff``."""
    new = next((line[6:] for line in lines if line.startswith("+++ b/")), None)
    old = next((line[6:] for line in lines if line.startswith("--- a/")), None)
    if any(line.startswith("new file mode") for line in lines):
        status = "added"
    elif any(line.startswith("deleted file mode") for line in lines):
        status = "deleted"
    elif any(line.startswith("rename to ") for line in lines):
        status = "renamed"
        new = next(line[len("rename to ") :] for line in lines if line.startswith("rename to "))
    elif any(line.startswith("Binary files ") for line in lines):
        status = "binary"
    else:
        status = "modified"
    if new is None and old is None:
        # ``diff --git a/x b/x``: unambiguous when both halves are the same path.
        rest = header.removeprefix("diff --git ")
        half = len(rest) // 2
        new = rest[half + 1 :].removeprefix("b/") if rest[:half].startswith("a/") else rest
    return (new or old or "?"), status


def split_diff(diff: str) -> tuple[list[DiffFile], bool]:
    """A ``git diff``'s files, in order, and whether any of it was left out (over
    :data:`MAX_DIFF_CHARS` or :data:`MAX_FILES`)."""
    truncated = len(diff) > MAX_DIFF_CHARS
    diff = diff[:MAX_DIFF_CHARS]
    files: list[DiffFile] = []
    header: str | None = None
    lines: list[str] = []

    def close() -> None:
        if header is None:
            return
        path, status = _path_of(header, lines)
        shown = [
            line
            for line in lines
            if line.startswith(("+", "-", " ", "@@", "\\"))
            and not line.startswith(("+++ ", "--- "))
        ]
        files.append(DiffFile(path, shown, status))

    for line in diff.splitlines():
        if line.startswith("diff --git "):
            close()
            header, lines = line, []
        elif header is not None:
            lines.append(line)
    close()
    if len(files) > MAX_FILES:
        files, truncated = files[:MAX_FILES], True
    return files, truncated


_STATE_CLASS = {
    "success": "ok",
    "neutral": "ok",
    "skipped": "ok",
    "failure": "bad",
    "error": "bad",
    "cancelled": "bad",
    "timed_out": "bad",
    "action_required": "bad",
}


def _check(check: CheckView) -> str:
    name = escape(check.name)
    if check.url and check.url.startswith(("http://", "https://")):
        name = f'<a href="{escape(check.url)}">{name}</a>'
    css = _STATE_CLASS.get(check.state, "wait")
    return (
        f'<li class="check {css}" data-testid="pr-check">{name} '
        f'<span class="state">{escape(check.state)}</span></li>'
    )


def _line(line: str) -> str:
    css = {"+": "add", "-": "del", "@": "hunk"}.get(line[:1], "ctx")
    return f'<span class="{css}">{escape(line)}</span>'


def _file(diff_file: DiffFile) -> str:
    # One block per line (``pre span`` is ``display: block``): no newlines between.
    body = "".join(_line(line) for line in diff_file.lines) or "(no text changes)"
    return (
        f'<section class="file" data-testid="pr-file">'
        f'<h3><span class="path">{escape(diff_file.path)}</span> '
        f'<span class="counts">{escape(diff_file.status)} '
        f"+{diff_file.additions} &minus;{diff_file.deletions}</span></h3>"
        f"<pre>{body}</pre></section>"
    )


def _comment(comment: CommentView) -> str:
    return (
        f'<article class="comment {escape(comment.kind)}" data-testid="pr-comment">'
        f'<header><b>@{escape(comment.author)}</b> <span class="when">'
        f"{escape(comment.kind)}ed {escape(comment.when)}</span></header>"
        f'<div class="text">{escape(comment.body)}</div></article>'
    )


STYLE = """
body { font: 14px/1.5 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif;
  margin: 0 auto; max-width: 1000px; padding: 16px; color: #1f2328; }
h1 { font-weight: 400; } .num { color: #59636e; }
.badge { border-radius: 2em; padding: 4px 12px; color: #fff; background: #1f883d; }
.badge.closed { background: #cf222e; } .badge.merged { background: #8250df; }
.badge.draft { background: #59636e; }
.meta code { background: #ddf4ff; padding: 2px 6px; border-radius: 6px; }
.box { border: 1px solid #d1d9e0; border-radius: 6px; margin: 16px 0; }
.box > h2 { font-size: 14px; margin: 0; padding: 8px 16px; background: #f6f8fa;
  border-bottom: 1px solid #d1d9e0; }
.text { white-space: pre-wrap; padding: 8px 16px; }
.comment header { padding: 8px 16px; background: #f6f8fa; } .when { color: #59636e; }
.checks { list-style: none; margin: 0; padding: 8px 16px; }
.check.ok .state { color: #1a7f37; } .check.bad .state { color: #cf222e; }
.check.wait .state { color: #9a6700; }
.file h3 { font-size: 13px; margin: 0; padding: 8px 16px; background: #f6f8fa; }
.counts { color: #59636e; font-weight: 400; }
pre { margin: 0; padding: 8px 0; overflow-x: auto; font-size: 12px; }
pre span { display: block; padding: 0 16px; min-height: 1.5em; }
.add { background: #dafbe1; } .del { background: #ffebe9; } .hunk { background: #ddf4ff; }
textarea { width: 100%; box-sizing: border-box; min-height: 90px; font: inherit; }
button { margin-top: 8px; background: #1f883d; color: #fff; border: 0; padding: 6px 16px;
  border-radius: 6px; font-weight: 600; cursor: pointer; }
"""


def comment_action(repo: str, number: int) -> str:
    """Where the comment box posts to (``/{owner}/{name}/pull/{n}/comments``)."""
    return f"/{quote(repo, safe='/')}/pull/{number}/comments"


def pull_page(view: PullView) -> str:
    """The whole page, as one HTML document."""
    state = "draft" if view.draft and view.state == "open" else view.state
    files = "".join(_file(f) for f in view.files) or '<p class="text">No changes.</p>'
    if view.truncated:
        files += '<p class="text">The diff is too large; the rest is not shown.</p>'
    checks = "".join(_check(c) for c in view.checks)
    if not checks:
        checks = f'<li class="check none">No checks reported on {escape(view.head_sha[:12])}</li>'
    conversation = "".join(_comment(c) for c in view.conversation)
    opening = CommentView(view.author, view.body or "No description provided.", "", "open")
    changed = sum(f.additions for f in view.files), sum(f.deletions for f in view.files)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>{escape(view.title)} · Pull Request #{view.number} · {escape(view.repo)}</title>
<style>{STYLE}</style></head>
<body>
<p class="repo">{escape(view.repo)} (fake GitHub)</p>
<h1 data-testid="pr-title">{escape(view.title)} <span class="num">#{view.number}</span></h1>
<p class="meta"><span class="badge {escape(state)}" data-testid="pr-state">{escape(state)}</span>
 @{escape(view.author)} wants to merge <code>{escape(view.head_ref)}</code> into
 <code>{escape(view.base_ref)}</code>
 ({len(view.files)} files, +{changed[0]} &minus;{changed[1]})</p>
<div class="box" data-testid="pr-body">{_comment(opening)}</div>
<div class="box"><h2>Checks</h2><ul class="checks">{checks}</ul></div>
<div class="box"><h2>Files changed</h2>{files}</div>
<div class="box" id="conversation"><h2>Conversation</h2>
<div data-testid="pr-conversation">{conversation}</div>
<form method="post" action="{escape(comment_action(view.repo, view.number))}" class="text">
<input type="hidden" name="user" value="{escape(view.viewer)}">
<label for="comment-body">Comment as @{escape(view.viewer)}
 (mention @agents to ask for a change)</label>
<textarea id="comment-body" name="body" required data-testid="pr-comment-input"></textarea>
<button type="submit" data-testid="pr-comment-submit">Comment</button>
</form></div>
</body></html>
"""
