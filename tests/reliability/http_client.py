"""Raw HTTP for the hostile-request tests: bytes on a socket, so a test can send what no
well-behaved client would (a malformed Content-Length, half a request, invalid UTF-8),
and read whatever comes back, including nothing."""

from __future__ import annotations

import hashlib
import hmac
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

#: How long a test waits for an answer before calling the server hung (a bound against
#: a hang, not a timing assertion).
PATIENCE = 30.0


@dataclass(frozen=True)
class Answer:
    status: int | None  # None: the server closed the connection without answering
    body: bytes


def sign_bytes(secret: str, timestamp: str, body: bytes) -> str:
    """Slack's v0 signature over raw bytes (any bytes, valid UTF-8 or not)."""
    base = b"v0:" + timestamp.encode("latin-1") + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def signed_headers(secret: str, body: bytes, timestamp: str | None = None) -> dict[str, str]:
    ts = timestamp if timestamp is not None else str(int(time.time()))
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sign_bytes(secret, ts, body)}


def request_bytes(
    url: str, body: bytes, headers: dict[str, str], *, content_length: str | None = None
) -> bytes:
    parts = urlsplit(url)
    lines = [f"POST {parts.path} HTTP/1.1", f"Host: {parts.netloc}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    lines.append(f"Content-Length: {len(body) if content_length is None else content_length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def exchange(url: str, raw: bytes, *, patience: float = PATIENCE) -> Answer:
    """Send ``raw`` whole, then read until the server closes the connection."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=patience) as sock:
        sock.sendall(raw)
        return read_answer(sock)


def read_answer(sock: socket.socket) -> Answer:
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    if not data:
        return Answer(None, b"")
    head, _, body = data.partition(b"\r\n\r\n")
    return Answer(int(head.split(b" ", 2)[1]), body)


def post(
    url: str,
    body: bytes,
    content_type: str,
    *,
    secret: str | None,
    timestamp: str | None = None,
    content_length: str | None = None,
) -> Answer:
    headers = {"Content-Type": content_type}
    if secret is not None:
        headers.update(signed_headers(secret, body, timestamp))
    return exchange(url, request_bytes(url, body, headers, content_length=content_length))
