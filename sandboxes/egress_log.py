"""Reading the egress proxy's access log: which hosts one sandbox reached, and which not.

The proxy writes one line per request on stdout (``logformat agents`` in
``images/egress-proxy/squid.conf``)::

    agents-egress 1717171717 10.213.4.3 CONNECT pypi.org 443 TCP_TUNNEL 200

Only lines with the marker, from the sandbox's address, at or after the time it was
admitted count; anything else on the stream (Squid's own messages) is skipped. The
input is the proxy's log, which a sandbox's requests partly shape, so it is read
bounded: at most :data:`MAX_LINES` lines and :data:`MAX_LINE` bytes each.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from runs.artifacts import MAX_EGRESS_HOSTS, EgressReport

MARKER = "agents-egress"
MAX_LINES = 100_000
MAX_LINE = 2048


@dataclass(frozen=True)
class AccessEntry:
    at: int
    client: str
    method: str
    host: str
    port: str
    result: str
    status: int

    @property
    def denied(self) -> bool:
        return self.result.startswith("TCP_DENIED")

    @property
    def failed(self) -> bool:
        """Allowed, but the proxy could not reach the server (DNS, refused, timeout)."""
        return not self.denied and self.status >= 500


def parse_access_line(line: str | bytes) -> AccessEntry | None:
    """One access-log line, or None when it is not one (or is malformed)."""
    if isinstance(line, bytes):
        line = line[:MAX_LINE].decode("utf-8", errors="replace")
    words = line[:MAX_LINE].split()
    if len(words) != 8 or words[0] != MARKER:
        return None
    _, at, client, method, host, port, result, status = words
    if not at.isdigit() or not status.isdigit() or host == "-":
        return None
    return AccessEntry(int(at), client, method, host.lower(), port, result, int(status))


def summarize_access(lines: Iterable[str | bytes], client: str, since: int) -> EgressReport:
    """What ``client`` asked the proxy for from ``since`` (Unix seconds) on."""
    reached: set[str] = set()
    denied: set[str] = set()
    failed: set[str] = set()
    requests = 0
    truncated = False
    for index, line in enumerate(lines):
        if index >= MAX_LINES:
            truncated = True
            break
        entry = parse_access_line(line)
        if entry is None or entry.client != client or entry.at < since:
            continue
        requests += 1
        bucket = denied if entry.denied else failed if entry.failed else reached
        bucket.add(entry.host)
    failed -= reached  # one failed attempt among successful ones is not a failure

    def bounded(hosts: set[str]) -> list[str]:
        nonlocal truncated
        if len(hosts) > MAX_EGRESS_HOSTS:
            truncated = True
        return sorted(hosts)[:MAX_EGRESS_HOSTS]

    return EgressReport(
        reached=bounded(reached),
        denied=bounded(denied),
        failed=bounded(failed),
        requests=requests,
        truncated=truncated,
    )
