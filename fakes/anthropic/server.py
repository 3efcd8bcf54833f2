"""A fake Messages API: a real HTTP server on 127.0.0.1 that answers with scripted replies.

Tests drive the real ``anthropic`` SDK against it (nothing in the SDK is mocked), and
``python -m cli.record_agent --script`` uses it to record a transcript offline. It is
not a model: it hands out its replies in order, whatever it is asked, and keeps every
request it received so tests can inspect what went over the wire.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self

from process.lifecycle import Lifecycle

Block = dict[str, Any]


@dataclass(frozen=True)
class Failure:
    """An error response, e.g. ``Failure(429, "rate_limit_error", headers={...})``."""

    status: int
    error_type: str
    message: str = "scripted failure"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Disconnect:
    """Close the connection without answering, as a network failure would."""


Reply = dict[str, Any] | Failure | Disconnect


def text(value: str) -> Block:
    return {"type": "text", "text": value}


def tool_use(id: str, name: str, input: dict[str, Any]) -> Block:
    return {"type": "tool_use", "id": id, "name": name, "input": input}


def message(
    *content: Block,
    stop_reason: str | None = None,
    input_tokens: int = 100,
    output_tokens: int = 20,
    cache_read_tokens: int = 0,
    cache_write_tokens: int = 0,
) -> dict[str, Any]:
    """A reply body. The stop reason defaults to ``tool_use`` if it calls tools."""
    if stop_reason is None:
        calls = any(block.get("type") == "tool_use" for block in content)
        stop_reason = "tool_use" if calls else "end_turn"
    return {
        "content": list(content),
        "stop_reason": stop_reason,
        "usage": {
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "cache_read_input_tokens": cache_read_tokens,
            "cache_creation_input_tokens": cache_write_tokens,
        },
    }


def load_script(path: Path) -> list[Reply]:
    """Replies from a JSON file: a list of reply bodies (as :func:`message` makes them),
    ``{"status": 429, "error_type": "rate_limit_error", ...}`` failures, or
    ``{"disconnect": true}``."""
    replies: list[Reply] = []
    for item in json.loads(path.read_text(encoding="utf-8")):
        if "status" in item:
            replies.append(Failure(**item))
        elif item.get("disconnect"):
            replies.append(Disconnect())
        else:
            replies.append(item)
    return replies


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
            reply = {
                "id": f"msg_fake_{number:03d}",
                "type": "message",
                "role": "assistant",
                "model": received.body.get("model", "unknown"),
                "stop_sequence": None,
                **reply,
            }
        return reply


class _Handler(BaseHTTPRequestHandler):
    api: FakeMessagesAPI

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            self._send(400, {"type": "error", "error": {"type": "invalid_request_error"}})
            return
        if self.path.split("?")[0] != "/v1/messages":
            self._send(404, _error("not_found_error", f"no route {self.path}"))
            return
        received = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
        if self.api.on_request is not None:
            self.api.on_request(received)
        reply = self.api.reply_to(received)
        if isinstance(reply, Disconnect):
            self.close_connection = True
            return
        if isinstance(reply, Failure):
            self._send(reply.status, _error(reply.error_type, reply.message), reply.headers)
            return
        self._send(200, reply)

    def _send(
        self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.send_header("request-id", "req_fake")
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


def _error(kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}}
