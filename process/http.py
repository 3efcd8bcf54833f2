"""The HTTP server of both roles: uvicorn (ASGI), with limits against hostile clients.

The bot's HTTP mode (``/slack/events``) and the ``/healthz`` and ``/metrics`` endpoints
face whoever can reach the port, so the server bounds what one client can hold:

- the request line and headers must arrive within ``head_seconds`` of the connection
  (or of the previous response), however slowly they trickle in; h11 caps their size;
- a body is refused (413) from its ``Content-Length`` alone when it is over the cap,
  and a chunked one as soon as it grows past it; the whole body must arrive within
  ``body_seconds`` (408);
- an idle keep-alive connection is closed after ``idle_seconds``;
- past ``max_connections`` open connections, requests get 503.

Connections cost a coroutine, not a thread: only a request that passed these checks
reaches a thread (the WSGI endpoints here, bolt's dispatch in :mod:`bot.http`).
"""

from __future__ import annotations

import asyncio
import io
import logging
import socket
import sys
import threading
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass
from typing import Any, Self

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Asgi = Callable[[Scope, Receive, Send], Awaitable[None]]
StartResponse = Callable[..., Any]
Wsgi = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

#: Slack's payloads are a few kilobytes; a mention is at most 40,000 characters.
MAX_BODY_BYTES = 1024 * 1024


@dataclass(frozen=True)
class HttpLimits:
    max_body_bytes: int = MAX_BODY_BYTES
    head_seconds: float = 10.0
    body_seconds: float = 10.0
    idle_seconds: float = 5.0
    max_connections: int = 500


class Refused(Exception):
    """A request answered with ``status`` and a one-line ``reason``, before any parsing."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class ClientGone(Exception):
    """The client hung up before its request was complete."""


class _HeadDeadline(H11Protocol):
    """uvicorn's h11 protocol, plus a deadline on each request's head.

    uvicorn's keep-alive timer stops at the first byte a client sends, so a client that
    sends one byte now and then (or nothing after connecting) would hold the connection
    for ever. Here the head must be complete within ``head_seconds``.
    """

    head_seconds = HttpLimits.head_seconds

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def _arm(self) -> None:
        self._waiting_for = self.cycle
        self._deadline: asyncio.TimerHandle | None = self.loop.call_later(
            self.head_seconds, self._expire
        )

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            log.info(
                "http: closed a connection whose request head took over %gs", self.head_seconds
            )
            self.transport.close()

    def handle_events(self) -> None:
        super().handle_events()
        if self.cycle is not self._waiting_for:  # a new request's head is complete
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._disarm()
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def header(scope: Scope, name: bytes) -> bytes | None:
    """The value of one request header (the first, if repeated); ``name`` lower-case."""
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value)
    return None


async def read_body(scope: Scope, receive: Receive, limits: HttpLimits) -> bytes:
    """The request body, bounded in size and time; :class:`Refused` (413, 408) or
    :class:`ClientGone` otherwise. An oversized body is refused from its declared length,
    before a byte of it is read."""
    declared = header(scope, b"content-length")
    # h11 has already refused a malformed Content-Length (400), or one over 20 digits.
    if declared is not None and int(declared) > limits.max_body_bytes:
        raise Refused(413, f"body of {int(declared):,} bytes is over the limit")
    chunks: list[bytes] = []
    size = 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limits.body_seconds
    while True:
        try:
            async with asyncio.timeout_at(deadline):
                message = await receive()
        except TimeoutError:
            raise Refused(408, f"body not complete within {limits.body_seconds:g}s") from None
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = bytes(message.get("body", b""))
        size += len(chunk)
        if size > limits.max_body_bytes:
            raise Refused(413, "body is over the limit")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def respond(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes = b"text/plain; charset=utf-8",
    headers: Iterable[tuple[bytes, bytes]] = (),
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def from_wsgi(app: Wsgi) -> Asgi:
    """A WSGI app without request bodies (``/healthz``, ``/metrics``) served over ASGI,
    each call on a thread (it may wait on Redis)."""

    async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
        environ: dict[str, Any] = {
            "REQUEST_METHOD": scope["method"],
            "SCRIPT_NAME": "",
            "PATH_INFO": scope["path"],
            "QUERY_STRING": bytes(scope.get("query_string", b"")).decode("latin-1"),
            "SERVER_NAME": (scope.get("server") or ("localhost", 0))[0],
            "SERVER_PORT": str((scope.get("server") or ("localhost", 0))[1]),
            "SERVER_PROTOCOL": f"HTTP/{scope.get('http_version', '1.1')}",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": scope.get("scheme", "http"),
            "wsgi.input": io.BytesIO(b""),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        for key, value in scope.get("headers", ()):
            name = key.decode("latin-1").upper().replace("-", "_")
            if name not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                name = f"HTTP_{name}"
            environ[name] = value.decode("latin-1")
        started: list[Any] = []

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Any:
            started[:] = [status, headers]
            return lambda data: None

        def call() -> bytes:
            result = app(environ, start_response)
            try:
                return b"".join(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()

        body = await asyncio.to_thread(call)
        status, headers = started
        await send(
            {
                "type": "http.response.start",
                "status": int(status.split()[0]),
                "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return asgi


class HttpServer:
    """uvicorn serving ``app`` on ``host:port`` (0: any free port) with ``limits``.

    :meth:`serve_forever` blocks (on the main thread it stops on SIGINT or SIGTERM);
    :meth:`start` serves from a daemon thread, and :meth:`stop` ends either.
    """

    def __init__(self, app: Asgi, host: str, port: int, limits: HttpLimits | None = None) -> None:
        self.limits = limits or HttpLimits()
        protocol = type(
            "HeadDeadline", (_HeadDeadline,), {"head_seconds": self.limits.head_seconds}
        )
        self.config = uvicorn.Config(
            app,
            http=protocol,
            lifespan="off",
            ws="none",
            log_config=None,
            access_log=False,
            timeout_keep_alive=max(1, round(self.limits.idle_seconds)),
            limit_concurrency=self.limits.max_connections,
            timeout_graceful_shutdown=5,
            h11_max_incomplete_event_size=16 * 1024,
            server_header=False,
        )
        self.server = uvicorn.Server(self.config)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.socket = socket.socket(family, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind((host, port))
        self.socket.listen(128)
        self.socket.set_inheritable(False)
        self._thread: threading.Thread | None = None
        self._served = False

    @property
    def port(self) -> int:
        return int(self.socket.getsockname()[1])

    def serve_forever(self) -> None:
        self._served = True
        try:
            self.server.run(sockets=[self.socket])
        finally:
            self.socket.close()

    def start(self) -> Self:
        self._thread = threading.Thread(target=self.serve_forever, name="http", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the server to finish; wait for it when :meth:`start` served it. The socket
        is closed by :meth:`serve_forever` on its way out (at once, if it never ran)."""
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=timeout)
        if not self._served:
            self.socket.close()
