"""git's smart HTTP protocol, served by ``git http-backend`` over a bare repository.

A repository added with ``bare=`` is cloned, fetched and pushed at
``/git/<owner>/<name>.git``; the request is handed to git's own CGI program, so what
the product's git does against the fake is what it does against any git server.
"""

from __future__ import annotations

import os
import re
import subprocess
from http.server import BaseHTTPRequestHandler

from fakes.github.state import GitHubState


def serve(
    state: GitHubState, handler: BaseHTTPRequestHandler, path: str, query: str, body: bytes
) -> tuple[int, bytes, str, dict[str, str]]:
    """(status, body, content type, headers) of git's answer."""
    match = re.fullmatch(r"/git/([^/]+/[^/]+?)\.git(/.*)", path)
    repo = state.repos.get(match.group(1)) if match else None
    if match is None or repo is None or repo.bare is None:
        return 404, b"Repository not found\n", "text/plain", {}
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "GIT_PROJECT_ROOT": str(repo.bare.parent),
        "GIT_HTTP_EXPORT_ALL": "1",
        "PATH_INFO": f"/{repo.bare.name}{match.group(2)}",
        "REQUEST_METHOD": handler.command,
        "QUERY_STRING": query,
        "CONTENT_TYPE": handler.headers.get("Content-Type", ""),
        "CONTENT_LENGTH": str(len(body)),
        "REMOTE_USER": "x-access-token",
        "REMOTE_ADDR": "127.0.0.1",
    }
    if handler.headers.get("Git-Protocol"):
        env["GIT_PROTOCOL"] = handler.headers["Git-Protocol"]
    if handler.headers.get("Content-Encoding"):
        env["HTTP_CONTENT_ENCODING"] = handler.headers["Content-Encoding"]
    proc = subprocess.run(
        ["git", "http-backend"],
        input=body,
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    raw = proc.stdout
    head, sep, payload = raw.partition(b"\r\n\r\n")
    if not sep:
        head, _, payload = raw.partition(b"\n\n")
    status, content_type, headers = 200, "application/octet-stream", {}
    for line in head.decode("latin-1").splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key.lower() == "status":
            status = int(value.split()[0])
        elif key.lower() == "content-type":
            content_type = value
        elif key:
            headers[key] = value
    if proc.returncode != 0 and not raw:
        status, payload = 500, proc.stderr
    return status, payload, content_type, headers
