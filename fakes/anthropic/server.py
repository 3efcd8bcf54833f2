"""A fake Messages API: a real HTTP server on 127.0.0.1 that answers with scripted replies.

Tests drive the real ``anthropic`` SDK against it (nothing in the SDK is mocked), and
``python -m cli.record_agent --script`` uses it to record a transcript offline. It is
not a model: it hands out its replies (:mod:`fakes.anthropic.script`) in order, whatever
it is asked, and keeps every request it received, and every answer it sent, so tests can
inspect what went over the wire.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from fakes.anthropic.payloads import REQUEST_ID, error_body, message_body
from fakes.anthropic.script import Disconnect, Failure, Reply
from process.lifecycle import Lifecycle


@dataclass(frozen=True)
class Received:
    """One request as it arrived: path, headers (lower-cased names) and JSON body."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]


class FakeMessagesAPI(Lifecycle):
    """``POST /v1/messages`` with scripted replies, in order.

    With ``api_key`` set, a request carrying another key gets a 401 like the real API's.
    When the script runs out the server answers 400, so a run that asks for more than
    was scripted fails loudly instead of hanging.
    """

    def __init__(
        self,
        replies: Iterable[Reply] = (),
        *,
        api_key: str | None = None,
        on_request: Callable[[Received], None] | None = None,
    ) -> None:
        self.api_key = api_key
        self.on_request = on_request
        self.requests: list[Received] = []
        #: (status, JSON body) of every answer sent, in order; a disconnect sends none.
        self.answers: list[tuple[int, dict[str, Any]]] = []
        self._replies = list(replies)
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def add(self, *replies: Reply) -> None:
        with self._lock:
            self._replies.extend(replies)

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the fake Messages API is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [received.body for received in self.requests]

    def start(self) -> Self:
        handler = type("Handler", (_Handler,), {"api": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},  # shutdown() waits for one poll
            name="fake-messages-api",
            daemon=True,
        )
        self._thread.start()
        return self

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def record_answer(self, status: int, body: dict[str, Any]) -> None:
        with self._lock:
            self.answers.append((status, body))

    def reply_to(self, received: Received) -> Reply:
        """Record the request and take the next reply (under the lock)."""
        with self._lock:
            self.requests.append(received)
            number = len(self.requests)
            if self.api_key is not None and _key(received.headers) != self.api_key:
                return Failure(401, "authentication_error", "invalid x-api-key")
            if not self._replies:
                return Failure(
                    400,
                    "invalid_request_error",
                    f"fake Messages API: no scripted reply left for request {number}",
                )
            reply = self._replies.pop(0)
        if isinstance(reply, dict):
            reply = message_body(reply, number=number, model=received.body.get("model", "unknown"))
        return reply


class _Handler(BaseHTTPRequestHandler):
    api: FakeMessagesAPI

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            self._send(400, error_body("invalid_request_error", "the body is not JSON"))
            return
        if self.path.split("?")[0] != "/v1/messages":
            self._send(404, error_body("not_found_error", f"no route {self.path}"))
            return
        received = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
        if self.api.on_request is not None:
            self.api.on_request(received)
        reply = self.api.reply_to(received)
        if isinstance(reply, Disconnect):
            self.close_connection = True
            return
        if isinstance(reply, Failure):
            self._send(reply.status, error_body(reply.error_type, reply.message), reply.headers)
            return
        self._send(200, reply)

    def _send(
        self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        self.api.record_answer(status, payload)
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.send_header("request-id", REQUEST_ID)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read ``requests`` instead of the access log."""


def _key(headers: dict[str, str]) -> str | None:
    """The API key a request carries: ``x-api-key``, or a bearer token (newer SDKs)."""
    bearer = headers.get("authorization", "")
    return headers.get("x-api-key") or (bearer[7:] if bearer.startswith("Bearer ") else None)
