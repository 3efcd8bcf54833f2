"""What the agent's tools are, as the model sees them: names, descriptions, inputs.

The input models validate what the model sends (a bad call becomes an error result it
can act on); :data:`TOOLS` is the fixed, ordered list the Messages API gets (fixed so
the prompt cache keeps it); :func:`describe_call` is a call's one line in the thread.
What each tool does is :class:`jobs.agent.tools.Toolbox`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

#: Files the sandbox lists before the glob filter; bigger trees need a narrower path.
LIST_SCAN_LIMIT = 20_000
MAX_LISTED = 300
MAX_LINE_CHARS = 300


def bound(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, keeping its head and tail.

    The tail matters most for command output (test summaries and tracebacks end there),
    so it gets the larger share.
    """
    if len(text) <= limit:
        return text
    if limit < 200:
        return text[: max(0, limit - 20)] + "\n[... truncated]"
    room = limit - 100
    head = room * 2 // 5
    tail = room - head
    cut = len(text) - head - tail
    marker = f"[... {cut} characters cut: results are limited to {limit} ...]"
    return f"{text[:head]}\n{marker}\n{text[-tail:]}"


# -- inputs -----------------------------------------------------------------------------


class ToolInput(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReadFileInput(ToolInput):
    path: str = Field(description="File path relative to the repository root.")
    start_line: int | None = Field(None, ge=1, description="First line to show (1-based).")
    end_line: int | None = Field(None, ge=1, description="Last line to show (inclusive).")


class ListFilesInput(ToolInput):
    pattern: str = Field(
        "**",
        description="Glob matched against paths relative to `path`. `*` stays within one "
        "directory, `**` crosses directories; a pattern without '/' matches file names "
        "at any depth (e.g. '*.py').",
    )
    path: str = Field(".", description="Directory to list, relative to the repository root.")


class SearchInput(ToolInput):
    pattern: str = Field(
        min_length=1,
        description="Extended regular expression, as `grep -E` reads it (use [0-9], not \\d).",
    )
    path: str = Field(".", description="File or directory to search, relative to the root.")
    include: str | None = Field(None, description="Only files whose name matches this glob.")
    max_hits: int = Field(50, ge=1, le=200, description="Most matching lines to return.")


class EditFileInput(ToolInput):
    path: str = Field(description="File path relative to the repository root.")
    old_text: str = Field(
        min_length=1,
        description="Exact text to replace, including whitespace; must occur exactly once. "
        "Do not include the line numbers that read_file shows.",
    )
    new_text: str = Field(description="Text to put in its place.")


class WriteFileInput(ToolInput):
    path: str = Field(description="File path relative to the repository root.")
    content: str = Field(description="The complete new content of the file.")


class RunInput(ToolInput):
    command: str = Field(min_length=1, description="Shell command, run with `sh -c`.")
    timeout: float | None = Field(None, gt=0, description="Seconds before it is killed.")


class FinishInput(ToolInput):
    summary: str = Field(
        min_length=1, description="What you changed and why, for the pull request."
    )
    notes_for_reviewer: str = Field(
        "", description="Risks, open questions, and anything you could not verify."
    )


class TodoEntry(ToolInput):
    text: str = Field(min_length=1, max_length=200, description="One step, in a few words.")
    done: bool = Field(False, description="True once the step is done.")


class TodoInput(ToolInput):
    items: list[TodoEntry] = Field(
        min_length=1,
        max_length=30,
        description="The whole list, in order; it replaces the previous one.",
    )


class SubmitPlanInput(ToolInput):
    problem: str = Field(min_length=1, max_length=4000, description="What is wrong or missing.")
    constraints: list[str] = Field(
        default_factory=list,
        max_length=20,
        description="What the change must respect: APIs, behaviour, conventions.",
    )
    approach: str = Field(
        min_length=1, max_length=6000, description="How the change will be made, and where."
    )
    acceptance_criteria: list[str] = Field(
        min_length=1,
        max_length=15,
        description="Testable statements a reviewer can check against the diff and the checks.",
    )
    risks: list[str] = Field(default_factory=list, max_length=15)
    tasks: list[str] = Field(
        min_length=1, max_length=20, description="The steps the builder will take, in order."
    )


class RootCauseInput(ToolInput):
    root_cause: str = Field(
        min_length=1,
        max_length=4000,
        description="What actually causes the failure, with the evidence you found.",
    )
    fix: str = Field(
        min_length=1, max_length=4000, description="What the builder should change, and where."
    )


class CriterionVerdict(ToolInput):
    criterion: int = Field(ge=1, description="The acceptance criterion's number.")
    met: bool
    note: str = Field("", max_length=1000)


class FindingInput(ToolInput):
    severity: Literal["info", "low", "medium", "high", "critical"]
    text: str = Field(min_length=1, max_length=2000, description="The problem and the fix.")
    path: str = Field("", max_length=300, description="The file, if the finding has one.")
    line: int | None = Field(None, ge=1)


class VerdictInput(ToolInput):
    verdict: Literal["approve", "comment", "block"]
    notes: str = Field(description="What a human reviewer should know, in a few short points.")
    criteria: list[CriterionVerdict] = Field(
        default_factory=list,
        max_length=15,
        description="One verdict per acceptance criterion of the plan, when there is one.",
    )
    findings: list[FindingInput] = Field(default_factory=list, max_length=30)


# -- outcomes ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Finish:
    """What the tool that ends a pass was given: ``finish``'s summary and notes, or the
    whole input of a role's own ending tool (``submit_plan``, ``root_cause``,
    ``verdict``) in ``output``."""

    summary: str
    notes_for_reviewer: str
    output: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ToolOutcome:
    content: str
    is_error: bool = False
    finish: Finish | None = None
    #: The todo list the ``todo`` tool just set, as ``(text, done)`` pairs.
    todos: tuple[tuple[str, bool], ...] | None = None


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    input: type[ToolInput]


TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        "read_file",
        "Read a text file, with line numbers. Long files are cut; use start_line and "
        "end_line to read a part.",
        ReadFileInput,
    ),
    ToolSpec(
        "list_files",
        f"List files matching a glob, sorted (at most {MAX_LISTED}; .git is skipped).",
        ListFilesInput,
    ),
    ToolSpec(
        "search",
        "Search file contents with a regular expression; returns path:line:text hits, "
        "sorted. Binary files and .git are skipped.",
        SearchInput,
    ),
    ToolSpec(
        "edit_file",
        "Replace one exact occurrence of old_text with new_text in a file. Fails if "
        "old_text is missing or occurs more than once: then include more context.",
        EditFileInput,
    ),
    ToolSpec(
        "write_file",
        "Create a file, or replace a file's whole content. Prefer edit_file for changes "
        "to existing files.",
        WriteFileInput,
    ),
    ToolSpec(
        "run",
        "Run a shell command in the repository root, in a sandbox (normally without "
        "network access). Returns the exit code and the output, cut if long.",
        RunInput,
    ),
    ToolSpec(
        "todo",
        "Keep your todo list for this task: the whole list each time, in order, with "
        "what is done. The person who asked sees it as a checklist while you work.",
        TodoInput,
    ),
    ToolSpec(
        "finish",
        "Finish the task: call it once the change is complete and the checks pass, or "
        "when it cannot be done (say why). It runs after the turn's other calls, and "
        "only if they all succeeded.",
        FinishInput,
    ),
    ToolSpec(
        "submit_plan",
        "Submit the plan (the spec the builder will follow) once you have explored enough. "
        "It ends your turn; a person approves it or asks for a revision.",
        SubmitPlanInput,
    ),
    ToolSpec(
        "root_cause",
        "Report the failure's root cause and what the builder should change. It ends your work.",
        RootCauseInput,
    ),
    ToolSpec(
        "verdict",
        "Give the review's verdict, a verdict per acceptance criterion, and your findings. "
        "It ends the review.",
        VerdictInput,
    ),
)


