"""Every user-facing bad input, driven through the real surface, with the exact message
the user sees.

Slack side: signed HTTP to the bolt app, the emulator as Slack, real Redis. Worker side
(the repository's ``.agents.yml``, its check commands, a forge that doesn't know the
repository, approving without a GitHub login): the worker's code in this process, on a
local sandbox and the local forge, with the real reporter drawing the thread into the
emulator. Each row is recorded for ``docs/reliability.md``.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis

from bot.blocks import ACTION_APPROVE, ACTION_REWORK
from bot.listeners.views.rework import EMPTY_ERROR
from bot.reporter import Reporter
from jobs import decisions
from jobs.agent.config import AgentConfig
from jobs.agent.model import ModelResponse, OnRetry, Request
from jobs.blueprint.config import BlueprintConfig
from jobs.blueprint.deps import Deps
from jobs.blueprint.runner import run_blueprint
from jobs.blueprint.wiring import sandbox_factory
from jobs.forge.local import LocalForge
from runs.record import Run, RunStatus
from sandboxes.cache import RepoCache
from tests.bot.conftest import ALICE, GENERAL, Harness, drain, open_harness
from tests.reliability.figures import Table
from tests.reliability.surface import (
    ask,
    awaiting,
    bot_replies,
    buttons,
    ephemeral_texts,
    rework_modal,
    runs_created,
)

pytestmark = pytest.mark.redis

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "examples" / "sample-repo"
TABLE = Table(
    "bad-input",
    "Bad input: what the user sees",
    ["input", "where the user sees it", "exact message"],
    notes=(
        "Each input goes through the real surface (signed HTTP to the bolt app, the "
        "Slack emulator) and, for repository and approval cases, the worker's code with "
        "the real reporter drawing the thread. The bot's allow-list here is `acme/*`. "
        "Write access on GitHub is required with `AGENTS_REQUIRE_GITHUB_WRITE=true`; "
        "Slack users map to GitHub logins through `AGENTS_USER_MAP`."
    ),
    order=70,
)
record_table = TABLE.fixture()
row = TABLE.add


@pytest.fixture
def surface(real_redis_conn: redis.Redis) -> Iterator[Harness]:
    with open_harness(real_redis_conn, allowed_repos=["acme/*"]) as h:
        yield h


def answer_to(h: Harness, text: str) -> tuple[str, str]:
    """Mention the bot with ``text``; the thread's reply, and the message's ts."""
    ts, delivery = h.emu.mention(ALICE, GENERAL, text)
    assert delivery.status == 200
    h.settle()
    replies = bot_replies(h, GENERAL, ts)
    assert replies, text
    return str(replies[-1]["text"]), ts


# -- the Slack side -------------------------------------------------------------------


def test_mentions_that_start_nothing(surface: Harness) -> None:
    h = surface
    cases = [
        ("an empty mention", ""),
        ("no repository and no channel default (asked with a picker)", None),
        ("a malformed repository name", "in acme: fix it"),
        ("a repository outside the allow-list", "in evil/repo: fix it"),
        ("a repository and no request", "in acme/api:"),
    ]
    answers = []
    for what, text in cases:
        if text is None:
            h.emu.add_channel("C_RANDOM", "random")
            ts, _ = h.emu.mention(ALICE, "C_RANDOM", "fix the flaky test")
            h.settle()
            told = str(bot_replies(h, "C_RANDOM", ts)[-1]["text"])
        else:
            told, _ = answer_to(h, text)
        assert runs_created(h) == 0, what
        answers.append(told)
    empty, no_repo, malformed, outside, no_request = answers
    assert empty.startswith("Ask me to change a repository")
    assert no_repo.startswith("Which repository should I change for “fix the flaky test”?")
    assert "Write it as `owner/name`" in malformed
    assert "AGENTS_ALLOWED_REPOS" in outside
    assert "Add the request after the repository" in no_request
    for (what, _), told in zip(cases, answers, strict=True):
        row(what, "thread reply", told)


def test_a_button_on_a_finished_run(surface: Harness) -> None:
    h = surface
    run = awaiting(h, ask(h))
    message = buttons(h, run)
    h.services.store.transition(run.id, RunStatus.APPROVED, by=ALICE)
    for action in (ACTION_APPROVE, ACTION_REWORK):
        h.emu.click(ALICE, GENERAL, message, action)
    h.settle()
    told = ephemeral_texts(h, ALICE)
    assert len(set(told)) == 1
    assert h.services.store.get(run.id).status is RunStatus.APPROVED
    assert "mention me in a new message" in told[0]
    row("a button on a finished run (approved)", "ephemeral", told[0])


def test_rework_feedback_left_empty(surface: Harness) -> None:
    h = surface
    run = awaiting(h, ask(h))
    modal = rework_modal(h, run)
    blank = h.emu.submit_view(ALICE, modal["id"], {"feedback": {"feedback_text": "  \n "}})
    answer = json.loads(blank.response_body)
    assert answer == {"response_action": "errors", "errors": {"feedback": EMPTY_ERROR}}
    row("rework feedback left empty (the modal)", "inline error under the field", EMPTY_ERROR)
    # The same in the thread: a mention with nothing but the mention.
    h.emu.mention(ALICE, GENERAL, "", thread_ts=run.thread_ts)
    h.settle()
    told = ephemeral_texts(h, ALICE)[-1]
    assert told.startswith("Tell me what to change")
    assert h.services.store.get(run.id).status is RunStatus.AWAITING_DECISION
    row("rework feedback left empty (a bare mention in the thread)", "ephemeral", told)


def test_unknown_subcommands(surface: Harness) -> None:
    h = surface
    for text in ("frobnicate", "status banana", "cancel 999"):
        h.emu.slash(ALICE, GENERAL, "/agents", text)
    h.settle()
    unknown, not_an_id, missing = ephemeral_texts(h, ALICE)
    assert unknown.startswith("I don't know `frobnicate`.")
    assert "`/agents status`" in unknown
    assert not_an_id.startswith("`banana` is not a run id")
    assert missing.startswith("There is no run #999")
    row("an unknown subcommand (`/agents frobnicate`)", "ephemeral", unknown)
    row("a run id that isn't one (`/agents status banana`)", "ephemeral", not_an_id)
    row("a run that doesn't exist (`/agents cancel 999`)", "ephemeral", missing)


# -- the worker side ------------------------------------------------------------------


class Agreeable:
    """A scripted model: the builder writes a CHANGELOG entry and finishes; the reviewer
    approves. Enough for a run to reach its checks and publish."""

    def __init__(self) -> None:
        self.calls = 0

    @contextmanager
    def open(self, run: Run) -> Iterator[Agreeable]:
        yield self

    def complete(self, request: Request, *, on_retry: OnRetry | None = None) -> ModelResponse:
        self.calls += 1
        names = {tool["name"] for tool in request.get("tools", [])}
        if "verdict" in names:
            calls: list[tuple[str, dict[str, Any]]] = [
                ("verdict", {"verdict": "approve", "notes": "fine"})
            ]
        else:
            calls = [
                ("write_file", {"path": "CHANGELOG.md", "content": f"- change {self.calls}\n"}),
                ("finish", {"summary": "Added a CHANGELOG entry."}),
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


class Worker:
    """The worker's code for runs the bot created, drawing the thread as it goes."""

    def __init__(self, h: Harness, tmp_path: Path) -> None:
        self.h = h
        self.tmp_path = tmp_path
        self.forge = LocalForge(tmp_path / "forge")
        self.reporter = Reporter(h.services.store, h.client, min_interval=0.01)
        self.reporter.ensure_group()
        self.config = BlueprintConfig(ci_timeout_seconds=0, sandbox_backend="local")

    def repo(
        self,
        name: str,
        agents_yml: str | None,
        *,
        keep_tests: bool = True,
        keep_gitignore: bool = True,
    ) -> None:
        source = self.tmp_path / name.replace("/", "-")
        shutil.copytree(SAMPLE, source)
        if not keep_gitignore:
            (source / ".gitignore").unlink()
        if not keep_tests:
            shutil.rmtree(source / "tests")
            (source / "pyproject.toml").unlink()
        if agents_yml is not None:
            (source / ".agents.yml").write_text(agents_yml)
        self.forge.create_repo(name, source=source)

    def run(self, request: str) -> tuple[Run, list[str]]:
        return self.run_with(Agreeable(), request)

    def run_with(self, models: Any, request: str) -> tuple[Run, list[str]]:
        """The run ``request`` makes, worked with ``models`` (a scripted model provider)."""
        h = self.h
        ts, delivery = h.emu.mention(ALICE, GENERAL, request)
        assert delivery.status == 200
        h.settle()
        run = h.services.store.find_by_thread(GENERAL, ts)
        assert run is not None
        deps = Deps(
            store=h.services.store,
            forge=self.forge,
            cache=RepoCache(self.tmp_path / "cache"),
            sandboxes=sandbox_factory("local"),
            models=models,
            agent=AgentConfig(),
            config=self.config,
            workdir=self.tmp_path / f"publish-{run.id}",
        )
        done = run_blueprint(deps, run.id, by="test")
        drain(self.reporter)
        replies = [str(m["text"]) for m in bot_replies(h, GENERAL, ts)]
        return done, replies


