"""The blueprint on fast parts: fakeredis, LocalSandbox, LocalForge and scripted models.

The scripted models answer from the same script files the recorded transcripts were
made from (``examples/transcripts/blueprint/*.script.json``), so these tests and the
Docker end-to-end tests run the same scenarios.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fakeredis
import pytest

from jobs.agent.config import AgentConfig
from jobs.agent.model import ModelResponse, OnRetry, Request
from jobs.blueprint.config import BlueprintConfig
from jobs.blueprint.deps import Deps
from jobs.blueprint.runner import run_blueprint
from jobs.blueprint.wiring import sandbox_factory
from jobs.forge.local import LocalForge
from jobs.queue import RunQueue
from runs.record import Run
from runs.store import RunStore
from sandboxes.cache import RepoCache
from tests.blueprint.e2e import Workers

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "examples" / "sample-repo"
SCRIPTS = ROOT / "examples" / "transcripts" / "blueprint"
REPO = "acme/retrying"

CLEAN_REQUEST = "make the retry limit configurable"
FIX_ONCE_REQUEST = "let callers choose which exceptions are retried"
REWORK_FEEDBACK = "Please also add a CHANGELOG.md entry for this change."


def script(name: str) -> list[dict[str, Any]]:
    replies: list[dict[str, Any]] = json.loads((SCRIPTS / f"{name}.script.json").read_text())
    return replies


class ScriptedModel:
    def __init__(self, owner: Scripted, replies: Sequence[dict[str, Any]], start: int) -> None:
        self.owner = owner
        self.replies = replies
        self.position = start

    def complete(self, request: Request, *, on_retry: OnRetry | None = None) -> ModelResponse:
        if self.position >= len(self.replies):
            raise AssertionError(f"the script has no reply {self.position + 1}")
        reply = self.replies[self.position]
        self.position += 1
        self.owner.requests.append(request)
        return ModelResponse.from_api(
            {"id": f"msg_{self.position}", "model": request["model"], **reply}
        )


@dataclass
class Scripted:
    """Replies per iteration; a resumed job continues after ``artifacts.model_calls``."""

    by_iteration: dict[int, list[dict[str, Any]]]
    requests: list[Request] = field(default_factory=list)

    @contextmanager
    def open(self, run: Run) -> Iterator[ScriptedModel]:
        replies = self.by_iteration.get(run.iteration, [])
        yield ScriptedModel(self, replies, run.artifacts.model_calls)


@dataclass
class Harness:
    root: Path
    connection: fakeredis.FakeRedis
    store: RunStore
    forge: LocalForge
    deps: Deps
    models: Scripted

    def create(self, request: str, *, repo: str = REPO, requester: str = "U1", **kw: Any) -> Run:
        return self.store.create(requester=requester, repo=repo, request=request, **kw)

    def run(self, run_id: int) -> Run:
        return run_blueprint(self.deps, run_id, by="test")

    def script(self, *per_iteration: list[dict[str, Any]]) -> None:
        self.models.by_iteration = dict(enumerate(per_iteration, 1))

    def configure(self, **changes: Any) -> None:
        """Change blueprint settings, validated: a misspelt one fails the test."""
        config = self.deps.config
        self.deps.config = type(config).model_validate(
            {**config.model_dump(exclude={"sandbox"}), "sandbox": config.sandbox, **changes}
        )

    def rework(self, run_id: int, feedback: str, by: str = "U1") -> Run:
        return RunQueue(self.connection, self.store, name="q").request_rework(
            run_id, by=by, feedback=feedback
        )

    def add_repo(self, name: str, source: Path) -> None:
        self.forge.create_repo(name, source=source)


@pytest.fixture(autouse=True)
def direct_python(monkeypatch: pytest.MonkeyPatch) -> None:
    """LocalSandbox takes PATH from the worker: find this interpreter's python3 first,
    not a version manager's shim (which costs a second per command)."""
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    connection = fakeredis.FakeRedis()
    store = RunStore(connection)
    forge = LocalForge(tmp_path / "forge")
    forge.create_repo(REPO, source=SAMPLE)
    models = Scripted({})
    deps = Deps(
        store=store,
        forge=forge,
        cache=RepoCache(tmp_path / "cache"),
        sandboxes=sandbox_factory("local"),
        models=models,
        agent=AgentConfig(),
        config=BlueprintConfig(ci_timeout_seconds=0, sandbox_backend="local"),
        workdir=tmp_path / "publish",
    )
    yield Harness(tmp_path, connection, store, forge, deps, models)
    connection.close()


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Workers]:
    """Real `agents worker` processes for the end-to-end tests, stopped afterwards."""
    started = Workers(tmp_path)
    yield started
    started.stop()
