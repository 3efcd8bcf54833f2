"""HTTP mode: ``/slack/events`` for Slack, ``/github/events`` for GitHub's webhooks
(:mod:`bot.github_webhooks`, when ``GITHUB_WEBHOOK_SECRET`` is set), then ``/healthz`` and
``/metrics`` (:mod:`process.endpoints`) on the same port, served by
:class:`process.http.HttpServer`.

Whoever can reach the port can send anything, so a request to ``/slack/events`` is
checked in this order, and answered at the first problem with one log line and no
traceback; bolt only ever sees a request that passed them all:

1. its declared size (413 over 1 MiB, before a byte of the body is read), then the body
   itself, bounded in size and time (413, 408);
2. the signature, over the raw bytes: missing or wrong (401), stale by more than five
   minutes (401), a timestamp that is not a whole number of seconds (400);
3. only then the body: UTF-8 (400), and the shape bolt parses it as, JSON or a form
   with a JSON ``payload`` (400 for malformed JSON, a form labelled JSON, or anything
   bolt cannot make a request of).

A body never reaches the log: a refusal names its size, never its content. GitHub's
deliveries get the same bounds on the body, then their own checks (their signature
first).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qsl

from slack_bolt import App, BoltRequest, BoltResponse

from bot.github_webhooks import PATH as GITHUB_PATH
from process.endpoints import Health, Wsgi, ops_app
from process.http import (
    Asgi,
    ClientGone,
    HttpLimits,
    Receive,
    Refused,
    Scope,
    Send,
    from_wsgi,
    header,
    read_body,
    respond,
)

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
#: Slack refuses requests older than five minutes; so does this.
MAX_AGE_SECONDS = 300
_TIMESTAMP = re.compile(rb"[0-9]{1,12}")


def check_signature(
    secret: str, body: bytes, timestamp: bytes | None, signature: bytes | None, now: float
) -> None:
    """Raise :class:`Refused` unless ``signature`` is Slack's v0 signature of ``body``
    at ``timestamp``, made within five minutes of ``now``."""
    if timestamp is None or signature is None:
        raise Refused(401, "no signature headers")
    if not _TIMESTAMP.fullmatch(timestamp):
        raise Refused(400, "X-Slack-Request-Timestamp is not a whole number of seconds")
    if abs(now - int(timestamp)) > MAX_AGE_SECONDS:
        raise Refused(401, "stale timestamp (more than five minutes away)")
    base = b"v0:" + timestamp + b":" + body
    expected = b"v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest().encode()
    if not hmac.compare_digest(expected, signature):
        raise Refused(401, "bad signature")


def _object(text: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        raise Refused(400, f"malformed JSON in the {what}") from None
    if not isinstance(value, dict):
        raise Refused(400, f"the {what} is JSON but not an object")
    return value


def check_payload(body: bytes, content_type: bytes | None) -> str:
    """The body as text, once it is known to be what bolt will parse it as: JSON (when
    labelled so, or when it starts with ``{``, as bolt decides), else a form whose
    ``payload``, if any, is JSON."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused(400, "body is not valid UTF-8") from None
    kind = (content_type or b"").split(b";", 1)[0].strip().lower()
    if not text:
        return text
    if kind == b"application/json" or text.startswith("{"):
        _object(text, "body")
        return text
    if "payload" in text:
        payload = dict(parse_qsl(text, keep_blank_values=True)).get("payload")
        if payload is not None:
            _object(payload, "form's payload field")
    return text


def _headers(scope: Scope) -> dict[str, str | Sequence[str]]:
    headers: dict[str, str | Sequence[str]] = {}
    for key, value in scope.get("headers", ()):
        headers[bytes(key).decode("latin-1")] = bytes(value).decode("latin-1")
    return headers


def slack_endpoint(
    app: App,
    secret: str,
    *,
    limits: HttpLimits | None = None,
    executor: Executor | None = None,
    clock: Callable[[], float] = time.time,
) -> Asgi:
    """``/slack/events``: a checked request goes to bolt on ``executor`` (bolt acks
    there, then runs the listener on its own executor)."""
    limits = limits or HttpLimits()
    pool = executor or ThreadPoolExecutor(max_workers=8, thread_name_prefix="slack-dispatch")

    def dispatch(text: str, headers: dict[str, str | Sequence[str]], query: str) -> BoltResponse:
        try:
            request = BoltRequest(body=text, query=query, headers=headers)
        except Exception as exc:  # bolt could not make a request of it: not Slack's shape
            raise Refused(400, f"not a Slack payload ({type(exc).__name__})") from None
        return app.dispatch(request)

    async def endpoint(scope: Scope, receive: Receive, send: Send) -> None:
        size = header(scope, b"content-length")
        client = (scope.get("client") or ("?", 0))[0]
        try:
            if scope["method"] != "POST":
                raise Refused(405, "only POST")
            body = await read_body(scope, receive, limits)
            check_signature(
                secret,
                body,
                header(scope, b"x-slack-request-timestamp"),
                header(scope, b"x-slack-signature"),
                clock(),
            )
            text = check_payload(body, header(scope, b"content-type"))
            query = bytes(scope.get("query_string", b"")).decode("latin-1")
            loop = asyncio.get_running_loop()
            response = await loop.run_in_executor(pool, dispatch, text, _headers(scope), query)
        except ClientGone:
            log.info("slack request from %s: the client hung up before sending its body", client)
            return
        except Refused as refused:
            log.warning(
                "slack request refused: %d %s (%s bytes declared, from %s)",
                refused.status,
                refused.reason,
                size.decode("latin-1")[:20] if size else "no size",
                client,
            )
            await respond(send, refused.status, refused.reason.encode() + b"\n")
            return
        headers = [
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, values in response.headers.items()
            for value in values
            if name.lower() != "content-length"
        ]
        content_type = response.headers.get("content-type", ["text/plain; charset=utf-8"])[0]
        await respond(
            send,
            response.status,
            response.body.encode("utf-8"),
            content_type.encode("latin-1"),
            [h for h in headers if h[0] != b"content-type"],
        )

    return endpoint


def asgi_app(
    app: App,
    secret: str,
    healthy: Health,
    metrics: Wsgi | None = None,
    github: Asgi | None = None,
    *,
    limits: HttpLimits | None = None,
) -> Asgi:
    """Slack's requests go to :func:`slack_endpoint`, GitHub's to ``github`` (if
    webhooks are on, :func:`bot.github_webhooks.github_endpoint`), everything else to
    :func:`process.endpoints.ops_app`."""
    slack = slack_endpoint(app, secret, limits=limits)
    ops = from_wsgi(ops_app(healthy, metrics))

    async def route(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] == EVENTS_PATH:
            await slack(scope, receive, send)
        elif scope["path"] == GITHUB_PATH and github is not None:
            await github(scope, receive, send)
        else:
            await ops(scope, receive, send)

    return route
