"""The Web API's front desk: authentication, failure injection, rate limits, dispatch.

Each call is recorded (:class:`ApiCall`) with a monotonic timestamp, so tests can
check what the bot sent and how often. :meth:`WebApi.fail_next` injects failures
(429 with ``Retry-After``, 5xx, an error code, or a dropped connection) and
:meth:`WebApi.rate_limit` turns on a per-method, per-channel rate limit;
:meth:`WebApi.hold_next` holds a call until the test releases it. The methods
themselves are in :mod:`fakes.slack.api_chat`, :mod:`fakes.slack.api_conversations`
and :mod:`fakes.slack.api_views`.
"""

from __future__ import annotations

import math
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

from fakes.slack import api_chat, api_conversations, api_views
from fakes.slack.api_chat import Method
from fakes.slack.args import ApiError, Args, decoded, str_or_none
from fakes.slack.state import Workspace

Json = dict[str, Any]

SCOPES = (
    "app_mentions:read,channels:history,channels:read,chat:write,commands,groups:history,"
    "im:history,im:write,reactions:read,reactions:write,users:read"
)


@dataclass
class ApiCall:
    """One Web API request the bot made, and how the emulator answered it."""

    method: str
    args: Json
    at: float  # time.monotonic() when it arrived
    http_method: str = "POST"
    status: int = 200
    ok: bool = False
    error: str | None = None
    response: Json | None = None
    injected: bool = False  # answered by fail_next / rate_limit, not by the method
    warnings: list[str] = field(default_factory=list)


@dataclass
class ApiResult:
    status: int
    body: Json | None  # None with drop=True: close the connection without answering
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False


@dataclass
class _Failure:
    method: str
    remaining: int
    status: int
    error: str
    retry_after: float | None
    drop: bool


@dataclass
class Hold:
    """A call held by :meth:`WebApi.hold_next`: ``arrived`` is set when it comes in, and
    it is answered only once :meth:`release` is called (or after ``timeout``)."""

    method: str
    timeout: float
    arrived: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)

    def release(self) -> None:
        self.released.set()


@dataclass
class _RateLimit:
    interval: float
    burst: int
    by_channel: bool
    buckets: dict[str, tuple[float, float]] = field(default_factory=dict)  # key -> tokens, at