#: The tools that only read: every role has them.
READ_ONLY_TOOLS = ("read_file", "list_files", "search")
#: The builder's tools (and a toolbox's, unless it is given a role's).
BUILDER_TOOLS = (*READ_ONLY_TOOLS, "edit_file", "write_file", "run", "todo", "finish")


def input_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The JSON schema the API gets: pydantic's, without titles and null branches."""

    def clean(node: Any) -> Any:
        if isinstance(node, dict):
            node = {k: clean(v) for k, v in node.items() if k != "title"}
            branches = node.get("anyOf")
            if isinstance(branches, list) and {"type": "null"} in branches:
                rest = [b for b in branches if b != {"type": "null"}]
                if len(rest) == 1:
                    del node["anyOf"]
                    node = {**rest[0], **node}
            if node.get("default", ...) is None:
                del node["default"]
            return node
        if isinstance(node, list):
            return [clean(item) for item in node]
        return node

    schema: dict[str, Any] = clean(model.model_json_schema())
    return schema


def describe_call(name: str, args: Any) -> str:
    """A short summary of a call's arguments, for the run's event log and the thread."""
    if not isinstance(args, dict):
        return ""

    def short(value: Any, limit: int = 80) -> str:
        text = " ".join(str(value).split())
        return text if len(text) <= limit else text[: limit - 1] + "…"

    path = short(args.get("path", ""))
    if name == "read_file":
        start, end = args.get("start_line"), args.get("end_line")
        return f"{path}:{start or 1}-{end or ''}" if start or end else path
    if name == "list_files":
        return f"{short(args.get('pattern', '**'))} in {path or '.'}"
    if name == "search":
        return f"/{short(args.get('pattern', ''), 60)}/ in {path or '.'}"
    if name == "write_file":
        return f"{path} ({len(str(args.get('content', '')))} chars)"
    if name == "edit_file":
        return path
    if name == "run":
        return short(args.get("command", ""))
    if name == "finish":
        return short(args.get("summary", ""))
    if name == "todo":
        items = args.get("items")
        if isinstance(items, list):
            done = sum(1 for item in items if isinstance(item, dict) and item.get("done"))
            return f"{done}/{len(items)} done"
        return ""
    if name == "submit_plan":
        return short(args.get("problem", ""))
    if name == "root_cause":
        return short(args.get("root_cause", ""))
    if name == "verdict":
        return short(args.get("verdict", ""))
    return ""


# -- the toolbox ------------------------------------------------------------------------
