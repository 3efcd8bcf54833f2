"""What a GitHub webhook does, on a worker (which holds the forge token).

The bot checked the delivery's signature, its id and its repository
(:mod:`bot.github_webhooks`); here the payload is read defensively (anything in it is
the sender's) and turned into a decision through :mod:`jobs.decisions`:

- a comment or a review comment on an agents pull request that mentions the bot
  (``AGENTS_GITHUB_MENTION``): that run's next iteration, with the comment as feedback
  (a review comment carries its file and line);
- a review requesting changes: the same, with the review's text and each of its line
  comments (read from the forge), with its file and line, as one feedback;
- the pull request closed: the run ends ``merged`` or ``closed``;
- an issue labelled ``AGENTS_GITHUB_LABEL``, or an issue comment mentioning the bot:
  a new run, whose thread is in ``AGENTS_GITHUB_CHANNEL``;
- a check suite, check run or status completed on a head: the CI watch of that head is
  woken at once (see :mod:`jobs.ci_events`), instead of at its next poll.

Each returns one line saying what happened, which the job logs; an event about a run is
also on that run's log (and so in its thread).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from jobs import ci_events, decisions
from jobs.forge.protocol import Forge, can_write
from jobs.queue import RunQueue
from process.exceptions import ForgeError, RunNotFound
from process.settings import GitHubSurfaceSettings
from runs.events import GitHubActivity
from runs.record import Run
from runs.store import RunStore

log = logging.getLogger(__name__)

_AGENTS_BRANCH = re.compile(r"agents/(?P<id>[0-9]{1,12})-(?P<nonce>[0-9a-f]{1,16})-")
#: The most characters of an issue's title and body a run takes as its request.
MAX_ISSUE_CHARS = 4000
#: The most characters of one line comment of a review taken into its feedback.
MAX_LINE_COMMENT_CHARS = 2000


def _text(value: Any, limit: int = 65536) -> str:
    return value[:limit] if isinstance(value, str) else ""


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def mentioned(body: str, mention: str) -> str | None:
    """The comment without the mention, if it mentions the bot; None otherwise."""
    pattern = re.compile(rf"(?<![\w@-]){re.escape(mention)}(?![\w-])", re.IGNORECASE)
    if pattern.search(body) is None:
        return None
    return pattern.sub(" ", body).strip()


def run_for_branch(store: RunStore, repo: str, branch: str, number: int) -> Run | None:
    """The run whose pull request this is: an ``agents/<id>-<nonce>-`` branch of this
    store, on this repository, with this number; None for any other PR."""
    match = _AGENTS_BRANCH.match(branch)
    if match is None or match.group("nonce") != store.nonce:
        return None
    try:
        run = store.get(int(match.group("id")))
    except RunNotFound:
        return None
    if run.repo.lower() != repo.lower() or run.artifacts.pr_number != number:
        return None
    return run


def _pr_run(store: RunStore, forge: Forge, repo: str, pull: dict[str, Any]) -> Run | None:
    number = pull.get("number")
    if not isinstance(number, int):
        return None
    branch = _text(_dict(pull.get("head")).get("ref"), 300)
    if not branch:  # an issue comment's payload names the PR, not its branch
        try:
            branch = forge.get_pr(repo, number).branch
        except ForgeError as err:
            log.warning("could not read %s#%d: %s", repo, number, err)
            return None
    return run_for_branch(store, repo, branch, number)


def handle_event(
    store: RunStore,
    queue: RunQueue,
    forge: Forge,
    config: GitHubSurfaceSettings,
    event: str,
    payload: dict[str, Any],
) -> str:
    """Act on one delivery; returns what happened, in one line."""
    repo = _text(_dict(payload.get("repository")).get("full_name"), 200)
    login = _text(_dict(payload.get("sender")).get("login"), 100) or "unknown"
    action = payload.get("action")
    if event in ("check_suite", "check_run", "status"):
        return ci_events.note_ci_event(store, repo, event, payload)
    if event == "pull_request" and action == "closed":
        pull = _dict(payload.get("pull_request"))
        run = _pr_run(store, forge, repo, pull)
        if run is None:
            return f"{repo}#{pull.get('number')} closed: not an agents pull request"
        merged = pull.get("merged") is True
        return decisions.pull_request_ended(queue, run.id, login, merged=merged).text
    if event == "issues" and action == "labeled":
        label = _text(_dict(payload.get("label")).get("name"), 100)
        if label.lower() != config.github_label.lower():
            return f"label {label!r} is not {config.github_label!r}"
        return start_from_issue(store, queue, forge, config, repo, login, payload, "")
    comment = _dict(payload.get("comment") or payload.get("review"))
    body = _text(comment.get("body"))
    url = _text(comment.get("html_url"), 500) or None
    if event == "pull_request_review" and action == "submitted":
        if _text(comment.get("state")).lower() != "changes_requested":
            return "a review that does not request changes"
        feedback = review_feedback(forge, repo, payload)
        return _on_pr(store, queue, forge, repo, login, payload, feedback, url)
    if action != "created" or event not in ("issue_comment", "pull_request_review_comment"):
        return f"{event} {action}: nothing to do"
    said = mentioned(body, config.github_mention)
    if said is None:
        return f"a comment that does not mention {config.github_mention}"
    if event == "pull_request_review_comment":
        path = _text(comment.get("path"), 500)
        line = comment.get("line") or comment.get("original_line")
        placed = line_place(path, line if isinstance(line, int) else None)
        return _on_pr(store, queue, forge, repo, login, payload, f"{placed}: {said}", url)
    issue = _dict(payload.get("issue"))
    if issue.get("pull_request"):
        return _on_pr(store, queue, forge, repo, login, {"pull_request": issue}, said, url)
    return start_from_issue(store, queue, forge, config, repo, login, payload, said)


def line_place(path: str, line: int | None) -> str:
    """``On `path` line N``: how a comment on a line of the diff is placed in feedback."""
    return f"On `{path}`" + (f" line {line}" if line is not None else "")


def review_feedback(forge: Forge, repo: str, payload: dict[str, Any]) -> str:
    """A review requesting changes as one feedback: its text, then each of its line
    comments with its file and line. The event carries the text only, so the comments
    are read from the forge; if that fails, the text is used alone (and the failure
    logged)."""
    review = _dict(payload.get("review"))
    number = _dict(payload.get("pull_request")).get("number")
    lines = [f"Review requesting changes: {_text(review.get('body')).strip()}".strip()]
    review_id = review.get("id")
    if isinstance(number, int) and isinstance(review_id, int):
        try:
            comments = forge.review_line_comments(repo, number, review_id)
        except ForgeError as err:
            log.warning("could not read review %d on %s#%d: %s", review_id, repo, number, err)
            comments = []
        lines += [
            f"- {line_place(c.path, c.line)}: {c.body.strip()[:MAX_LINE_COMMENT_CHARS]}"
            for c in comments
        ]
    return "\n".join(lines)


def _on_pr(
    store: RunStore,
    queue: RunQueue,
    forge: Forge,
    repo: str,
    login: str,
    payload: dict[str, Any],
    feedback: str,
    url: str | None,
) -> str:
    pull = _dict(payload.get("pull_request"))
    run = _pr_run(store, forge, repo, pull)
    if run is None:
        return f"{repo}#{pull.get('number')}: not an agents pull request; ignored"
    return decisions.from_github(queue, forge, run.id, login, feedback, url=url).text


def start_from_issue(
    store: RunStore,
    queue: RunQueue,
    forge: Forge,
    config: GitHubSurfaceSettings,
    repo: str,
    login: str,
    payload: dict[str, Any],
    said: str,
) -> str:
    """A new run asked for on an issue: its title and body (and what the comment said)
    are the request; its thread is in ``AGENTS_GITHUB_CHANNEL``. Only someone with
    write access to the repository starts one."""
    issue = _dict(payload.get("issue"))
    number = issue.get("number")
    if config.github_channel is None:
        return "AGENTS_GITHUB_CHANNEL is not set, so runs are not started from GitHub"
    try:
        permission = forge.permission(repo, login)
    except ForgeError as err:
        return f"could not read @{login}'s permission on {repo}: {err}"
    if not can_write(permission):
        return f"@{login} has no write access to {repo} ({permission}); no run started"
    title = _text(issue.get("title"), 500).strip()
    request = "\n\n".join(p for p in (title, _text(issue.get("body")).strip(), said) if p)
    request = request[:MAX_ISSUE_CHARS]
    if not request:
        return f"{repo}#{number} has no title or body to work from"
    by = decisions.github_user(login)
    run = store.create(
        requester=by, repo=repo, request=request, channel=config.github_channel, by=by
    )
    url = _text(issue.get("html_url"), 500) or None
    store.append_event(
        run.id,
        GitHubActivity(
            by=by,
            login=login,
            action="started",
            text=f"asked on GitHub by @{login} in {repo}#{number}: {title[:200]}",
            url=url,
        ),
    )
    queue.enqueue(run)
    return f"{run.label} started from {repo}#{number}"


def answer_on_pr(forge: Forge, run: Run) -> bool:
    """After an iteration asked for on GitHub, its answer there too: a comment on the PR
    with what the iteration did, naming who asked. A forge error is logged (the answer
    is in the Slack thread in any case)."""
    logins = sorted(
        {f.by.removeprefix("github:") for f in run.artifacts.feedback if f.by.startswith("github:")}
    )
    number = run.artifacts.pr_number
    if not logins or number is None:
        return False
    head = (run.artifacts.head_sha or "")[:12]
    asked = ", ".join(f"@{login}" for login in logins)
    summary = (run.artifacts.summary or "(no summary)").strip()
    body = f"Iteration {run.iteration} is pushed ({head}), for {asked}:\n\n{summary}"
    try:
        forge.comment(run.repo, number, body[:60000])
    except ForgeError as err:
        log.warning("run #%d: could not answer on %s#%d: %s", run.id, run.repo, number, err)
        return False
    return True
