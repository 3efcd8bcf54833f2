"""A hostile repository: its ``.agents.yml`` (an alias bomb, 20,000 levels of nesting,
over a megabyte, limits above the operator's, an image of its choosing), changes that
reach protected paths through a symbolic link or edit ``.agents.yml``, build output, and
a JUnit report with XML entities.

The worker's code runs the run in this process on the local sandbox and the local forge,
the bot and reporter drawing its thread into the emulator
(:class:`tests.reliability.test_bad_input.Worker`); each row joins the bad-input figure.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from jobs.agent.model import ModelResponse, OnRetry, Request
from jobs.checks import evaluate, parse_junit
from jobs.repo_config import CheckCommand
from runs.events import Prepared
from runs.record import Run, RunStatus
from tests.reliability.figures import Table
from tests.reliability.test_bad_input import Worker, failure
from tests.reliability.test_bad_input import surface as surface
from tests.reliability.test_bad_input import worker as worker

pytestmark = pytest.mark.redis

TABLE = Table(
    "bad-input",
    "Bad input: what the user sees",
    ["input", "where the user sees it", "exact message"],
    order=70,
    part="repo",
)
record_table = TABLE.fixture()


def alias_bomb(levels: int = 6) -> str:
    """Each level a list of ten aliases of the one before: 10**levels values expanded."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    return "\n".join(lines) + f"\nchecks: *a{levels}\n"


def test_agents_yml_bombs_are_refused_in_the_thread(worker: Worker) -> None:
    cases = [
        ("an alias bomb (10^6 values once expanded)", "acme/laughs", alias_bomb(), "aliases"),
        (
            "20,000 levels of nesting",
            "acme/deep",
            "checks: " + "[" * 20_000 + "]" * 20_000 + "\n",
            "nests deeper than 20 levels",
        ),
        (
            "over 1 MiB",
            "acme/huge",
            "checks: [pytest]\n" + "#" * (1100 * 1024) + "\n",
            "over the 64 KiB limit",
        ),
    ]
    for what, name, text, expected in cases:
        worker.repo(name, text)
        run, replies = worker.run(f"in {name}: fix it")
        assert run.status is RunStatus.FAILED, (what, run.status)
        told = failure(replies)
        assert expected in told, (what, told)
        TABLE.add(f"`.agents.yml`: {what}", "thread reply (worker)", told)


def test_limits_above_the_operators_are_lowered(worker: Worker) -> None:
    worker.repo(
        "acme/greedy",
        "limits: {command_timeout: 21600, max_turns: 400}\n"
        "checks:\n  - name: unit\n    run: python3 -m pytest -q\n    timeout: 21600\n",
    )
    run, _replies = worker.run("in acme/greedy: add a changelog entry")
    config = run.artifacts.config or {}
    assert config["limits"]["command_timeout"] == 900
    assert config["limits"]["max_turns"] == 40
    assert [check["timeout"] for check in config["checks"]] == [900]
    prepared = next(e for e in worker.h.services.store.events(run.id) if isinstance(e, Prepared))
    told = prepared.text
    assert "limits.command_timeout 21600 lowered to the worker's 900" in told
    TABLE.add(
        "`.agents.yml`: limits above the operator's",
        "the run's prepared step",
        told[told.index(".agents.yml within") :],
    )


def test_an_image_the_operator_did_not_allow(worker: Worker) -> None:
    worker.repo("acme/own-image", "image: registry.internal/ops-with-secrets:latest\n")
    run, replies = worker.run("in acme/own-image: fix it")
    assert run.status is RunStatus.FAILED
    told = failure(replies)
    assert "AGENTS_ALLOWED_IMAGES" in told
    TABLE.add("`.agents.yml`: `image:` not on AGENTS_ALLOWED_IMAGES", "thread reply (worker)", told)


