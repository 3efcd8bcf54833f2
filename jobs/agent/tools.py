"""The agent's tools: read, list, search, edit, write, run, todo, and the tools that end
a role's pass (finish, submit_plan, root_cause, verdict).

Every tool works on the sandbox's workspace through
:class:`~jobs.agent.workspace.WorkspaceFiles`, which refuses paths that leave it before the
sandbox is touched. Every result is bounded in size and says so when it was cut. A tool
that fails raises :class:`ToolError`; :meth:`Toolbox.call` turns that, an unknown tool,
invalid input, or any other exception into an ``is_error`` result the model can act on.
A toolbox offers and runs only its role's tools (:mod:`jobs.agent.roles`).

At the usual size's edge: one class with one method per tool, and the bounds every
tool's result shares beside them (their inputs are apart, in :mod:`jobs.agent.tool_specs`).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import ValidationError

from jobs.agent.edit_checks import EditChecks
from jobs.agent.tool_specs import (
    BUILDER_TOOLS,
    LIST_SCAN_LIMIT,
    MAX_LINE_CHARS,
    MAX_LISTED,
    TOOLS,
    EditFileInput,
    Finish,
    FinishInput,
    ListFilesInput,
    ReadFileInput,
    RunInput,
    SearchInput,
    TodoInput,
    ToolInput,
    ToolOutcome,
    WriteFileInput,
    bound,
    input_schema,
)
from jobs.agent.workspace import HELPER_TIMEOUT, WorkspaceFiles
from process.exceptions import LimitsExceeded, SandboxError, ToolError

log = logging.getLogger(__name__)


class Toolbox:
    """The tools bound to one workspace, with the loop's limits on their output."""

    def __init__(
        self,
        workspace: WorkspaceFiles,
        *,
        output_chars: int,
        command_timeout: float,
        max_command_timeout: float,
        remaining_seconds: Callable[[], float] = lambda: math.inf,
        tools: Sequence[str] = BUILDER_TOOLS,
        edit_checks: EditChecks | None = None,
    ) -> None:
        self.workspace = workspace
        self.output_chars = output_chars
        self.command_timeout = command_timeout
        self.max_command_timeout = max_command_timeout
        self.remaining_seconds = remaining_seconds
        self.edit_checks = edit_checks
        #: This toolbox's tools, in the fixed order of TOOLS.
        self.tools = tuple(t for t in TOOLS if t.name in set(tools))
        self._handlers: dict[str, Callable[[Any], ToolOutcome]] = {
            "read_file": self._read_file,
            "list_files": self._list_files,
            "search": self._search,
            "edit_file": self._edit_file,
            "write_file": self._write_file,
            "run": self._run,
            "todo": self._todo,
            "finish": self._finish,
            "submit_plan": self._done,
            "root_cause": self._done,
            "verdict": self._done,
        }

    @property
    def specs(self) -> list[dict[str, Any]]:
        """Tool definitions for the Messages API, in a fixed order (it is cached)."""
        return [
            {"name": t.name, "description": t.description, "input_schema": input_schema(t.input)}
            for t in self.tools
        ]

    def call(self, name: str, raw_input: Any) -> ToolOutcome:
        """Run one tool call. Failures come back as ``is_error`` outcomes; only a loop
        limit or a broken sandbox raises."""
        tool = next((t for t in self.tools if t.name == name), None)
        if tool is None:
            known = ", ".join(t.name for t in self.tools)
            return self._error(f"unknown tool {name!r}; the tools are: {known}")
        try:
            args = tool.input.model_validate(raw_input)
        except ValidationError as err:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'input'}: {e['msg']}" for e in err.errors()
            )
            return self._error(f"invalid input for {name}: {problems}")
        try:
            outcome = self._handlers[name](args)
        except (LimitsExceeded, SandboxError):
            raise  # a limit, or a sandbox that is gone: the run stops
        except ToolError as err:
            return self._error(f"{name} failed: {err}")
        except Exception as err:  # the model can often work around a broken tool call
            log.exception("tool %s raised", name)
            return self._error(f"{name} failed: {type(err).__name__}: {err}")
        return ToolOutcome(
            bound(outcome.content, self.output_chars),
            outcome.is_error,
            outcome.finish,
            outcome.todos,
        )

    def _error(self, message: str) -> ToolOutcome:
        return ToolOutcome(bound(message, self.output_chars), is_error=True)

    # -- the tools --------------------------------------------------------------------

    def _read_file(self, args: ReadFileInput) -> ToolOutcome:
        resolved, text = self.workspace.read_text(args.path)
        lines = _split_lines(text)
        total = len(lines)
        start = args.start_line or 1
        end = min(args.end_line or total, total)
        if total and start > total:
            raise ToolError(f"start_line {start} is past the end: {args.path} has {total} lines")
        if end < start and total:
            raise ToolError(f"end_line {end} is before start_line {start}")
        out: list[str] = []
        used = 0
        budget = self.output_chars - 200
        shown_end = start - 1
        for number in range(start, end + 1):
            line = f"{number:>6}\t{lines[number - 1]}"
            if used + len(line) + 1 > budget:
                break
            out.append(line)
            used += len(line) + 1
            shown_end = number
        header = f"{resolved.path}: lines {start}-{shown_end} of {total}"
        if total == 0:
            header = f"{resolved.path}: empty file"
        body = "\n".join(out)
        if shown_end < end:
            body += (
                f"\n[... cut at line {shown_end} of {total}: "
                f"read on with start_line={shown_end + 1}]"
            )
        return ToolOutcome(f"{header}\n{body}" if body else header)

    def _list_files(self, args: ListFilesInput) -> ToolOutcome:
        base = self.workspace.resolve(args.path)
        if base.kind != "dir":
            raise ToolError(f"{args.path} is not a directory")
        found = self.workspace.sandbox.list_files(base.path, limit=LIST_SCAN_LIMIT)
        matcher = _glob(args.pattern)
        prefix = "" if base.path == "." else base.path.rstrip("/") + "/"
        hits = []
        for entry in found:
            relative = entry.removeprefix("./")
            if relative.startswith(".git/") or "/.git/" in relative:
                continue
            inside = relative[len(prefix) :] if prefix and relative.startswith(prefix) else relative
            if matcher.match(inside):
                hits.append(relative)
        hits.sort()
        lines = hits[:MAX_LISTED]
        if len(hits) > MAX_LISTED:
            lines.append(f"[... {len(hits) - MAX_LISTED} more; narrow the pattern or path]")
        if len(found) >= LIST_SCAN_LIMIT:
            lines.append(f"[listing stopped after {LIST_SCAN_LIMIT} files; narrow the path]")
        if not hits:
            return ToolOutcome(f"no files match {args.pattern!r} in {base.path}")
        return ToolOutcome("\n".join(lines))

    def _search(self, args: SearchInput) -> ToolOutcome:
        base = self.workspace.resolve(args.path)
        if base.kind == "missing":
            raise ToolError(f"no such file or directory: {args.path}")
        # -H: name the file even when the path is one file, so every hit parses.
        argv = ["grep", "-rnHIE", "--exclude-dir=.git", "--color=never"]
        if args.include:
            argv += ["--include", args.include]
        argv += ["-e", args.pattern, "--", base.path]
        result = self.workspace.sandbox.exec(argv, timeout=HELPER_TIMEOUT)
        if result.exit_code == 1 and not result.stdout:
            return ToolOutcome(f"no matches for /{args.pattern}/ in {base.path}")
        if result.exit_code not in (0, 1) and not result.stdout:
            raise ToolError(f"grep: {result.stderr.strip() or f'exit code {result.exit_code}'}")
        hits = []
        for line in result.stdout.splitlines():
            path, sep, rest = line.partition(":")
            number, sep2, text = rest.partition(":")
            if not (sep and sep2 and number.isascii() and number.isdigit()):
                continue  # a marker the sandbox put into cut output
            path = path.removeprefix("./")
            if len(text) > MAX_LINE_CHARS:
                text = text[:MAX_LINE_CHARS] + "…"
            hits.append((path, int(number), text))
        hits.sort()
        shown = [f"{path}:{number}:{text}" for path, number, text in hits[: args.max_hits]]
        if len(hits) > args.max_hits:
            shown.append(f"[... {len(hits) - args.max_hits} more hits; narrow the search]")
        if result.stdout_truncated:
            shown.append(
                f"[grep printed {result.stdout_truncated:,} bytes more than the sandbox keeps "
                "(very long lines or very many hits); narrow the pattern or the path]"
            )
        if not shown:
            return ToolOutcome(f"no matches for /{args.pattern}/ in {base.path}")
        return ToolOutcome("\n".join(shown))

    def _edit_file(self, args: EditFileInput) -> ToolOutcome:
        resolved, text = self.workspace.read_text(args.path)
        old, new = args.old_text, args.new_text
        if old == new:
            raise ToolError("old_text and new_text are the same; nothing would change")
        if text.count(old) == 0 and "\r\n" in text and "\n" in old:
            old, new = _crlf(old), _crlf(new)  # the file has Windows line endings
        count = text.count(old)
        if count == 0:
            raise ToolError(_not_found(args.path, text, old))
        if count > 1:
            starts = [m.start() for m in re.finditer(re.escape(old), text)]
            at = ", ".join(str(text.count("\n", 0, s) + 1) for s in starts[:10])
            raise ToolError(
                f"old_text occurs {count} times in {args.path} (at lines {at}); "
                "include more surrounding lines so it matches exactly once"
            )
        offset = text.index(old)
        edited = text.replace(old, new, 1)
        self.workspace.write_text(resolved, edited)
        first = text.count("\n", 0, offset) + 1
        removed, added = _line_count(old), _line_count(new)
        return ToolOutcome(
            self._checked(
                resolved.path,
                f"edited {resolved.path}: replaced {removed} line(s) at line {first} "
                f"with {added} line(s)\n" + _excerpt(edited, first, first + max(added - 1, 0)),
            )
        )

    def _write_file(self, args: WriteFileInput) -> ToolOutcome:
        resolved = self.workspace.resolve(args.path)
        if resolved.kind == "dir":
            raise ToolError(f"{args.path} is a directory")
        self.workspace.write_text(resolved, args.content)
        verb = "created" if resolved.kind == "missing" else "overwrote"
        size = len(args.content.encode("utf-8"))
        return ToolOutcome(
            self._checked(
                resolved.path,
                f"{verb} {resolved.path} ({size:,} bytes, {len(_split_lines(args.content))} lines)",
            )
        )

    def _checked(self, path: str, result: str) -> str:
        """``result`` of an edit or write, with the repository's on_edit checks of
        ``path`` after it. Their output is kept whole within the result's bound: the
        edit's own excerpt gives way first."""
        if self.edit_checks is None:
            return result
        checked = self.edit_checks.after_write(path)
        if not checked:
            return result
        room = max(200, self.output_chars - len(checked) - 2)
        return f"{bound(result, room)}\n\n{checked}"

    def _run(self, args: RunInput) -> ToolOutcome:
        asked = args.timeout or self.command_timeout
        timeout = min(asked, self.max_command_timeout, self.remaining_seconds())
        result = self.workspace.sandbox.exec(["sh", "-c", args.command], timeout=timeout)
        parts = [f"exit code: {result.exit_code}"]
        if result.stdout:
            parts.append(f"[stdout]\n{result.stdout.rstrip()}")
        if result.stderr:
            parts.append(f"[stderr]\n{result.stderr.rstrip()}")
        if not result.stdout and not result.stderr:
            parts.append("(no output)")
        if result.timed_out:
            parts[0] = (
                f"timed out after {timeout:g}s and was killed (ask for a longer timeout, "
                f"at most {self.max_command_timeout:g}s, or run less)"
            )
        elif result.oom_killed:
            parts[0] = "killed: the sandbox ran out of memory"
        dropped = [
            f"{n:,} bytes of {name}"
            for name, n in (
                ("stdout", result.stdout_truncated),
                ("stderr", result.stderr_truncated),
            )
            if n
        ]
        if dropped:
            parts[0] += (
                f" (the command printed more than the sandbox keeps: {' and '.join(dropped)} "
                "were dropped from the middle; redirect to a file and search it instead)"
            )
        text = "\n".join(parts)
        return ToolOutcome(
            bound(text, self.output_chars), is_error=result.timed_out or result.oom_killed
        )

    def _todo(self, args: TodoInput) -> ToolOutcome:
        items = tuple((" ".join(item.text.split()), item.done) for item in args.items)
        done = sum(1 for _, finished in items if finished)
        return ToolOutcome(f"todo list saved: {done} of {len(items)} done", todos=items)

    def _finish(self, args: FinishInput) -> ToolOutcome:
        return ToolOutcome(
            "finished", finish=Finish(args.summary.strip(), args.notes_for_reviewer.strip())
        )

    def _done(self, args: ToolInput) -> ToolOutcome:
        """A role's own ending tool: its whole input is the pass's result."""
        output = args.model_dump(mode="json")
        first = next((v for v in output.values() if isinstance(v, str) and v.strip()), "")
        return ToolOutcome("received", finish=Finish(first.strip(), "", output))


