"""Every error the shared core raises, in one flat module."""

from __future__ import annotations


class AgentsError(Exception):
    """Base class for errors raised by this project."""


class SettingsError(AgentsError):
    """A setting is missing or malformed; ``str(err)`` is one line naming it."""

    def __init__(self, variable: str, expected: str) -> None:
        self.variable = variable
        self.expected = expected
        super().__init__(f"{variable}: {expected}")


class RunNotFound(AgentsError):
    def __init__(self, run_id: int) -> None:
        self.run_id = run_id
        super().__init__(f"run #{run_id} does not exist (or its retention period has passed)")


class ThreadAlreadyHasRun(AgentsError):
    """A Slack thread maps to at most one run; a second create for it is refused."""

    def __init__(self, channel: str, thread_ts: str, run_id: int) -> None:
        self.run_id = run_id
        super().__init__(f"thread {channel}/{thread_ts} already belongs to run #{run_id}")


class InvalidTransition(AgentsError):
    """The transition is not in the table, or another actor changed the run first."""

    def __init__(self, run_id: int, current: str, target: str) -> None:
        self.run_id = run_id
        self.current = current
        self.target = target
        super().__init__(f"run #{run_id}: cannot go from {current} to {target}")


class NotBuiltYet(AgentsError):
    """A capability that is planned but not implemented; raised instead of pretending."""