class WebApi:
    """Serves ``/api/<method>`` against a :class:`Workspace`."""

    def __init__(self, ws: Workspace, *, bot_token: str) -> None:
        self.ws = ws
        self.bot_token = bot_token
        self.calls: list[ApiCall] = []
        self._failures: list[_Failure] = []
        self._holds: list[Hold] = []
        self._limits: dict[str, _RateLimit] = {}
        self._lock = threading.Lock()
        self._methods: dict[str, Method] = {
            **api_chat.METHODS,
            **api_conversations.METHODS,
            **api_views.METHODS,
        }

    @property
    def base_url(self) -> str:
        """The workspace's address; the server sets it once it listens."""
        return self.ws.url

    @base_url.setter
    def base_url(self, url: str) -> None:
        self.ws.url = url

    @property
    def trigger_ttl(self) -> float:
        return self.ws.trigger_ttl

    @trigger_ttl.setter
    def trigger_ttl(self, seconds: float) -> None:
        self.ws.trigger_ttl = seconds

    @property
    def methods(self) -> list[str]:
        return sorted(self._methods)

    # -- failure injection -----------------------------------------------------------

    def fail_next(
        self,
        method: str,
        *,
        error: str | None = None,
        status: int | None = None,
        retry_after: float | None = None,
        count: int = 1,
        drop: bool = False,
    ) -> None:
        if status is None:
            status = 429 if retry_after is not None else 200
        if error is None:
            error = {429: "ratelimited"}.get(status, "internal_error" if status >= 500 else "")
            if not error and not drop:
                raise ValueError("fail_next: give an error, a non-200 status, or drop=True")
        if status == 429 and retry_after is None:
            retry_after = 1
        with self._lock:
            self._failures.append(_Failure(method, count, status, error, retry_after, drop))

    def hold_next(self, method: str, *, timeout: float = 10.0) -> Hold:
        """Hold the next call of ``method`` that is not answered by :meth:`fail_next`,
        before it is served, until released: stops a client mid-call deterministically."""
        hold = Hold(method, timeout)
        with self._lock:
            self._holds.append(hold)
        return hold

    def _wait_if_held(self, method: str) -> None:
        with self._lock:
            hold = next((h for h in self._holds if h.method == method), None)
            if hold is not None:
                self._holds.remove(hold)
        if hold is not None:
            hold.arrived.set()
            self.ws.touch()
            hold.released.wait(hold.timeout)

    def rate_limit(
        self, method: str, *, per_seconds: float = 1.0, burst: int = 1, by_channel: bool = True
    ) -> None:
        """Answer 429 with ``Retry-After`` when ``method`` is called more than ``burst``
        times per ``per_seconds`` (per channel, unless ``by_channel=False``)."""
        with self._lock:
            self._limits[method] = _RateLimit(per_seconds, burst, by_channel)

    def _take_failure(self, method: str) -> _Failure | None:
        with self._lock:
            for failure in self._failures:
                if failure.remaining > 0 and failure.method in (method, "*"):
                    failure.remaining -= 1
                    return failure
            return None

    def _rate_limited(self, method: str, args: Json) -> float | None:
        with self._lock:
            limit = self._limits.get(method)
            if limit is None:
                return None
            key = str(args.get("channel", "")) if limit.by_channel else ""
            now = time.monotonic()
            tokens, at = limit.buckets.get(key, (float(limit.burst), now))
            tokens = min(float(limit.burst), tokens + (now - at) * limit.burst / limit.interval)
            if tokens >= 1.0:
                limit.buckets[key] = (tokens - 1.0, now)
                return None
            limit.buckets[key] = (tokens, now)
            return (1.0 - tokens) * limit.interval / limit.burst

    # -- dispatch --------------------------------------------------------------------

    def handle(self, method: str, data: Json, *, token: str | None, http_method: str) -> ApiResult:
        at = time.monotonic()
        data = dict(data)
        token = token or str_or_none(data.pop("token", None))
        call = ApiCall(method=method, args=decoded(data), at=at, http_method=http_method)
        result = self._dispatch(method, data, token, call)
        call.status = result.status
        call.response = result.body
        if result.body is not None:
            call.ok = bool(result.body.get("ok"))
            call.error = result.body.get("error")
        else:
            call.error = "connection dropped"
        with self.ws.lock:
            self.calls.append(call)
            self.ws.touch()
        return result

    def _dispatch(self, method: str, data: Json, token: str | None, call: ApiCall) -> ApiResult:
        failure = self._take_failure(method)
        if failure is not None:
            call.injected = True
            if failure.drop:
                return ApiResult(status=0, body=None, drop=True)
            headers = {}
            if failure.retry_after is not None:
                headers["Retry-After"] = str(math.ceil(failure.retry_after))
            return ApiResult(failure.status, {"ok": False, "error": failure.error}, headers)
        self._wait_if_held(method)
        if not token:
            return ApiResult(200, {"ok": False, "error": "not_authed"})
        if token != self.bot_token:
            return ApiResult(200, {"ok": False, "error": "invalid_auth"})
        handler = self._methods.get(method)
        if handler is None:
            self.ws.warn(f"{method}: the emulator does not serve this method (unknown_method)")
            return ApiResult(200, {"ok": False, "error": "unknown_method", "req_method": method})
        wait = self._rate_limited(method, data)
        if wait is not None:
            call.injected = True
            retry = str(max(1, math.ceil(wait)))
            return ApiResult(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": retry})
        headers = {"X-OAuth-Scopes": SCOPES, "X-Accepted-OAuth-Scopes": ""}
        try:
            with self.ws.lock:
                body: Json = {"ok": True}
                body.update(handler(self.ws, Args(data), call.warnings))
                self.ws.touch()
        except ApiError as exc:
            return ApiResult(
                exc.status, {"ok": False, "error": exc.error, **exc.extra}, headers | exc.headers
            )
        except Exception:
            self.ws.warn(f"{method}: emulator bug\n{traceback.format_exc()}")
            return ApiResult(500, {"ok": False, "error": "internal_error"})
        if call.warnings:
            body["warning"] = ",".join(call.warnings)
            body["response_metadata"] = {"warnings": list(call.warnings)}
        return ApiResult(200, body, headers)