@pytest.fixture
def worker(surface: Harness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Worker:
    # LocalSandbox takes PATH from the worker: this interpreter's python3 first.
    import os
    import sys

    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    return Worker(surface, tmp_path)


def failure(replies: list[str]) -> str:
    return next(r for r in replies if r.startswith(":x:"))


def test_an_unknown_repository(worker: Worker) -> None:
    run, replies = worker.run("in acme/nope: fix it")
    assert run.status is RunStatus.FAILED
    told = failure(replies)
    assert "acme/nope" in told
    row("an unknown repository (`acme/nope`)", "thread reply (worker)", told)


def test_a_malformed_agents_yml(worker: Worker) -> None:
    worker.repo("acme/broken-yaml", "checks: [pytest\nsetup: x\n")
    worker.repo("acme/bad-key", "checks:\n  - name: unit\n    run: pytest\nnetwrok: true\n")
    for name in ("acme/broken-yaml", "acme/bad-key"):
        run, replies = worker.run(f"in {name}: fix it")
        assert run.status is RunStatus.FAILED
        told = failure(replies)
        assert ".agents.yml" in told
        row(f"a malformed `.agents.yml` ({name})", "thread reply (worker)", told)


def test_a_missing_check_command(worker: Worker) -> None:
    worker.repo("acme/no-run", "checks:\n  - name: unit\n")
    run, replies = worker.run("in acme/no-run: fix it")
    assert run.status is RunStatus.FAILED
    told = failure(replies)
    assert "run" in told
    row("a check without a command in `.agents.yml`", "thread reply (worker)", told)

    worker.repo("acme/no-tool", "fix_rounds: 0\nescalation: stop\nchecks:\n  - frobnicate-tests\n")
    run, replies = worker.run("in acme/no-tool: fix it")
    # It fails on the base commit too, so it is not the agent's to fix: the run goes on
    # and the PR body says what is wrong with the configuration.
    assert run.status is RunStatus.AWAITING_DECISION, run.error
    pr = worker.forge.find_pr("acme/no-tool", run.artifacts.branch or "")
    assert pr is not None
    (told,) = [line for line in pr.body.splitlines() if line.startswith("| frobnicate-tests")]
    assert "exit 127: command not found" in told
    row("a check command the sandbox doesn't have", "the PR body (checks table)", told)

    worker.repo("acme/no-checks", None, keep_tests=False)
    run, replies = worker.run("in acme/no-checks: fix it")
    assert run.status is RunStatus.AWAITING_DECISION, run.error
    pr = worker.forge.find_pr("acme/no-checks", run.artifacts.branch or "")
    assert pr is not None
    lines = pr.body.splitlines()
    told = next(line for line in lines[lines.index("## Checks") + 1 :] if line.strip())
    assert "Add them under `checks:`" in told
    row("no check configured or detected", "the PR body (checks section)", told)


def test_no_github_login_when_write_access_is_required(worker: Worker) -> None:
    h = worker.h
    worker.repo("acme/retrying", None)
    run, _ = worker.run("in acme/retrying: add a changelog entry")
    assert run.status is RunStatus.AWAITING_DECISION, run.error
    h.emu.click(ALICE, GENERAL, buttons(h, run), ACTION_APPROVE)
    h.settle()
    config = worker.config.model_copy(update={"require_github_write": True, "user_map": {}})
    decisions.approve_on_forge(h.services.store, worker.forge, config, run.id, ALICE)
    drain(worker.reporter)
    told = str(bot_replies(h, GENERAL, run.thread_ts or "")[-1]["text"])
    assert told.startswith(f":no_entry: <@{ALICE}> has no GitHub login mapped")
    assert "AGENTS_USER_MAP" in told
    assert h.services.store.get(run.id).status is RunStatus.AWAITING_DECISION
    row(
        "approve by a Slack user with no GitHub login, write access required",
        "thread reply (worker)",
        told,
    )
