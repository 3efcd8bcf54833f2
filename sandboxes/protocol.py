"""The small interface every sandbox backend implements.

The agent loop and the blueprint talk only to this protocol, so a Docker sandbox, a
local development sandbox and a test fake are interchangeable.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol, Self, runtime_checkable


@dataclass(frozen=True)
class ExecResult:
    """The outcome of one command. Output is bounded: head and tail kept, middle cut.

    When bytes were cut, the text holds a marker ``[... N bytes cut ...]`` where they
    were, and ``stdout_truncated`` / ``stderr_truncated`` say how many (0 when none).
    ``timed_out`` means the sandbox killed the command when its timeout passed (the
    exit code is then 124); ``oom_killed`` means the kernel's OOM killer ended a
    process while the command ran.
    """

    exit_code: int
    stdout: str
    stderr: str
    duration: float
    timed_out: bool = False
    oom_killed: bool = False
    stdout_truncated: int = 0
    stderr_truncated: int = 0

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out and not self.oom_killed


@runtime_checkable
class Sandbox(Protocol):
    """A workspace plus a place to run commands in it.

    Paths given to file methods are relative to the workspace root; absolute paths and
    ``..`` that leaves the workspace raise ``ValueError``. File methods raise the usual
    ``FileNotFoundError`` and ``IsADirectoryError``. Anything wrong with the sandbox
    itself raises :class:`~process.exceptions.SandboxError` or a subclass:
    ``SandboxStartFailed``, ``CommandTimeout`` (the sandbox stopped answering),
    ``SandboxGone`` (closed, expired or removed).
    """

    run_id: str

    def start(self) -> None:
        """Create the sandbox and put the workspace in. Idempotent."""
        ...

    def exec(
        self,
        cmd: str | Sequence[str],
        timeout: float | None = None,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> ExecResult:
        """Run a command (a string runs under ``sh -c``) in the workspace or ``cwd``.

        ``env`` is added to a fixed minimal environment; nothing is inherited from the
        caller. A command still running after ``timeout`` seconds is killed, with the
        processes it started, and comes back with ``timed_out`` set.
        """
        ...

    def read_file(self, path: str) -> bytes: ...

    def write_file(self, path: str, data: bytes, mode: int | None = None) -> None:
        """Create or replace a file and its parent directories; ``mode`` None keeps an
        existing file's mode (0644 for a new one)."""
        ...

    def list_files(self, path: str = ".", limit: int = 10_000) -> list[str]:
        """Files and symlinks under ``path``, workspace-relative and sorted, without
        ``.git``; at most ``limit``."""
        ...

    def export_patch(self) -> bytes:
        """A binary git patch from the base commit to the workspace as it is now."""
        ...

    def close(self) -> None:
        """Destroy the sandbox and its workspace. Safe to call twice."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
