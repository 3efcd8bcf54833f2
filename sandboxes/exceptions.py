"""Every error the sandboxes package raises.

Per-run errors carry the run id so a caller can attribute them without parsing text;
image and cache errors are about the worker's own state and carry none.
"""

from __future__ import annotations

from core.exceptions import AgentsError


class SandboxError(AgentsError):
    """Something went wrong with one run's sandbox."""

    def __init__(self, run_id: str, message: str) -> None:
        self.run_id = run_id
        self.message = message
        super().__init__(f"sandbox for run {run_id}: {message}")


class SandboxStartFailed(SandboxError):
    """The sandbox could not be created: no engine, no image, or the engine refused."""


class CommandTimeout(SandboxError):
    """The client stopped waiting for a command whose in-sandbox timeout did not end it.

    A command that the sandbox killed on time is not an error: its
    :class:`~sandboxes.protocol.ExecResult` has ``timed_out`` set instead.
    """


class SandboxGone(SandboxError):
    """The sandbox no longer exists: closed, reaped, expired or removed by someone else."""


class ImageBuildFailed(AgentsError):
    """Building the base or the sandbox image failed; the message says which step."""


class RepoCacheError(AgentsError):
    """A repository mirror could not be created, refreshed or read."""
