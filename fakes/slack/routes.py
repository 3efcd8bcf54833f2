"""The emulator's one HTTP server and its routes, on 127.0.0.1.

``/api/<method>`` is the Web API (point ``WebClient(base_url=...)`` at
:attr:`SlackEmulator.api_url`), ``/response/<id>`` the response URLs, ``/ui/...`` the
web page's JSON endpoints, ``/`` and ``/static/`` the page itself, and
``/archives/...`` the permalinks. Only transport lives here: parsing bodies, sending
answers, and handing each request to the part of the emulator that owns it.
"""

from __future__ import annotations

import contextlib
import json
import socket
import traceback
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from fakes.slack import ui
from fakes.slack.webapi import ApiResult

if TYPE_CHECKING:
    from fakes.slack.server import SlackEmulator

Json = dict[str, Any]

WEB_DIR = Path(__file__).with_name("web")
STATIC_FILES = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
}
MAX_BODY = 10 * 1024 * 1024


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], emulator: SlackEmulator) -> None:
        self.emulator = emulator
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: Server
    protocol_version = "HTTP/1.0"
    server_version = "SlackEmulator/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        serve(self.server.emulator, self, "GET")

    def do_POST(self) -> None:
        serve(self.server.emulator, self, "POST")


def serve(emu: SlackEmulator, handler: _Handler, verb: str) -> None:
    try:
        _route(emu, handler, verb)
    except (BrokenPipeError, ConnectionResetError):
        return
    except Exception:
        emu.ws.warn(f"emulator bug serving {verb} {handler.path}\n{traceback.format_exc()}")
        _send(handler, 500, {"ok": False, "error": "internal_error"})


def _route(emu: SlackEmulator, handler: _Handler, verb: str) -> None:
    parts = urlsplit(handler.path)
    path = parts.path
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    body = _read_body(handler) if verb == "POST" else b""
    content_type = (handler.headers.get("Content-Type") or "").split(";")[0].strip().lower()

    if path in ("/api/ui/state", "/ui/state") and verb == "GET":
        since = query.get("since", "")
        _send(handler, 200, ui.state(emu, query.get("user"), int(since) if since else None))
    elif path.startswith("/api/"):
        _serve_api(emu, handler, path[len("/api/") :], verb, query, body, content_type)
    elif path.startswith("/response/") and verb == "POST":
        try:
            data = _parse_body(body, content_type)
            if isinstance(data.get("payload"), str):
                data = json.loads(data["payload"])
        except ValueError:
            _send_text(handler, 400, "invalid_payload", "text/html")
            return
        status, text = emu._response_url(path[len("/response/") :], data)
        _send_text(handler, status, text, "text/html")
    elif path.startswith("/ui/") and verb == "POST":
        try:
            answer = ui.handle(emu, path, _parse_body(body, content_type))
        except (LookupError, ValueError, RuntimeError) as exc:
            _send(handler, 400, {"ok": False, "error": str(exc)})
            return
        _send(handler, 200, answer)
    elif path.startswith("/archives/") and verb == "GET":
        segments = path.split("/")
        channel = segments[2] if len(segments) > 2 else ""
        target = f"/?channel={channel}"
        if len(segments) > 3 and segments[3].startswith("p"):
            digits = segments[3][1:]
            target += f"&ts={digits[:-6]}.{digits[-6:]}"
        handler.send_response(HTTPStatus.FOUND)
        handler.send_header("Location", target)
        handler.send_header("Content-Length", "0")
        handler.end_headers()
    elif verb == "GET" and path in ("/", "/index.html", "/static/app.js", "/static/app.css"):
        name = "index.html" if path in ("/", "/index.html") else path.rsplit("/", 1)[1]
        content = (WEB_DIR / name).read_bytes()
        _send_bytes(handler, 200, content, STATIC_FILES[name], cache=False)
    elif path == "/favicon.ico":
        handler.send_response(HTTPStatus.NO_CONTENT)
        handler.send_header("Content-Length", "0")
        handler.end_headers()
    elif path == "/healthz":
        _send(handler, 200, {"ok": True})
    else:
        _send(handler, 404, {"ok": False, "error": "not_found"})


def _serve_api(
    emu: SlackEmulator,
    handler: _Handler,
    method: str,
    verb: str,
    query: dict[str, str],
    body: bytes,
    content_type: str,
) -> None:
    data: Json = dict(query)
    try:
        data.update(_parse_body(body, content_type))
    except ValueError:
        _send(handler, 200, {"ok": False, "error": "invalid_json"})
        return
    auth = handler.headers.get("Authorization") or ""
    token = auth[len("Bearer ") :].strip() if auth.startswith("Bearer ") else None
    result: ApiResult = emu.api.handle(method, data, token=token, http_method=verb)
    if result.drop or result.body is None:
        handler.close_connection = True
        with contextlib.suppress(OSError):
            handler.connection.shutdown(socket.SHUT_RDWR)
        return
    _send(handler, result.status, result.body, result.headers)


# -- helpers -------------------------------------------------------------------------------


def _read_body(handler: _Handler) -> bytes:
    length = int(handler.headers.get("Content-Length") or 0)
    if length > MAX_BODY:
        raise ValueError("request body too large")
    return handler.rfile.read(length) if length else b""


def _parse_body(body: bytes, content_type: str) -> Json:
    """A JSON or form body as a dict (``{}`` if empty); ValueError for malformed JSON."""
    if not body:
        return {}
    text = body.decode("utf-8", "replace")
    if content_type == "application/json" or (not content_type and text.lstrip().startswith("{")):
        try:
            parsed = json.loads(text)
        except ValueError:
            raise ValueError("invalid JSON body") from None
        if not isinstance(parsed, dict):
            raise ValueError("the JSON body is not an object")
        return parsed
    return dict(parse_qsl(text, keep_blank_values=True))


def _send(
    handler: _Handler, status: int, body: Json, headers: dict[str, str] | None = None
) -> None:
    _send_bytes(
        handler, status, json.dumps(body).encode(), "application/json; charset=utf-8", headers
    )


def _send_text(handler: _Handler, status: int, text: str, content_type: str) -> None:
    _send_bytes(handler, status, text.encode(), f"{content_type}; charset=utf-8")


def _send_bytes(
    handler: _Handler,
    status: int,
    content: bytes,
    content_type: str,
    headers: dict[str, str] | None = None,
    *,
    cache: bool = False,
) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(content)))
    if not cache:
        handler.send_header("Cache-Control", "no-store")
    for key, value in (headers or {}).items():
        handler.send_header(key, value)
    handler.end_headers()
    handler.wfile.write(content)
