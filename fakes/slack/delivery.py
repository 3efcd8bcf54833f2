"""Signed HTTP deliveries to the bot, as Slack makes them.

Slack signs ``v0:{timestamp}:{body}`` with HMAC-SHA256 under the app's signing
secret and sends ``X-Slack-Signature: v0=<hex>`` and ``X-Slack-Request-Timestamp``;
``slack_sdk.signature.SignatureVerifier`` (and so slack-bolt) checks exactly that.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

Json = dict[str, Any]

USER_AGENT = "Slackbot 1.0 (+https://api.slack.com/robots)"


def sign(signing_secret: str, timestamp: str, body: str) -> str:
    """The ``X-Slack-Signature`` value for ``body`` sent at ``timestamp``."""
    base = f"v0:{timestamp}:{body}".encode()
    return "v0=" + hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()


@dataclass
class Delivery:
    """One request the emulator made to the bot, and what the bot answered."""

    kind: str  # event_callback, block_actions, view_submission, view_closed, slash_command, ...
    url: str
    body: str
    headers: dict[str, str]
    payload: Json
    event_id: str | None = None
    retry_num: int = 0
    status: int | None = None
    response_body: str = ""
    response_headers: dict[str, str] = field(default_factory=dict)
    elapsed: float = 0.0
    error: str | None = None  # transport failure (refused, timed out), if any

    @property
    def ok(self) -> bool:
        """The bot answered 2xx."""
        return self.status is not None and 200 <= self.status < 300

    @property
    def json(self) -> Json | None:
        """The bot's answer parsed as JSON (``None`` for an empty or non-JSON body)."""
        if not self.response_body.strip():
            return None
        try:
            parsed = json.loads(self.response_body)
        except ValueError:
            return None
        return parsed if isinstance(parsed, dict) else None

    @property
    def event_type(self) -> str | None:
        event = self.payload.get("event")
        return str(event.get("type")) if isinstance(event, dict) else None


class Deliverer:
    """Posts signed requests. Ignores proxy settings: the bot is on this machine."""

    def __init__(self, timeout: float = 10.0) -> None:
        self.timeout = timeout
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def send(
        self,
        *,
        kind: str,
        url: str,
        body: str,
        content_type: str,
        signing_secret: str,
        payload: Json,
        event_id: str | None = None,
        retry_num: int = 0,
        retry_reason: str | None = None,
        timestamp: int | None = None,
        signature: str | None = None,
    ) -> Delivery:
        ts = str(int(time.time()) if timestamp is None else timestamp)
        headers = {
            "Content-Type": content_type,
            "User-Agent": USER_AGENT,
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": signature or sign(signing_secret, ts, body),
        }
        if retry_num:
            headers["X-Slack-Retry-Num"] = str(retry_num)
            headers["X-Slack-Retry-Reason"] = retry_reason or "http_timeout"
        delivery = Delivery(
            kind=kind,
            url=url,
            body=body,
            headers=headers,
            payload=payload,
            event_id=event_id,
            retry_num=retry_num,
        )
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"the bot URL must be http(s): {url!r}")
        request = urllib.request.Request(  # noqa: S310 (scheme checked above)
            url, data=body.encode(), headers=headers, method="POST"
        )
        started = time.monotonic()
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                delivery.status = response.status
                delivery.response_headers = dict(response.headers.items())
                delivery.response_body = response.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            try:
                delivery.status = exc.code
                delivery.response_headers = dict(exc.headers.items()) if exc.headers else {}
                delivery.response_body = exc.read().decode("utf-8", "replace")
            finally:
                exc.close()
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            delivery.error = f"{type(exc).__name__}: {reason}"
        delivery.elapsed = time.monotonic() - started
        return delivery