class Commands:
    """A scripted builder that runs ``commands`` in the sandbox, writes a CHANGELOG entry
    and finishes; the reviewer approves."""

    def __init__(self, commands: list[str]) -> None:
        self.commands = commands
        self.calls = 0

    @contextmanager
    def open(self, run: Run) -> Iterator[Commands]:
        yield self

    def complete(self, request: Request, *, on_retry: OnRetry | None = None) -> ModelResponse:
        self.calls += 1
        names = {tool["name"] for tool in request.get("tools", [])}
        if "verdict" in names:
            calls: list[tuple[str, dict[str, Any]]] = [
                ("verdict", {"verdict": "approve", "notes": "fine"})
            ]
        else:
            calls = [("run", {"command": command}) for command in self.commands]
            calls += [
                ("write_file", {"path": "CHANGELOG.md", "content": f"- change {self.calls}\n"}),
                ("finish", {"summary": "Did it."}),
            ]
        return ModelResponse.from_api(
            {
                "id": f"msg_{self.calls}",
                "model": request["model"],
                "stop_reason": "tool_use",
                "usage": {"input_tokens": 1, "output_tokens": 1},
                "content": [
                    {"type": "tool_use", "id": f"t{self.calls}_{i}", "name": n, "input": a}
                    for i, (n, a) in enumerate(calls)
                ],
            }
        )


def test_changes_that_reach_protected_paths_are_blocked(worker: Worker) -> None:
    cases = [
        (
            "`.github` made a symbolic link to a new directory with a workflow",
            "acme/linked",
            "mkdir -p ci/workflows && echo 'on: push' > ci/workflows/evil.yml && "
            "rm -rf .github && ln -s ci .github",
            "a symbolic link in place of a directory that holds protected paths in .github",
        ),
        (
            "a symbolic link out of the repository",
            "acme/escape",
            "ln -s /etc/passwd passwd",
            "a symbolic link out of the repository (to the absolute path /etc/passwd)",
        ),
        (
            "a change to `.agents.yml` (emptying protected_paths)",
            "acme/selfedit",
            "printf 'protected_paths: []\\nnetwork: {agent: true}\\n' > .agents.yml",
            "a change to a protected path in .agents.yml",
        ),
    ]
    for what, name, command, expected in cases:
        worker.repo(name, None)
        run, replies = worker.run_with(Commands([command]), f"in {name}: fix it")
        assert run.status is RunStatus.FAILED, (what, run.status, run.error)
        told = failure(replies)
        assert expected in told, (what, told)
        assert worker.forge.list_prs(name) == []
        TABLE.add(f"the agent's change: {what}", "thread reply (worker)", told)


def test_build_output_stays_out_of_the_pull_request(worker: Worker) -> None:
    worker.repo("acme/no-ignore", None, keep_gitignore=False)
    build = (
        "mkdir -p retrying/__pycache__ dist retrying.egg-info node_modules/x .pytest_cache && "
        "touch retrying/__pycache__/core.cpython-311.pyc dist/retrying-1.0.tar.gz "
        "retrying.egg-info/PKG-INFO node_modules/x/index.js .pytest_cache/README.md"
    )
    run, _ = worker.run_with(Commands([build]), "in acme/no-ignore: add a changelog entry")
    assert run.status is RunStatus.AWAITING_DECISION, run.error
    files = subprocess.run(
        ["git", "ls-tree", "-r", "--name-only", run.artifacts.branch or "HEAD"],
        cwd=worker.forge.repo_path("acme/no-ignore"),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert "CHANGELOG.md" in files
    built = [f for f in files if f.split("/")[0] in {"dist", "retrying.egg-info", "node_modules"}]
    assert built == []
    assert not any("__pycache__" in f or ".pytest_cache" in f for f in files)
    TABLE.add(
        "build output in a repository without a `.gitignore`",
        "the pull request",
        "left out: __pycache__/, *.pyc, dist/, *.egg-info/, node_modules/, .pytest_cache/ "
        f"(the PR's files: {', '.join(sorted(files))})",
    )


def test_a_junit_report_with_xml_entities_is_not_expanded() -> None:
    report = (
        '<?xml version="1.0"?><!DOCTYPE t [<!ENTITY boom "BOOM-BOOM-BOOM">]>'
        '<testsuite><testcase classname="t" name="x"><failure message="&boom;"/></testcase>'
        "</testsuite>"
    )
    with pytest.raises(ValueError, match=r"EntitiesForbidden|entit"):
        parse_junit(report)
    result = evaluate(
        CheckCommand(name="unit", run="pytest"), exit_code=1, output="1 failed", junit_xml=report
    )
    assert result.source != "junit"
    assert "BOOM" not in repr(result)
    TABLE.add(
        "a JUnit report with XML entities (written in the sandbox)",
        "the check's result",
        "not parsed (defusedxml refuses entities); the check is judged by its exit code",
    )
