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
    """The outcome of one command. Output is bounded: head and tail kept, middle cut."""

    exit_code: int
    stdout: str
    stderr: str
    duration: float
    timed_out: bool = False
    oom_killed: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out and not self.oom_killed


@runtime_checkable
class Sandbox(Protocol):
    """A workspace plus a place to run commands in it.

    Paths given to file methods are relative to the workspace root.
    """

    run_id: str

    def start(self) -> None: ...

    def exec(
        self,
        cmd: str | Sequence[str],
        timeout: float | None = None,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> ExecResult: ...

    def read_file(self, path: str) -> bytes: ...

    def write_file(self, path: str, data: bytes, mode: int | None = None) -> None: ...

    def list_files(self, path: str = ".", limit: int = 10_000) -> list[str]: ...

    def export_patch(self) -> bytes: ...

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
