"""Who started a sandbox, written on its labels, so a reaper can tell if that process died.

An owner is ``host:pid`` plus a process token ``boot_id/pid_namespace/start_time``. The
token guards against pid reuse (the start time differs) and against judging a pid
that belongs to another pid namespace or another boot of the machine. When the token
does not match ours, liveness cannot be known here and only expiry counts.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

_PROC = Path("/proc")


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def process_start_time(pid: int, proc: Path = _PROC) -> str:
    """The process's start time in clock ticks since boot, or "" if it does not exist
    or is a zombie (dead, only waiting for its parent to collect its exit status)."""
    stat = _read(proc / str(pid) / "stat")
    # The command name (field 2) may hold spaces and parentheses: split after the last ")".
    fields = stat.rpartition(")")[2].split()
    if len(fields) <= 19 or fields[0] in ("Z", "X"):
        return ""
    return fields[19]


def machine_token(proc: Path = _PROC) -> str:
    """``boot_id/pid_namespace``: equal only for processes that can see each other's pids."""
    boot = _read(proc / "sys" / "kernel" / "random" / "boot_id")
    try:
        namespace = os.readlink(proc / "self" / "ns" / "pid")
    except OSError:
        namespace = ""
    return f"{boot}/{namespace}"


@dataclass(frozen=True)
class Owner:
    host: str
    pid: int
    token: str

    @classmethod
    def current(cls) -> Owner:
        pid = os.getpid()
        return cls(
            host=socket.gethostname(),
            pid=pid,
            token=f"{machine_token()}/{process_start_time(pid)}",
        )

    @property
    def label(self) -> str:
        return f"{self.host}:{self.pid}"

    @classmethod
    def from_labels(cls, owner: str, token: str) -> Owner | None:
        host, _, pid = owner.rpartition(":")
        if not host or not (pid.isascii() and pid.isdigit()):
            return None
        return cls(host=host, pid=int(pid), token=token)

    def is_alive(self) -> bool | None:
        """True or False when this process can tell; None for owners it cannot see."""
        machine, _, started = self.token.rpartition("/")
        if self.host != socket.gethostname() or machine != machine_token() or not started:
            return None
        return process_start_time(self.pid) == started
