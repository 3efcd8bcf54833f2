"""An evaluation task, in SWE-bench's fields, and reading a file of them.

A task file is untrusted input: it is read with a size cap, one JSON object per line,
and a line that is not a usable task is dropped with its line number and reason (and
counted), never guessed at. SWE-bench stores ``FAIL_TO_PASS`` and ``PASS_TO_PASS`` as
JSON strings holding lists; plain lists are accepted too.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from process.exceptions import EvalInputError

MAX_TASKS_FILE_BYTES = 64 * 1024 * 1024
MAX_LINE_BYTES = 8 * 1024 * 1024
MAX_TASKS = 5000
MAX_STATEMENT_CHARS = 20_000
_INSTANCE_ID = re.compile(r"^[A-Za-z0-9_.@/+-]{1,200}$")
_REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_SHA = re.compile(r"^[0-9a-f]{7,40}$")


def _id_list(value: Any) -> Any:
    """SWE-bench's ``'["a", "b"]'`` (a JSON string) or a list, as a list of test ids."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise ValueError("expected a list of test ids, or a JSON string holding one") from None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError("expected a list of test ids")
    return value


class EvalTask(BaseModel):
    """One task. ``fail_to_pass`` / ``pass_to_pass`` are None for a task from history
    until they are derived by running the tests (:mod:`jobs.eval.hidden`)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    instance_id: str
    repo: str
    base_commit: str
    problem_statement: str
    test_patch: str
    #: The true change (SWE-bench's ``patch``): what ``--model oracle`` applies.
    patch: str | None = None
    fail_to_pass: list[str] | None = Field(None, alias="FAIL_TO_PASS")
    pass_to_pass: list[str] | None = Field(None, alias="PASS_TO_PASS")
    #: The commit the task was taken from (history): where the hidden tests pass.
    commit: str | None = None
    origin: Literal["history", "file"] = "file"

    @field_validator("instance_id")
    @classmethod
    def _instance_id(cls, value: str) -> str:
        if not _INSTANCE_ID.match(value):
            raise ValueError("expected 1-200 letters, digits and ._@/+-")
        return value

    @field_validator("repo")
    @classmethod
    def _repo(cls, value: str) -> str:
        if not _REPO.match(value):
            raise ValueError("expected owner/name")
        return value

    @field_validator("base_commit", "commit")
    @classmethod
    def _sha(cls, value: str | None) -> str | None:
        if value is not None and not _SHA.match(value):
            raise ValueError("expected a commit id (7 to 40 hex digits)")
        return value

    @field_validator("problem_statement")
    @classmethod
    def _statement(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("is empty")
        return value[:MAX_STATEMENT_CHARS]

    @field_validator("test_patch")
    @classmethod
    def _test_patch(cls, value: str) -> str:
        if "diff --git " not in value:
            raise ValueError("is not a git diff")
        return value

    @field_validator("fail_to_pass", "pass_to_pass", mode="before")
    @classmethod
    def _ids(cls, value: Any) -> Any:
        return None if value is None else _id_list(value)

    @property
    def hidden_tests(self) -> list[str]:
        return [*(self.fail_to_pass or []), *(self.pass_to_pass or [])]


class Dropped(BaseModel):
    """A task left out of the measurement, and why."""

    model_config = ConfigDict(extra="forbid")

    instance_id: str
    reason: str


#: The fields of SWE-bench's format this reads; others (``hints_text``, ``version``,
#: ``created_at``...) are ignored.
FIELDS = (
    "instance_id",
    "repo",
    "base_commit",
    "problem_statement",
    "test_patch",
    "patch",
    "FAIL_TO_PASS",
    "PASS_TO_PASS",
)


def _problem(err: ValidationError) -> str:
    first = err.errors()[0]
    where = ".".join(str(part) for part in first.get("loc", ())) or "line"
    message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
    return f"{where}: {message}"


def parse_line(line: str, where: str) -> EvalTask:
    """One task from one line; raises ValueError naming ``where`` and the problem."""
    if len(line.encode("utf-8", errors="replace")) > MAX_LINE_BYTES:
        raise ValueError(f"{where}: longer than {MAX_LINE_BYTES // (1024 * 1024)} MiB")
    try:
        data = json.loads(line)
    except json.JSONDecodeError as err:
        raise ValueError(f"{where}: not JSON ({err.msg} at column {err.colno})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a JSON object, got {type(data).__name__}")
    try:
        task = EvalTask.model_validate({k: data[k] for k in FIELDS if k in data})
    except ValidationError as err:
        raise ValueError(f"{where}: {_problem(err)}") from None
    if not task.fail_to_pass:
        raise ValueError(f"{where}: FAIL_TO_PASS is empty: nothing would tell a fix apart")
    return task


def load_tasks(path: Path) -> tuple[list[EvalTask], list[Dropped]]:
    """The usable tasks of a JSON Lines file, and the lines dropped with their reasons.

    Raises :class:`EvalInputError` when the file itself cannot be used (missing, too
    big, or no usable task at all).
    """
    try:
        size = path.stat().st_size
    except OSError as err:
        raise EvalInputError(f"cannot read {path}: {err.strerror}") from None
    if size > MAX_TASKS_FILE_BYTES:
        raise EvalInputError(
            f"{path} is {size // (1024 * 1024)} MiB; split it (at most "
            f"{MAX_TASKS_FILE_BYTES // (1024 * 1024)} MiB)"
        )
    tasks: list[EvalTask] = []
    dropped: list[Dropped] = []
    seen: set[str] = set()
    with path.open(encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path.name}:{number}"
            try:
                task = parse_line(line, where)
            except ValueError as err:
                dropped.append(Dropped(instance_id=where, reason=str(err)))
                continue
            if task.instance_id in seen:
                reason = f"{where}: instance_id {task.instance_id!r} appears twice"
                dropped.append(Dropped(instance_id=task.instance_id, reason=reason))
                continue
            if len(tasks) >= MAX_TASKS:
                raise EvalInputError(f"{path} has more than {MAX_TASKS} tasks; split it")
            seen.add(task.instance_id)
            tasks.append(task)
    if not tasks:
        reasons = "; ".join(d.reason for d in dropped[:3]) or "the file is empty"
        raise EvalInputError(f"{path}: no usable task ({reasons})")
    return tasks, dropped
