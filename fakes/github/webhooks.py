"""The fake GitHub's webhooks: signed deliveries, sent the way GitHub sends them.

Each delivery is a POST of the event's JSON to the configured URL with GitHub's
headers: ``X-GitHub-Event``, a fresh ``X-GitHub-Delivery`` id, ``X-GitHub-Hook-ID`` and
``X-Hub-Signature-256`` (HMAC-SHA256 of the body with the hook's secret). Every
delivery is kept with what the receiver answered, and can be redelivered (same id, same
body), as GitHub's "Redeliver" button does.

What people do on GitHub (comment, review, label an issue, close a PR) is here as
functions over the state: each keeps what GitHub would show of it (a comment in the
conversation, a review's line comments) and sends its event.
A merge through the REST API queues its ``pull_request`` event on the state, sent once
the API's answer is out (:func:`flush`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from typing import Any

from fakes.github import payloads
from fakes.github.state import GitHubState, Pull, Repo, now

log = logging.getLogger(__name__)

Json = dict[str, Any]
HOOK_ID = 424242


@dataclass
class Delivery:
    id: str
    event: str
    body: bytes
    status: int = 0
    answer: str = ""


class Webhooks:
    """Where deliveries go, signed with what, and every one sent so far."""

    def __init__(self) -> None:
        self.url: str | None = None
        self.secret: str | None = None
        self.deliveries: list[Delivery] = []

    def send(self, event: str, payload: Json) -> Delivery | None:
        """Deliver ``payload`` as ``event``; None when no URL is configured."""
        if self.url is None:
            return None
        delivery = Delivery(str(uuid.uuid4()), event, json.dumps(payload).encode())
        self.deliveries.append(delivery)
        return self._post(delivery)

    def redeliver(self, delivery_id: str) -> Delivery:
        earlier = next(d for d in self.deliveries if d.id == delivery_id)
        again = Delivery(earlier.id, earlier.event, earlier.body)
        self.deliveries.append(again)
        return self._post(again)

    def _post(self, delivery: Delivery) -> Delivery:
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "GitHub-Hookshot/fake",
            "X-GitHub-Event": delivery.event,
            "X-GitHub-Delivery": delivery.id,
            "X-GitHub-Hook-ID": str(HOOK_ID),
        }
        if self.secret is not None:
            digest = hmac.new(self.secret.encode(), delivery.body, hashlib.sha256).hexdigest()
            headers["X-Hub-Signature-256"] = f"sha256={digest}"
        request = urllib.request.Request(  # noqa: S310 - the URL a test configured
            str(self.url), data=delivery.body, method="POST", headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                delivery.status = int(response.status)
                delivery.answer = response.read().decode(errors="replace")
        except urllib.error.HTTPError as err:
            delivery.status = int(err.code)
            delivery.answer = err.read().decode(errors="replace")
            err.close()
        except OSError as exc:  # GitHub records a failed delivery and moves on
            delivery.status, delivery.answer = 0, str(exc)
        log.debug(
            "fake github: delivered %s %s -> %s", delivery.event, delivery.id, delivery.status
        )
        return delivery


def flush(state: GitHubState) -> None:
    """Send the events the API queued (a merge's ``pull_request`` closed)."""
    with state.lock:
        queued, state.outbox = state.outbox, []
    for event, payload in queued:
        state.webhooks.send(event, payload)


# -- the payloads ----------------------------------------------------------------------


def _base(state: GitHubState, repo: Repo, login: str, action: str | None) -> Json:
    body: Json = {
        "repository": payloads.repository(state, repo),
        "sender": payloads.user(state, login),
    }
    if action is not None:
        body = {"action": action, **body}
    return body


def _issue(state: GitHubState, repo: Repo, number: int, title: str, body: str, login: str) -> Json:
    url = f"https://github.com/{repo.full_name}/issues/{number}"
    return {
        "id": state.next_id(),
        "number": number,
        "title": title,
        "body": body,
        "user": payloads.user(state, login),
        "state": "open",
        "html_url": url,
        "labels": [],
        "created_at": now(),
        "updated_at": now(),
    }


def _comment(state: GitHubState, repo: Repo, number: int, login: str, body: str) -> Json:
    comment_id = state.next_id()
    return {
        "id": comment_id,
        "body": body,
        "user": payloads.user(state, login),
        "html_url": f"https://github.com/{repo.full_name}/pull/{number}#issuecomment-{comment_id}",
        "author_association": "COLLABORATOR" if login in repo.permissions else "NONE",
        "created_at": now(),
        "updated_at": now(),
    }


def comment_event(state: GitHubState, repo: Repo, number: int, login: str, body: str) -> Json:
    """``issue_comment`` created: on a pull request (which GitHub calls an issue) or on
    an issue opened with :func:`issue_event`. The comment joins the conversation the
    API and the pull request's page show."""
    pr = repo.pull(number)
    if pr is not None:
        issue = _issue(state, repo, number, pr.title, pr.body or "", "agents-bot")
        issue["pull_request"] = {
            "url": f"{state.base_url}/repos/{repo.full_name}/pulls/{number}",
            "html_url": f"https://github.com/{repo.full_name}/pull/{number}",
        }
    else:
        title, text, author = repo.issues[number]
        issue = _issue(state, repo, number, title, text, author)
    payload = _base(state, repo, login, "created")
    payload["issue"] = issue
    comment = payloads.issue_comment(state, repo, number, login, body)
    comment["author_association"] = "COLLABORATOR" if login in repo.permissions else "NONE"
    repo.comments.setdefault(number, []).append(comment)
    payload["comment"] = comment
    return payload


def review_comment_event(
    state: GitHubState, repo: Repo, pr: Pull, login: str, body: str, path: str, line: int
) -> Json:
    payload = _base(state, repo, login, "created")
    payload["pull_request"] = payloads.pull_request(state, repo, pr)
    comment = _comment(state, repo, pr.number, login, body)
    comment.update(path=path, line=line, original_line=line, side="RIGHT")
    payload["comment"] = comment
    return payload


def review_event(
    state: GitHubState,
    repo: Repo,
    pr: Pull,
    login: str,
    review_state: str,
    body: str,
    comments: list[tuple[str, int, str]] | None = None,
) -> Json:
    """``pull_request_review`` submitted; its line ``comments`` (path, line, body) are
    kept on the pull request, listed by ``GET .../reviews/{id}/comments`` (the event
    does not carry them, as on GitHub)."""
    review_id = state.next_id()
    pr.review_comments[review_id] = [
        payloads.review_comment(state, repo, pr, review_id, c, login) for c in comments or []
    ]
    payload = _base(state, repo, login, "submitted")
    payload["pull_request"] = payloads.pull_request(state, repo, pr)
    payload["review"] = {
        "id": review_id,
        "body": body,
        "state": review_state,
        "user": payloads.user(state, login),
        "html_url": f"https://github.com/{repo.full_name}/pull/{pr.number}#pullrequestreview",
        "submitted_at": now(),
    }
    return payload


def pull_closed_event(state: GitHubState, repo: Repo, pr: Pull, login: str) -> Json:
    payload = _base(state, repo, login, "closed")
    payload["number"] = pr.number
    payload["pull_request"] = payloads.pull_request(state, repo, pr)
    return payload


def issue_event(state: GitHubState, repo: Repo, number: int, login: str, label: str) -> Json:
    """``issues`` labeled: ``label`` put on issue ``number`` by ``login``."""
    title, text, author = repo.issues[number]
    payload = _base(state, repo, login, "labeled")
    issue = _issue(state, repo, number, title, text, author)
    issue["labels"] = [{"name": label}]
    payload["issue"] = issue
    payload["label"] = {"name": label, "color": "ededed"}
    return payload


def check_suite_event(state: GitHubState, repo: Repo, sha: str, conclusion: str) -> Json:
    payload = _base(state, repo, "github-actions[bot]", "completed")
    payload["check_suite"] = {
        "id": state.next_id(),
        "head_sha": sha,
        "status": "completed",
        "conclusion": conclusion,
    }
    return payload
