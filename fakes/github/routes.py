"""The fake GitHub's HTTP server: authentication, injected faults, recording, dispatch.

A pull request's web page and its comment box go to :mod:`fakes.github.web` (no
token, not recorded). Every other request is authenticated first
(:mod:`fakes.github.auth`; 401 otherwise), then
may meet an injected fault (before it takes effect, or after: "did it, then answered
502"), and is then handed to git (:mod:`fakes.github.smart_http`) or to the REST and
GraphQL handlers (:mod:`fakes.github.rest`). Each one is recorded with what was
answered, the ``Authorization`` header left out.
"""

from __future__ import annotations

import json
import logging
import socket
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from fakes.github import auth, payloads, rest, smart_http, web, webhooks
from fakes.github.state import Fault, GitHubState, RecordedRequest

log = logging.getLogger(__name__)


class Server(ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True

    def __init__(self, address: tuple[str, int], state: GitHubState) -> None:
        self.state = state
        #: Open connections, so that closing the server can cut keep-alive ones.
        self.connections: set[socket.socket] = set()
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes
    server: Server

    def setup(self) -> None:
        super().setup()
        self.server.connections.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.connections.discard(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("fake github: %s", format % args)

    def do_GET(self) -> None:
        serve(self.server.state, self)

    do_POST = do_PATCH = do_PUT = do_DELETE = do_GET


def serve(state: GitHubState, handler: BaseHTTPRequestHandler) -> None:
    url = urlsplit(handler.path)
    path, query = url.path, dict(parse_qsl(url.query))
    body = _read_body(handler)
    is_git = path.startswith("/git/")
    if not is_git and web.is_page(path):  # a browser's page, not the API: no token
        status, page, content_type, headers = web.serve(
            state, handler.command.upper(), path, url.query, body
        )
        _send(handler, status, page, content_type, headers)
        webhooks.flush(state)
        return
    parsed: Any = None
    if body and not is_git:
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
    credential = auth.credential(state, handler.headers.get("Authorization"), git=is_git)
    authorized = auth.accepts(state, credential, path, git=is_git)
    method = handler.command.upper()

    def record(status: int, response: Any = None) -> None:
        headers = {k: v for k, v in handler.headers.items() if k.lower() != "authorization"}
        entry = RecordedRequest(
            method, path, query, parsed, headers, authorized, status, credential, response
        )
        with state.lock:
            state.requests.append(entry)

    if not authorized:
        if is_git:
            record(401)
            challenge = {"WWW-Authenticate": 'Basic realm="GitHub"'}
            _send(handler, 401, b"Authentication required\n", "text/plain", challenge)
        else:
            refused = payloads.error(401, "Bad credentials")
            record(401, refused)
            _send_json(handler, 401, refused)
        return
    fault = state.take_fault(method, path)
    if fault is not None and not fault.after:
        record(fault.status, _fault_body(fault, is_git))
        _send_fault(handler, fault, is_git)
        return
    if is_git:
        status, payload, content_type, headers = smart_http.serve(
            state, handler, path, url.query, body
        )
        if fault is not None:
            record(fault.status)
            _send_fault(handler, fault, is_git)
        else:
            record(status)
            _send(handler, status, payload, content_type, headers)
        return
    try:
        status, data, extra = rest.handle(state, method, path, query, parsed)
    except Exception:
        log.exception("fake github: %s %s failed", method, path)
        status, data, extra = 500, payloads.error(500, "fake github crashed"), {}
    if fault is not None:
        record(fault.status, _fault_body(fault, is_git))
        _send_fault(handler, fault, is_git)
    else:
        record(status, data)
        _send_json(handler, status, data, extra)
    webhooks.flush(state)


def _fault_body(fault: Fault, is_git: bool) -> Any:
    return None if is_git else payloads.error(fault.status, fault.message)


def _send_fault(handler: BaseHTTPRequestHandler, fault: Fault, is_git: bool) -> None:
    headers = {} if fault.retry_after is None else {"Retry-After": f"{fault.retry_after:g}"}
    if is_git:
        _send(handler, fault.status, f"{fault.message}\n".encode(), "text/plain", headers)
    else:
        _send_json(handler, fault.status, _fault_body(fault, is_git), headers)


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        chunks: list[bytes] = []
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length) if length else b""


def _send(
    handler: BaseHTTPRequestHandler,
    status: int,
    payload: bytes,
    content_type: str,
    headers: dict[str, str] | None = None,
) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(payload)))
    for key, value in (headers or {}).items():
        if key.lower() not in ("content-length", "content-type"):
            handler.send_header(key, value)
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(payload)


def _send_json(
    handler: BaseHTTPRequestHandler,
    status: int,
    data: Any,
    headers: dict[str, str] | None = None,
) -> None:
    payload = json.dumps(data).encode()
    _send(handler, status, payload, "application/json; charset=utf-8", headers)
