"""Single steps and their edges: .agents.yml problems, setup, the safety gate, CI,
the PR body, sandbox settings, and picking a transcript."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from jobs.blueprint.body import pr_body, redact_secrets
from jobs.blueprint.config import BlueprintConfig
from jobs.blueprint.providers import find_transcript
from jobs.blueprint.sandbox import sandbox_config
from jobs.blueprint.steps.prepare import effective_config
from jobs.forge.protocol import CheckRun
from jobs.repo_config import RepoConfig, parse_repo_config
from process.exceptions import TranscriptInvalid
from runs.artifacts import CiRecord
from runs.events import ChecksRan, SafetyGateBlocked
from runs.record import Run, RunStatus
from sandboxes.config import SandboxConfig
from tests.blueprint.conftest import CLEAN_REQUEST, REPO, SAMPLE, Harness, script
from tests.blueprint.helpers import copy_sample, finish, verdict, write

AWS_KEY = "AKIA" + "IOSFODNN7EXAMPLE"


def repo_with(harness: Harness, tmp_path: Path, name: str, files: dict[str, str]) -> str:
    harness.add_repo(name, copy_sample(SAMPLE, tmp_path / name.replace("/", "-"), files))
    return name


def test_an_unknown_key_in_agents_yml_fails_the_run_with_a_clear_message(
    harness: Harness, tmp_path: Path
) -> None:
    repo = repo_with(harness, tmp_path, "acme/typo", {".agents.yml": "chekcs: pytest\n"})
    final = harness.run(harness.create("anything", repo=repo).id)
    assert final.status is RunStatus.FAILED
    assert final.error == (
        ".agents.yml: unknown key `chekcs` (allowed here: setup, checks, image, network, "
        "limits, fix_rounds, escalation, protected_paths, allow_protected, plan, on_edit, "
        "environment)"
    )
    assert harness.models.requests == []


def test_a_bad_value_in_agents_yml_fails_the_run_with_a_clear_message(
    harness: Harness, tmp_path: Path
) -> None:
    repo = repo_with(harness, tmp_path, "acme/bad", {".agents.yml": "fix_rounds: lots\n"})
    final = harness.run(harness.create("anything", repo=repo).id)
    assert final.status is RunStatus.FAILED
    assert final.error is not None
    assert final.error.startswith(".agents.yml: `fix_rounds`: ")
    assert '(got "lots")' in final.error


def test_setup_runs_and_a_failing_setup_ends_the_run(harness: Harness, tmp_path: Path) -> None:
    config = "setup:\n  - echo ready > .setup-done\n  - 'false'\n"
    repo = repo_with(harness, tmp_path, "acme/setup", {".agents.yml": config})
    final = harness.run(harness.create("anything", repo=repo).id)
    assert final.status is RunStatus.FAILED
    assert final.error is not None
    assert final.error.startswith("setup command `false` exited 1")


def test_configured_checks_and_setup_are_used(harness: Harness, tmp_path: Path) -> None:
    config = (
        "setup: echo built > build.txt\n"
        "checks:\n  - name: built\n    run: grep -q built build.txt\n"
        "  - name: unit\n    run: python3 -m pytest -q\n"
    )
    repo = repo_with(
        harness, tmp_path, "acme/configured", {".agents.yml": config, ".gitignore": "build.txt\n"}
    )
    harness.script([write("NOTES.md", "notes\n"), finish("Added notes."), verdict("approve", "ok")])
    final = harness.run(harness.create("add notes", repo=repo).id)
    assert final.status is RunStatus.AWAITING_DECISION, final.error
    [checks] = [e for e in harness.store.events(final.id) if isinstance(e, ChecksRan)]
    assert checks.text == "built passed; unit passed"
    assert final.artifacts.manifest is not None
    assert final.artifacts.manifest.setup == ["echo built > build.txt"]
    assert "build.txt" not in (final.artifacts.patch or "")


def test_the_safety_gate_blocks_an_aws_key(harness: Harness) -> None:
    harness.script(
        [
            write("retrying/settings.py", f'KEY = "{AWS_KEY}"\n'),
            finish("Added settings."),
            verdict("approve", "ok"),
        ]
    )
    final = harness.run(harness.create("add settings").id)
    assert final.status is RunStatus.FAILED
    assert final.error is not None
    assert final.error.startswith("the diff safety gate refused to push: possible AWS access key")
    assert "retrying/settings.py:1" in final.error
    assert AWS_KEY not in final.error
    assert harness.forge.remote_head(REPO, f"agents/1-{harness.store.nonce}-add-settings") is None
    assert harness.forge.list_prs(REPO) == []
    [gate] = [e for e in harness.store.events(final.id) if isinstance(e, SafetyGateBlocked)]
    assert gate.findings
    assert AWS_KEY not in gate.model_dump_json()


def test_the_safety_gate_blocks_a_workflow_change(harness: Harness) -> None:
    harness.script(
        [
            write(".github/workflows/ci.yml", "on: push\n"),
            finish("Added CI."),
            verdict("approve", "ok"),
            # A workflow file calls for the security reviewer too.
            verdict("comment", "The workflow has no permissions block."),
        ]
    )
    final = harness.run(harness.create("add ci").id)
    assert final.status is RunStatus.FAILED
    assert final.error == (
        "the diff safety gate refused to push: a change to a protected path in "
        ".github/workflows/ci.yml (a protected path can be allowed with `allow_protected` "
        "in .agents.yml)"
    )
    assert harness.forge.list_prs(REPO) == []


def test_a_protected_path_can_be_allowed(harness: Harness, tmp_path: Path) -> None:
    allowed = "allow_protected: ['.github/workflows/ci.yml']\n"
    repo = repo_with(harness, tmp_path, "acme/ci", {".agents.yml": allowed})
    harness.script(
        [
            write(".github/workflows/ci.yml", "on: push\n"),
            finish("Added CI."),
            verdict("approve", "ok"),
            # A workflow file calls for the security reviewer too.
            verdict("comment", "The workflow has no permissions block."),
        ]
    )
    final = harness.run(harness.create("add ci", repo=repo).id)
    assert final.status is RunStatus.AWAITING_DECISION, final.error


def test_ci_is_watched_and_recorded(harness: Harness) -> None:
    harness.configure(ci_timeout_seconds=60, ci_poll_seconds=0.05, ci_settle_seconds=30)
    harness.script(script("clean"))
    harness.forge.enable_ci(REPO)
    run = harness.create(CLEAN_REQUEST)
    stop = threading.Event()

    def report_ci() -> None:
        while not stop.wait(0.05):
            branch = f"agents/1-{harness.store.nonce}-make-the-retry-limit-configurable"
            head = harness.forge.remote_head(REPO, branch)
            if head:
                harness.forge.set_checks(REPO, head, [CheckRun(name="ci/test", state="success")])
                return

    thread = threading.Thread(target=report_ci)
    thread.start()
    try:
        final = harness.run(run.id)
    finally:
        stop.set()
        thread.join()
    assert final.status is RunStatus.AWAITING_DECISION, final.error
    assert final.artifacts.ci is not None
    assert final.artifacts.ci.state == "success"
    assert [c.model_dump() for c in final.artifacts.ci.checks] == [
        {"name": "ci/test", "state": "success"}
    ]
    texts = [e.text for e in harness.store.events(run.id) if e.kind == "ci"]
    assert texts == [f"CI passed on {(final.artifacts.head_sha or '')[:12]}"]


def test_ci_is_not_waited_for_when_the_forge_reports_none(harness: Harness) -> None:
    # A settle time no test would wait out: only skipping the watch lets this finish.
    harness.configure(ci_timeout_seconds=3600, ci_poll_seconds=600, ci_settle_seconds=3600)
    harness.script(script("clean"))
    assert not harness.forge.ci_configured(REPO)
    final = harness.run(harness.create(CLEAN_REQUEST).id)
    assert final.status is RunStatus.AWAITING_DECISION, final.error
    assert final.artifacts.head_sha is not None
    assert final.artifacts.ci == CiRecord(state="unconfigured", sha=final.artifacts.head_sha)
    texts = [e.text for e in harness.store.events(final.id) if e.kind == "ci"]
    assert texts == ["CI not watched: the forge reports no CI for this repository"]


def test_failed_ci_gets_one_fix_round_pushed_as_a_new_commit(harness: Harness) -> None:
    harness.configure(
        ci_timeout_seconds=60, ci_poll_seconds=0.05, ci_settle_seconds=30, ci_fix=True
    )
    fix = [
        write("retrying/lint.py", "OK = True\n", "Fixing what CI reported."),
        finish("Fixed the lint error CI reported."),
    ]
    harness.script(script("clean") + fix)
    harness.forge.enable_ci(REPO)
    run = harness.create(CLEAN_REQUEST)
    branch = f"agents/1-{harness.store.nonce}-make-the-retry-limit-configurable"
    stop = threading.Event()

    def report_ci() -> None:
        seen: set[str] = set()
        while not stop.wait(0.05):
            head = harness.forge.remote_head(REPO, branch)
            if head and head not in seen:
                seen.add(head)
                state = "failure" if len(seen) == 1 else "success"
                summary = "lint: retrying/lint.py missing" if state == "failure" else None
                harness.forge.set_checks(
                    REPO, head, [CheckRun(name="ci/lint", state=state, summary=summary)]
                )

    thread = threading.Thread(target=report_ci)
    thread.start()
    try:
        final = harness.run(run.id)
    finally:
        stop.set()
        thread.join()
    assert final.status is RunStatus.AWAITING_DECISION, final.error
    ci = final.artifacts.ci
    assert ci is not None
    assert ci.fix == "done"
    assert ci.state == "success"
    assert ci.after_fix is not None
    assert ci.after_fix.state == "success"
    fix_prompt = harness.models.requests[6]["messages"][0]["content"][0]["text"]
    assert "lint: retrying/lint.py missing" in fix_prompt
    from tests.blueprint.helpers import commits

    messages = commits(harness.forge.repo_path(REPO), branch)
    assert len(messages) == 2
    assert len(harness.forge.list_prs(REPO)) == 1


def test_effective_config_takes_worker_defaults_only_where_the_repo_is_silent() -> None:
    defaults = BlueprintConfig(fix_rounds=5, escalation="stop", protected_paths=("infra/**",))
    silent, lowered = effective_config(parse_repo_config("checks: make test\n"), defaults)
    assert (silent.fix_rounds, silent.escalation, silent.protected_paths) == (
        5,
        "stop",
        ["infra/**"],
    )
    assert lowered == []
    # A repository tightens: fewer rounds, more protected paths; it cannot unprotect.
    said, lowered = effective_config(
        parse_repo_config("fix_rounds: 1\nescalation: draft\nprotected_paths: [docs/**]\n"),
        defaults,
    )
    assert (said.fix_rounds, said.escalation, said.protected_paths) == (
        1,
        "draft",
        ["infra/**", "docs/**"],
    )
    emptied, _ = effective_config(parse_repo_config("protected_paths: []\n"), defaults)
    assert emptied.protected_paths == ["infra/**"]
    assert lowered == []


def test_sandbox_config_applies_image_network_and_limits() -> None:
    repo = parse_repo_config(
        "image: python:3.12\nnetwork: {setup: true}\n"
        "limits: {memory: 2g, cpus: 2, pids: 512, command_timeout: 120}\n"
    )
    roomy = SandboxConfig(memory_mb=8192, cpus=4, pids=1024)
    config = sandbox_config(roomy, repo)
    assert config.image == "python:3.12"
    assert config.network is True
    assert (config.memory_mb, config.cpus, config.pids) == (2048, 2.0, 512)
    assert config.command_timeout == 120
    assert sandbox_config(SandboxConfig(), RepoConfig()).network is False


def test_the_pr_body_never_carries_a_secret() -> None:
    token = "ghp_" + "a" * 36
    assert token not in redact_secrets(f"the token is {token}")
    run = Run(id=3, requester="U1", repo=REPO, request="use " + token)
    run.artifacts.summary = f"Used {AWS_KEY}."
    body = pr_body(run, slack_url="https://acme.slack.com")
    assert token not in body
    assert AWS_KEY not in body
    assert "[redacted: AKIA…, 20 chars]" in body


def test_a_transcript_is_chosen_by_request_and_iteration(tmp_path: Path) -> None:
    for iteration in (1, 2):
        header = {
            "format": "agents-transcript",
            "version": 1,
            "iteration": iteration,
            "task": {"request": "do it"},
        }
        (tmp_path / f"t{iteration}.jsonl").write_text(json.dumps(header) + "\n")
    run = Run(id=1, requester="U1", repo=REPO, request="do it", iteration=2)
    assert find_transcript(tmp_path, run).name == "t2.jsonl"
    assert find_transcript(tmp_path / "t1.jsonl", run).name == "t1.jsonl"
    with pytest.raises(TranscriptInvalid, match="no transcript in"):
        find_transcript(tmp_path, run.model_copy(update={"request": "other"}))


class NetworkSpy:
    """A LocalSandbox that records the network switches a Docker sandbox would make."""

    def __init__(self, inner: object, log: list[bool]) -> None:
        self.inner = inner
        self.log = log

    def set_network(self, enabled: bool) -> None:
        self.log.append(enabled)

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


def test_only_setup_is_online_when_the_repo_asks_for_setup_network(
    harness: Harness, tmp_path: Path
) -> None:
    config = "network: {setup: true}\nsetup: echo installing\n"
    repo = repo_with(harness, tmp_path, "acme/online", {".agents.yml": config})
    switches: list[bool] = []
    factory = harness.deps.sandboxes
    made: list[object] = []

    def spying(run_id: str, sandbox_config: SandboxConfig, workspace: object) -> object:
        made.append(sandbox_config)
        return NetworkSpy(factory(run_id, sandbox_config, workspace), switches)  # type: ignore[arg-type]

    harness.deps.sandboxes = spying  # type: ignore[assignment]
    harness.script([write("NOTES.md", "notes\n"), finish("Added notes."), verdict("approve", "ok")])
    final = harness.run(harness.create("add notes", repo=repo).id)
    assert final.status is RunStatus.AWAITING_DECISION, final.error
    assert [c.network for c in made] == [True]  # type: ignore[attr-defined]
    # online for setup, then offline for the agent and the checks, never online again
    assert switches[0] is True
    assert False in switches
    assert switches == sorted(switches, reverse=True)
