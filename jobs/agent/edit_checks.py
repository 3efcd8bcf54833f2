"""Checks at write time: the repository's fast per-file checks (``.agents.yml``
``on_edit``, e.g. ``ruff check {file}``), run in the sandbox right after the builder
edits or writes a file, on that file.

Their bounded output goes into the same tool result, so the model fixes lint while it
writes instead of after a whole round of the checks. The file name comes from the
model, so it never reaches a shell as text: ``{file}`` becomes ``"$1"`` and the path is
passed as that positional argument (``sh -c '<command>' sh ./<path>``), prefixed with
``./`` so it cannot be read as an option either.
"""

from __future__ import annotations

import fnmatch
import posixpath
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from jobs.agent.tool_specs import bound
from sandboxes.protocol import Sandbox

#: Most characters of one check's output shown to the model.
OUTPUT_CHARS = 2000
PLACEHOLDER = "{file}"


@dataclass(frozen=True)
class EditCheck:
    """``run`` with ``{file}`` for the touched file; only files matching ``files``
    (a glob on the path or the file name), when given."""

    run: str
    files: str | None = None
    timeout: float = 60.0

    def applies_to(self, path: str) -> bool:
        if not self.files:
            return True
        return fnmatch.fnmatchcase(path, self.files) or fnmatch.fnmatchcase(
            posixpath.basename(path), self.files
        )

    def argv(self, path: str) -> list[str]:
        """The command for ``path``: the path is an argument, never shell text."""
        return ["sh", "-c", self.run.replace(PLACEHOLDER, '"$1"'), "sh", f"./{path}"]


class EditChecks:
    """Runs the checks that apply to a touched file and says how they went; counts
    the time they take for the run's report."""

    def __init__(
        self,
        sandbox: Sandbox,
        checks: Sequence[EditCheck],
        *,
        remaining_seconds: Callable[[], float] | None = None,
    ) -> None:
        self.sandbox = sandbox
        self.checks = tuple(checks)
        self.remaining_seconds = remaining_seconds
        self.seconds = 0.0
        self.runs = 0

    def after_write(self, path: str) -> str:
        """The text to append to the edit's or write's result ('' if no check applies)."""
        lines: list[str] = []
        for check in self.checks:
            if not check.applies_to(path):
                continue
            timeout = check.timeout
            if self.remaining_seconds is not None:
                timeout = max(1.0, min(timeout, self.remaining_seconds()))
            started = time.monotonic()
            result = self.sandbox.exec(check.argv(path), timeout=timeout)
            self.seconds += time.monotonic() - started
            self.runs += 1
            label = f"on_edit `{check.run}`"
            if result.ok:
                lines.append(f"[{label} passed]")
                continue
            what = "timed out" if result.timed_out else f"failed (exit {result.exit_code})"
            output = f"{result.stdout}\n{result.stderr}".strip() or "(no output)"
            lines.append(f"[{label} {what} on {path}:]\n{bound(output, OUTPUT_CHARS)}")
        return "\n".join(lines)