# -- helpers ----------------------------------------------------------------------------


def _split_lines(text: str) -> list[str]:
    """Lines as grep and sed count them (only "\\n" ends a line)."""
    if not text:
        return []
    lines = text.split("\n")
    return lines[:-1] if text.endswith("\n") else lines


def _line_count(text: str) -> int:
    """Lines a piece of text spans; a trailing newline does not start another."""
    return len(_split_lines(text))


def _crlf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\n", "\r\n")


def _excerpt(text: str, first: int, last: int, context: int = 2, most: int = 30) -> str:
    lines = _split_lines(text)
    start = max(1, first - context)
    end = min(len(lines), last + context, start + most - 1)
    return "\n".join(f"{n:>6}\t{lines[n - 1]}" for n in range(start, end + 1))


def _not_found(path: str, text: str, old: str) -> str:
    """Why old_text did not match, with a hint when only whitespace differs."""
    squeeze = " ".join(old.split())
    lines = _split_lines(text)
    first = old.strip().split("\n")[0].strip()
    near = [n for n, line in enumerate(lines, 1) if first and first in line][:5]
    message = f"old_text was not found in {path}"
    if squeeze and squeeze in " ".join(text.split()):
        message += " (it matches if whitespace is ignored: copy the indentation exactly)"
    if near:
        message += f"; its first line appears at line(s) {', '.join(map(str, near))}"
    return message + ". Read the file again and copy the exact text."


def _glob(pattern: str) -> re.Pattern[str]:
    """A regex for a glob: ``*`` and ``?`` within a directory, ``**`` across them.

    A pattern without ``/`` matches a file name at any depth, like a .gitignore line.
    """
    pattern = pattern.strip().removeprefix("./") or "**"
    if "/" not in pattern and pattern != "**":
        pattern = "**/" + pattern
    out, i = [], 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif char == "*":
            out.append("[^/]*")
            i += 1
        elif char == "?":
            out.append("[^/]")
            i += 1
        elif char == "[" and "]" in pattern[i + 1 :]:
            close = pattern.index("]", i + 1)
            body = pattern[i + 1 : close]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
            i = close + 1
        else:
            out.append(re.escape(char))
            i += 1
    return re.compile("".join(out) + r"\Z")
