"""``POST /github/events``: GitHub's webhook deliveries, checked, then queued.

Whoever can reach the bot's port can post anything here, so a delivery is taken in this
order, and answered at the first problem (and nothing else happens):

1. its size (413 over :data:`MAX_BODY` bytes);
2. its signature, ``X-Hub-Signature-256``: HMAC-SHA256 of the raw body with
   ``GITHUB_WEBHOOK_SECRET``, compared in constant time (401 when missing or wrong),
   before a byte of it is parsed;
3. its delivery id, ``X-GitHub-Delivery``: a redelivery (GitHub's retry, or the
   "Redeliver" button) of one already taken is answered 200 and does nothing;
4. only then its JSON (400 if malformed), its event (ignored unless the bot acts on it),
   and its repository: one outside ``AGENTS_ALLOWED_REPOS`` is recorded and ignored.

What is left goes on the queue as one job (``jobs.entrypoints.github_event_job``) and is
answered 202 at once: GitHub waits ten seconds. The worker holds the forge token, so it
checks the sender's permission on GitHub and does the work (:mod:`jobs.github_events`).
This module is plain bytes in, status out: the HTTP server in :mod:`bot.http` mounts it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import re
from collections.abc import Mapping
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import redis
from rq import Queue

from bot.requests import repo_allowed
from process.http import (
    Asgi,
    ClientGone,
    HttpLimits,
    Receive,
    Refused,
    Scope,
    Send,
    header,
    read_body,
    respond,
)
from runs.store import RunStore

log = logging.getLogger(__name__)

PATH = "/github/events"
#: GitHub caps payloads at 25 MB; the events the bot acts on are a few KB.
MAX_BODY = 1024 * 1024
#: How long a delivery id is remembered (GitHub redelivers within days at most).
DELIVERY_SECONDS = 7 * 24 * 3600
GITHUB_EVENT_JOB = "jobs.entrypoints.github_event_job"
#: The events the worker acts on; any other is answered and dropped.
EVENTS = frozenset(
    {
        "issue_comment",
        "pull_request_review_comment",
        "pull_request_review",
        "pull_request",
        "issues",
        "check_suite",
        "check_run",
        "status",
    }
)
_DELIVERY = re.compile(r"[A-Za-z0-9-]{1,100}")
#: Recent deliveries recorded and ignored before the queue (a capped list, for operators).
IGNORED_KEEP = 200


def signature_of(secret: bytes, body: bytes) -> str:
    """``sha256=<hex>``, as GitHub writes ``X-Hub-Signature-256``."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Answer:
    status: int
    text: str


class GitHubWebhooks:
    """Checks deliveries and queues them. Holds its connection; nothing is global."""

    def __init__(
        self,
        connection: redis.Redis,
        store: RunStore,
        *,
        secret: str,
        queue: str,
        allowed_repos: list[str],
    ) -> None:
        self.connection = connection
        self.store = store
        self.secret = secret.encode()
        self.queue = Queue(queue, connection=connection)
        self.allowed_repos = allowed_repos

    def _ignored(self, delivery: str, event: str, why: str) -> Answer:
        """Record a delivery that will do nothing, with why, and answer it."""
        key = f"{self.store.prefix}:github:ignored"
        entry = json.dumps({"delivery": delivery, "event": event, "why": why})
        with self.connection.pipeline() as pipe:
            pipe.lpush(key, entry)
            pipe.ltrim(key, 0, IGNORED_KEEP - 1)
            pipe.execute()
        log.info("github delivery %s (%s) ignored: %s", delivery, event, why)
        return Answer(202, f"ignored: {why}\n")

    def receive(self, headers: Mapping[str, str], body: bytes) -> Answer:
        """Answer one delivery; ``headers`` with lower-case names."""
        if len(body) > MAX_BODY:
            return Answer(413, "payload too large\n")
        signature = headers.get("x-hub-signature-256", "")
        expected = signature_of(self.secret, body).encode()
        if not hmac.compare_digest(expected, signature.encode("utf-8", "surrogateescape")):
            log.warning("github delivery refused: %s signature", "bad" if signature else "no")
            return Answer(401, "bad or missing X-Hub-Signature-256\n")
        delivery = headers.get("x-github-delivery", "")
        event = headers.get("x-github-event", "")
        if not _DELIVERY.fullmatch(delivery):
            return Answer(400, "missing or malformed X-GitHub-Delivery\n")
        seen = f"{self.store.prefix}:github:delivery:{delivery}"
        if not self.connection.set(seen, event or "?", nx=True, ex=DELIVERY_SECONDS):
            return Answer(200, "already received; nothing to do\n")
        try:
            payload: Any = json.loads(body)
        except ValueError:
            return Answer(400, "malformed JSON\n")
        if event == "ping":
            return Answer(200, "pong\n")
        if event not in EVENTS or not isinstance(payload, dict):
            return self._ignored(delivery, event, f"the bot does not act on {event!r} events")
        repo = str((payload.get("repository") or {}).get("full_name") or "")
        if not repo or not repo_allowed(repo, self.allowed_repos):
            return self._ignored(
                delivery, event, f"repository {repo[:140]!r} is not on AGENTS_ALLOWED_REPOS"
            )
        self.queue.enqueue_call(
            GITHUB_EVENT_JOB,
            args=(event, delivery, payload),
            job_id=f"agents-github-{delivery}",
            timeout=600,
            result_ttl=3600,
            failure_ttl=self.store.retention_seconds,
            description=f"github {event} {delivery} on {repo}",
            meta={
                "retention_seconds": self.store.retention_seconds,
                "store_prefix": self.store.prefix,
            },
        )  # behind what is queued already: deliveries are acted on in the order they came
        return Answer(202, "queued\n")


def github_endpoint(
    webhooks: GitHubWebhooks, *, limits: HttpLimits | None = None, executor: Executor | None = None
) -> Asgi:
    """The receiver on the bot's HTTP server (:mod:`bot.http` mounts it at :data:`PATH`).

    The body is read as Slack's is (:func:`process.http.read_body`): refused from its
    declared size before a byte is read, bounded in size and time; a refusal is one log
    line naming its size, never its content. Checking and queueing wait on Redis, so they
    run on ``executor``, not on the server's event loop.
    """
    limits = limits or HttpLimits(max_body_bytes=MAX_BODY)
    pool = executor or ThreadPoolExecutor(max_workers=4, thread_name_prefix="github-delivery")

    async def endpoint(scope: Scope, receive: Receive, send: Send) -> None:
        client = (scope.get("client") or ("?", 0))[0]
        try:
            if scope["method"] != "POST":
                raise Refused(405, "only POST")
            body = await read_body(scope, receive, limits)
        except ClientGone:
            log.info("github delivery from %s: the client hung up before sending its body", client)
            return
        except Refused as refused:
            size = header(scope, b"content-length")
            log.warning(
                "github delivery refused: %d %s (%s bytes declared, from %s)",
                refused.status,
                refused.reason,
                size.decode("latin-1")[:20] if size else "no size",
                client,
            )
            await respond(send, refused.status, refused.reason.encode() + b"\n")
            return
        headers = {
            bytes(key).decode("latin-1").lower(): bytes(value).decode("latin-1")
            for key, value in scope.get("headers", ())
        }
        loop = asyncio.get_running_loop()
        answer = await loop.run_in_executor(pool, webhooks.receive, headers, body)
        await respond(send, answer.status, answer.text.encode())

    return endpoint
