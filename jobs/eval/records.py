"""An eval in Redis: what it measures (its variants), its tasks, and their results.

The CLI writes the spec and the tasks; jobs on any worker read them and write each
task's validation and each (variant, task) result; the CLI follows the results for its
progress bar and writes the reports from them. Everything lives under
``agents-eval:eval:<id>`` for :data:`EVAL_TTL_SECONDS`. The runs of an eval are kept in
a store of their own (prefix ``agents-eval``), so they never count in ``/agents status``
or ``/agents stats``.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

import redis
from pydantic import BaseModel, ConfigDict, Field

from jobs.eval.tasks import Dropped, EvalTask
from process.exceptions import EvalInputError
from process.settings import (
    AgentLimits,
    BlueprintSettings,
    ConversationSettings,
    ModelRoles,
)
from runs.record import utcnow
from runs.store import RunStore

PREFIX = "agents-eval"
EVAL_TTL_SECONDS = 14 * 86400
#: ``model=`` values that need no key.
BUILT_IN_MODELS = ("oracle", "null")
#: The worker settings a variant may change: how the agent works, never where things
#: are or whose credentials are used.
VARIANT_SECTIONS = (ModelRoles, AgentLimits, ConversationSettings)
#: Of the blueprint's settings, those an evaluation run uses (it never publishes).
VARIANT_BLUEPRINT = ("fix_rounds", "escalation", "protected_paths")


def variant_keys() -> set[str]:
    keys = {name for section in VARIANT_SECTIONS for name in section.model_fields}
    assert all(name in BlueprintSettings.model_fields for name in VARIANT_BLUEPRINT)
    return keys | set(VARIANT_BLUEPRINT) | {"sandbox_image", "model"}


class Variant(BaseModel):
    """One configuration under test: ``model=oracle``, ``model=claude-x,fix_rounds=0``."""

    model_config = ConfigDict(extra="forbid")

    name: str
    #: ``oracle``, ``null``, ``anthropic`` (the worker's models), ``replay:PATH``, a
    #: model id (builder and reviewer), or empty for what the worker is configured with.
    model: str = ""
    settings: dict[str, Any] = Field(default_factory=dict)


def parse_variant(text: str, base_model: str = "") -> Variant:
    """``KEY=VALUE[,KEY=VALUE...]`` as a variant; raises :class:`EvalInputError`."""
    allowed = variant_keys()
    model = base_model
    chosen: dict[str, Any] = {}
    for item in (part.strip() for part in text.split(",")):
        key, sep, value = item.partition("=")
        key = key.strip().lower().removeprefix("agents_")
        if not sep or not key or not value.strip():
            raise EvalInputError(f"--compare {text!r}: expected KEY=VALUE, e.g. model=oracle")
        if key not in allowed:
            raise EvalInputError(
                f"--compare {text!r}: {key} is not a setting a variant may change "
                f"(one of: {', '.join(sorted(allowed))})"
            )
        if key == "model":
            model = value.strip()
        else:
            chosen[key] = value.strip()
    return Variant(name=text.strip(), model=model, settings=chosen)


class Validation(BaseModel):
    """A task checked before any run: its hidden tests, or why it was dropped."""

    model_config = ConfigDict(extra="forbid")

    fail_to_pass: list[str] = Field(default_factory=list)
    pass_to_pass: list[str] = Field(default_factory=list)
    dropped: str | None = None


class TaskResult(BaseModel):
    """One task under one variant: the record the reports are made of."""

    model_config = ConfigDict(extra="forbid")

    instance_id: str
    variant: str
    resolved: bool
    dollars: float = 0.0
    tokens: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    #: Cache reads over all prompt tokens (input, cache reads and writes).
    cache_share: float = 0.0
    turns: int = 0
    fix_rounds_spent: int = 0
    wall_seconds: float = 0.0
    failure_reason: str | None = None
    patch: str = ""
    run_id: int | None = None
    status: str = ""
    fail_to_pass: list[str] = Field(default_factory=list)
    pass_to_pass: list[str] = Field(default_factory=list)
    #: The hidden tests' outcomes on the agent's result.
    tests: dict[str, bool] = Field(default_factory=dict)


class EvalSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    created_at: datetime = Field(default_factory=utcnow)
    variants: list[Variant]
    tasks: int
    test_command: str
    test_timeout: float
    #: Where the settings of the machine that started it sent the runs' sandboxes.
    queue_name: str


class EvalStore:
    """One eval's keys. Pass the connection in; nothing is global."""

    def __init__(self, connection: redis.Redis, eval_id: str) -> None:
        self.redis = connection
        self.id = eval_id
        self.key = f"{PREFIX}:eval:{eval_id}"

    @staticmethod
    def new_id() -> str:
        return secrets.token_hex(4)

    def runs(self, retention_seconds: int = EVAL_TTL_SECONDS) -> RunStore:
        """The store the eval's runs live in, apart from the fleet's."""
        return RunStore(self.redis, retention_seconds=retention_seconds, prefix=PREFIX)

    def _expire(self, pipe: Any, *keys: str) -> None:
        for key in keys:
            pipe.expire(key, EVAL_TTL_SECONDS)

    def create(self, spec: EvalSpec, tasks: list[EvalTask]) -> None:
        pipe: Any = self.redis.pipeline()
        pipe.set(f"{self.key}:spec", spec.model_dump_json(), ex=EVAL_TTL_SECONDS)
        for index, task in enumerate(tasks):
            pipe.hset(f"{self.key}:tasks", str(index), task.model_dump_json(by_alias=True))
        self._expire(pipe, f"{self.key}:tasks")
        pipe.execute()

    def spec(self) -> EvalSpec:
        raw: Any = self.redis.get(f"{self.key}:spec")
        if raw is None:
            raise EvalInputError(f"eval {self.id} is not in Redis (expired, or another store)")
        return EvalSpec.model_validate_json(raw)

    def task(self, index: int) -> EvalTask:
        raw: Any = self.redis.hget(f"{self.key}:tasks", str(index))
        if raw is None:
            raise EvalInputError(f"eval {self.id} has no task {index}")
        return EvalTask.model_validate_json(raw)

    def tasks(self) -> list[EvalTask]:
        raw: Any = self.redis.hgetall(f"{self.key}:tasks")
        ordered = sorted(((int(k), v) for k, v in raw.items()), key=lambda kv: kv[0])
        return [EvalTask.model_validate_json(value) for _, value in ordered]

    def save_validation(self, index: int, validation: Validation) -> None:
        pipe: Any = self.redis.pipeline()
        pipe.hset(f"{self.key}:validated", str(index), validation.model_dump_json())
        self._expire(pipe, f"{self.key}:validated")
        pipe.execute()

    def validation(self, index: int) -> Validation | None:
        raw: Any = self.redis.hget(f"{self.key}:validated", str(index))
        return None if raw is None else Validation.model_validate_json(raw)

    def validations(self) -> dict[int, Validation]:
        raw: Any = self.redis.hgetall(f"{self.key}:validated")
        return {int(k): Validation.model_validate_json(v) for k, v in raw.items()}

    def save_result(self, variant: int, index: int, result: TaskResult) -> None:
        pipe: Any = self.redis.pipeline()
        pipe.hset(f"{self.key}:results", f"{variant}|{index}", result.model_dump_json())
        self._expire(pipe, f"{self.key}:results")
        pipe.execute()

    def results(self) -> dict[tuple[int, int], TaskResult]:
        raw: Any = self.redis.hgetall(f"{self.key}:results")
        out: dict[tuple[int, int], TaskResult] = {}
        for key, value in raw.items():
            text = key.decode() if isinstance(key, bytes) else str(key)
            variant, _, index = text.partition("|")
            out[(int(variant), int(index))] = TaskResult.model_validate_json(value)
        return out

    def dropped(self) -> list[Dropped]:
        tasks = self.tasks()
        return [
            Dropped(instance_id=tasks[index].instance_id, reason=check.dropped)
            for index, check in sorted(self.validations().items())
            if check.dropped is not None
        ]
