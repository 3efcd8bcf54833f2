"""During the agent step the hidden tests are nowhere the agent can look: not in the
sandbox's files (the agent's own tools list and search them), not in any request the
model gets. After the run they are applied, and they decide the result."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import fakeredis
import pytest

from jobs.agent.config import AgentConfig
from jobs.agent.model import Model, ModelResponse, OnRetry, Request
from jobs.blueprint.config import BlueprintConfig
from jobs.blueprint.deps import Deps
from jobs.blueprint.providers import OracleModel
from jobs.blueprint.wiring import sandbox_factory
from jobs.eval.history import history_tasks
from jobs.eval.job import _run_and_grade, validate
from jobs.eval.records import EvalSpec, EvalStore, Variant
from jobs.forge.local import LocalForge
from runs.record import Run, RunStatus
from sandboxes.cache import RepoCache
from tests.eval import fixture

PROBE = (
    "find . -path ./.git -prune -o -type f -print | sort; echo '--- search'; "
    # The names are split in the command, so they appear in a request only if found.
    "grep -rn 'test_camel''_case\\|test_two''_words' . || echo 'NO HIDDEN TEST FOUND'"
)


class Spy:
    """The oracle, plus a look around the workspace before it changes anything."""

    def __init__(self, patch: str) -> None:
        self.oracle = OracleModel(patch)
        self.requests: list[Request] = []
        self.probed: str | None = None

    def complete(self, request: Request, *, on_retry: OnRetry | None = None) -> ModelResponse:
        self.requests.append(request)
        answer = self.oracle.complete(request, on_retry=on_retry)
        messages = request.get("messages") or []
        last = messages[-1]["content"] if messages else []
        results = [b for b in last if isinstance(b, dict) and b.get("type") == "tool_result"]
        if self.probed is None and results and "--- search" in str(results[0].get("content")):
            self.probed = str(results[0]["content"])
        if len(messages) == 1 and "tool_choice" not in request:
            probe = {"type": "tool_use", "id": "toolu_probe", "name": "run"}
            probe["input"] = {"command": PROBE}
            return ModelResponse([probe, *answer.content], "tool_use", answer.usage, answer.model)
        return answer


class SpyProvider:
    def __init__(self, spy: Spy) -> None:
        self.spy = spy

    @contextmanager
    def open(self, run: Run) -> Iterator[Model]:
        yield self.spy


@pytest.fixture
def direct_python(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")


def test_the_hidden_tests_are_absent_during_the_agent_step(
    tmp_path: Path, direct_python: None
) -> None:
    repo_dir, commits = fixture.build(tmp_path)
    forge = LocalForge(tmp_path / "forge")
    name = "local/inflection"
    bare = forge.create_repo(name)
    subprocess.run(["git", "push", "-q", str(bare), "main:main"], cwd=repo_dir, check=True)
    cache = RepoCache(tmp_path / "cache")
    url = forge.clone_url(name)
    cache.mirror(url)
    tasks = history_tasks(cache, url, name, "main", 10)
    task = next(t for t in tasks if t.commit == commits["Add kebabize"])
    hidden = (repo_dir / "tests" / "test_kebabize.py").read_text()

    connection = fakeredis.FakeRedis()
    store = EvalStore(connection, "spy")
    runs = store.runs()
    spy = Spy(task.patch or "")
    deps = Deps(
        store=runs,
        forge=forge,
        cache=cache,
        sandboxes=sandbox_factory("local"),
        models=SpyProvider(spy),
        agent=AgentConfig(),
        config=BlueprintConfig(ci_timeout_seconds=0, sandbox_backend="local"),
        workdir=tmp_path / "publish",
    )
    spec = EvalSpec(
        id="spy",
        variants=[Variant(name="spy")],
        tasks=1,
        test_command="python3 -m pytest",
        test_timeout=300,
        queue_name="unused",
    )
    check = validate(deps, spec, task, "spy-check")
    assert check.fail_to_pass == [
        "tests/test_kebabize.py::test_camel_case",
        "tests/test_kebabize.py::test_two_words",
    ]
    result = _run_and_grade(deps, runs, spec, task, check, Variant(name="spy"), by="test")

    # What the agent saw of the workspace: every file but the hidden test file.
    assert spy.probed is not None
    assert "NO HIDDEN TEST FOUND" in spy.probed
    assert "./inflection/__init__.py" in spy.probed
    assert "./tests/test_version.py" in spy.probed
    assert "test_kebabize.py" not in spy.probed
    # Nothing of the hidden tests reached the model in any request.
    sent = json.dumps(spy.requests)
    assert "test_two_words" not in sent
    assert hidden.splitlines()[-1].strip() not in sent
    # Applied afterwards, they decide: the oracle's change passes them.
    assert result.resolved, result.failure_reason
    assert result.tests == dict.fromkeys(check.fail_to_pass, True)
    assert runs.get(result.run_id or 0).status is RunStatus.EVALUATED
    assert forge.list_prs(name) == []
