"""The blueprint end to end on fast parts (fakeredis, LocalSandbox, LocalForge, a
scripted model): the clean change, the fix loop, escalation, pre-existing failures,
the review's extra round, and rework."""

from __future__ import annotations

import os
import time
from pathlib import Path

from jobs.blueprint.body import section_titles
from runs.events import ChecksRan, PullRequestOpened, StepStarted
from runs.record import RunStatus, Step
from sandboxes.cache import WorkspaceArchive
from sandboxes.config import SandboxConfig
from sandboxes.protocol import Sandbox
from tests.blueprint.conftest import (
    CLEAN_REQUEST,
    FIX_ONCE_REQUEST,
    REPO,
    REWORK_FEEDBACK,
    SAMPLE,
    Harness,
    script,
)
from tests.blueprint.helpers import commits, copy_sample, finish, verdict, write

ALL_STEPS = [
    Step.PREPARE,
    Step.PLAN,
    Step.AGENT,
    Step.CHECKS,
    Step.REVIEW,
    Step.PUBLISH,
    Step.WATCH_CI,
]


def test_a_clean_change_ends_in_a_draft_pr_awaiting_a_decision(harness: Harness) -> None:
    harness.script(script("clean"))
    run = harness.create(CLEAN_REQUEST, channel="C1", thread_ts="1700000000.000100")
    final = harness.run(run.id)

    assert final.status is RunStatus.AWAITING_DECISION, final.error
    assert final.step is Step.AWAIT_DECISION
    assert final.artifacts.completed_steps == ALL_STEPS
    assert final.attempts == 1
    a = final.artifacts
    assert a.branch == f"agents/1-{harness.store.nonce}-make-the-retry-limit-configurable"
    assert a.patch is not None
    assert "max_attempts: int = MAX_ATTEMPTS" in a.patch
    assert a.model_calls == 6
    assert a.manifest is not None
    assert set(a.manifest.prompt_sha256) == {"builder", "reviewer"}
    assert a.manifest.checks == ["python3 -m pytest -q --junitxml=/tmp/agents-checks/pytest.xml"]

    pr = harness.forge.get_pr(REPO, 1)
    assert pr.draft
    assert pr.state == "open"
    assert pr.url == a.pr_url
    assert section_titles(pr.body) == [
        "Summary",
        "Checks",
        "Review",
        "Notes from the agent",
        "Cost",
        "Reproducibility",
    ]
    assert pr.body.startswith("> make the retry limit configurable\n")
    assert "| pytest | `python3 -m pytest -q" in pr.body
    assert "passed (8 tests)" in pr.body
    assert "Verdict: **approve**" in pr.body
    assert "https://slack.com/archives/C1/p1700000000000100" in pr.body
    assert a.base_commit is not None
    assert a.base_commit in pr.body

    bare = harness.forge.repo_path(REPO)
    [message] = commits(bare, a.branch)
    assert message.startswith("Made the retry limit configurable")
    assert f"Agents-Run: #1@{harness.store.nonce} iteration 1" in message

    events = harness.store.events(run.id)
    steps = [e.step for e in events if isinstance(e, StepStarted)]
    assert steps == list(ALL_STEPS)
    [pr_event] = [e for e in events if isinstance(e, PullRequestOpened)]
    assert (pr_event.url, pr_event.number, pr_event.branch, pr_event.head_sha, pr_event.draft) == (
        pr.url,
        1,
        a.branch,
        pr.head_sha,
        True,
    )
    [checks] = [e for e in events if isinstance(e, ChecksRan)]
    assert (checks.passed, checks.text, checks.fix_round) == (
        True,
        "pytest passed (8 tests)",
        None,
    )
    assert final.cost.dollars > 0


def test_the_agent_gets_the_thread_it_was_asked_in(harness: Harness) -> None:
    harness.script(script("clean"))
    run = harness.create(CLEAN_REQUEST, context="ann: the limit lives in retry.py")
    harness.run(run.id)
    first = harness.models.requests[0]["messages"][0]["content"][0]["text"]
    assert "ann: the limit lives in retry.py" in first


def test_a_failing_check_goes_through_the_fix_loop_and_passes(harness: Harness) -> None:
    harness.script(script("fix-once"))
    run = harness.create(FIX_ONCE_REQUEST)
    final = harness.run(run.id)

    assert final.status is RunStatus.AWAITING_DECISION, final.error
    assert final.artifacts.fix_rounds_spent == 1
    checks = [e for e in harness.store.events(run.id) if isinstance(e, ChecksRan)]
    assert checks[0].passed is False
    assert (checks[0].fix_round, checks[0].last_round) == (1, 2)
    assert "test_other_errors_are_raised_at_once" in checks[0].text
    assert (checks[1].passed, checks[1].text, checks[1].fix_round) == (
        True,
        "pytest passed (6 tests)",
        None,
    )
    # The fix round was a fresh conversation that got the failure slice, not the log.
    fix_prompt = harness.models.requests[3]["messages"][0]["content"][0]["text"]
    assert "the checks fail now" in fix_prompt
    assert "test_other_errors_are_raised_at_once" in fix_prompt
    assert "test_returns_the_first_success" not in fix_prompt
    pr = harness.forge.get_pr(REPO, 1)
    assert "Fix rounds used: 1." in pr.body
    assert "if not isinstance(err, retry_on):" in (final.artifacts.patch or "")


def _never_fixed(rounds: int) -> list[dict[str, object]]:
    broken = "def test_broken() -> None:\n    assert 1 == 2, 'still broken'\n"
    replies = [write("tests/test_new.py", broken), finish("Added a test.")]
    for _ in range(rounds):
        replies.append(finish("I could not fix it."))
    replies.append(verdict("comment", "The new test fails."))
    return replies


def test_failing_after_the_last_round_escalates_to_a_draft(harness: Harness) -> None:
    harness.configure(fix_rounds=1, escalation="draft", draft_prs=False)
    harness.script(_never_fixed(1))
    run = harness.create("add a test")
    final = harness.run(run.id)

    assert final.status is RunStatus.AWAITING_DECISION
    assert final.artifacts.escalated
    assert final.artifacts.fix_rounds_spent == 1
    events = harness.store.events(run.id)
    checks = [e for e in events if isinstance(e, ChecksRan)]
    assert [c.passed for c in checks] == [False, False]
    assert checks[0].fix_round == 1
    assert checks[1].fix_round is None
    [escalated] = [e for e in events if e.kind == "escalated"]
    assert "after 1 fix round(s)" in escalated.text
    pr = harness.forge.get_pr(REPO, 1)
    assert pr.draft  # forced, although AGENTS_DRAFT_PRS is off
    assert "still fail after the fix rounds" in pr.body
    assert "tests/test_new.py::test_broken" in pr.body or "test_broken" in pr.body


def test_failing_after_the_last_round_stops_when_configured(harness: Harness) -> None:
    # No debugger here (it has a test of its own): the script is the builder's alone.
    harness.configure(fix_rounds=2, escalation="stop", debug_after_rounds=0)
    replies = _never_fixed(2)
    harness.script(replies[:-1])
    run = harness.create("add a test")
    final = harness.run(run.id)

    assert final.status is RunStatus.FAILED
    assert final.error is not None
    assert final.error.startswith("checks still fail after 2 fix round(s)")
    assert "Stopping here" in final.error
    assert harness.forge.list_prs(REPO) == []
    kinds = [e.kind for e in harness.store.events(run.id)]
    assert "escalated" in kinds


def test_agents_yml_sets_fix_rounds_and_escalation(harness: Harness, tmp_path: Path) -> None:
    source = copy_sample(
        SAMPLE, tmp_path / "src", {".agents.yml": "fix_rounds: 0\nescalation: stop\n"}
    )
    harness.add_repo("acme/strict", source)
    harness.script(_never_fixed(0)[:-1])
    final = harness.run(harness.create("add a test", repo="acme/strict").id)
    assert final.status is RunStatus.FAILED
    assert (final.error or "").startswith("checks still fail after 0 fix round(s)")


KNOWN_FAILURE = {
    "tests/test_clock.py": (
        "import time\n\n\ndef test_the_clock_is_frozen() -> None:\n"
        "    assert time.time() == 0, 'known failure on main'\n"
    )
}


def test_a_preexisting_failure_is_labelled_and_not_sent_to_the_agent(
    harness: Harness, tmp_path: Path
) -> None:
    source = copy_sample(SAMPLE, tmp_path / "src", KNOWN_FAILURE)
    harness.add_repo("acme/flaky", source)
    version = '__version__ = "0.1.0"\n'
    harness.script(
        [
            write("retrying/version.py", version),
            finish("Added __version__."),
            verdict("approve", "Fine."),
        ]
    )
    final = harness.run(harness.create("add a version module", repo="acme/flaky").id)

    assert final.status is RunStatus.AWAITING_DECISION, final.error
    assert final.artifacts.fix_rounds_spent == 0  # nothing of ours to fix
    [checks] = [e for e in harness.store.events(final.id) if isinstance(e, ChecksRan)]
    assert checks.passed is True
    assert "1 pre-existing failure(s)" in checks.text
    [result] = [r.model_dump(mode="json") for r in final.artifacts.check_reports[-1].results]
    [failure] = result["failures"]
    assert failure["preexisting"] is True
    assert failure["test_id"].endswith("test_the_clock_is_frozen")
    body = harness.forge.get_pr("acme/flaky", 1).body
    assert "**Pre-existing failures:**" in body
    assert "test_the_clock_is_frozen" in body
    assert "were not asked to fix" in body or "was not asked to fix them" in body
    # The reviewer is told too.
    review_prompt = harness.models.requests[-1]["messages"][0]["content"][0]["text"]
    assert "pre-existing: also fails on the base commit" in review_prompt


def test_base_check_results_are_cached_per_commit(harness: Harness, tmp_path: Path) -> None:
    source = copy_sample(SAMPLE, tmp_path / "src", KNOWN_FAILURE)
    harness.add_repo("acme/flaky", source)
    made: list[str] = []
    factory = harness.deps.sandboxes

    def counting(run_id: str, config, workspace):  # type: ignore[no-untyped-def]
        made.append(workspace.base_commit)
        return factory(run_id, config, workspace)

    harness.deps.sandboxes = counting
    for n in range(2):
        harness.script(
            [write(f"retrying/v{n}.py", "X = 1\n"), finish("Added."), verdict("approve", "Fine.")]
        )
        final = harness.run(harness.create(f"add module {n}", repo="acme/flaky").id)
        assert final.status is RunStatus.AWAITING_DECISION
    base = final.artifacts.base_commit
    assert made.count(base) == 3  # two runs' own sandboxes, and the base checks once


def test_a_blocking_review_buys_one_more_round(harness: Harness) -> None:
    harness.script(
        [
            write("retrying/limits.py", "LIMIT = 3\n"),
            finish("Added a limits module."),
            verdict("block", "LIMIT duplicates MAX_ATTEMPTS; import it instead."),
            write(
                "retrying/limits.py",
                "from retrying.retry import MAX_ATTEMPTS as LIMIT\n",
                "Fixing.",
            ),
            finish("LIMIT now comes from MAX_ATTEMPTS."),
            verdict("approve", "Resolved."),
        ]
    )
    final = harness.run(harness.create("add a limits module").id)

    assert final.status is RunStatus.AWAITING_DECISION, final.error
    a = final.artifacts
    assert a.review_rounds == 2
    assert a.review_fixed
    assert a.review is not None
    assert a.review.model_dump() == {
        "verdict": "approve",
        "notes": "Resolved.",
        "round": 2,
        "model": "claude-opus-5-5",
        "criteria": [],
        "findings": [],
    }
    assert "MAX_ATTEMPTS as LIMIT" in (a.patch or "")
    fix_prompt = harness.models.requests[3]["messages"][0]["content"][0]["text"]
    assert "LIMIT duplicates MAX_ATTEMPTS" in fix_prompt
    # The reviewer never sees the builder's conversation: one user message, read-only
    # tools, and it ends with its verdict.
    reviewer = harness.models.requests[-1]
    assert len(reviewer["messages"]) == 1
    assert [t["name"] for t in reviewer["tools"]] == [
        "read_file",
        "list_files",
        "search",
        "verdict",
    ]
    assert "Fixing." not in str(reviewer)
    verdicts = [e.verdict for e in harness.store.events(final.id) if e.kind == "review"]
    assert verdicts == ["block", "approve"]


def test_publish_prunes_what_killed_workers_left_and_leaves_nothing(harness: Harness) -> None:
    scratch = harness.deps.workdir
    stale, live = scratch / "run-7-dead", scratch / "run-8-live"
    (stale / ".git").mkdir(parents=True)  # half-made by a killed git init
    (live / ".git").mkdir(parents=True)  # another worker's publish, in progress
    seven_hours_ago = time.time() - 7 * 3600
    os.utime(stale, (seven_hours_ago, seven_hours_ago))
    harness.script(script("clean"))

    final = harness.run(harness.create(CLEAN_REQUEST).id)

    assert final.status is RunStatus.AWAITING_DECISION, final.error
    assert sorted(p.name for p in scratch.iterdir()) == ["run-8-live"]


def test_a_rework_after_the_pr_was_merged_fails_and_pushes_nothing(harness: Harness) -> None:
    harness.script(script("clean"), script("rework"))
    run = harness.create(CLEAN_REQUEST)
    first = harness.run(run.id)
    assert first.status is RunStatus.AWAITING_DECISION, first.error
    harness.forge.mark_ready(REPO, 1)
    harness.forge.merge(REPO, 1)  # by hand on GitHub, or by an approve that died after

    harness.rework(run.id, REWORK_FEEDBACK)
    final = harness.run(run.id)

    assert final.status is RunStatus.FAILED
    assert final.error is not None
    assert "pull request #1 was merged before this rework started" in final.error
    assert commits(harness.forge.repo_path(REPO), first.artifacts.branch or "") == commits(
        harness.forge.repo_path(REPO), first.artifacts.head_sha or ""
    )
    assert len(harness.models.requests) == 6  # the rework never reached the model


def test_rework_adds_a_second_commit_to_the_same_branch(harness: Harness) -> None:
    harness.script(script("clean"), script("rework"))
    run = harness.create(CLEAN_REQUEST)
    first = harness.run(run.id)
    assert first.status is RunStatus.AWAITING_DECISION
    first_head = first.artifacts.head_sha
    # The publish directory is scratch: the rework below starts from the forge again.
    assert list(harness.deps.workdir.iterdir()) == []

    reworked = harness.rework(run.id, REWORK_FEEDBACK)
    assert reworked.status is RunStatus.REWORK
    assert reworked.iteration == 2
    final = harness.run(run.id)

    assert final.status is RunStatus.AWAITING_DECISION, final.error
    a = final.artifacts
    assert final.iteration == 2
    assert a.steps_iteration == 2
    assert a.branch == first.artifacts.branch
    assert a.pr_number == 1
    assert a.start_commit == first_head
    assert a.head_sha != first_head
    assert [f.text for f in a.feedback] == [REWORK_FEEDBACK]
    assert final.pending_feedback == []
    assert a.earlier_summaries == [first.artifacts.summary]
    assert "CHANGELOG.md" in (a.patch or "")
    assert "retry.py" not in (a.patch or "")

    bare = harness.forge.repo_path(REPO)
    messages = commits(bare, a.branch or "")
    assert len(messages) == 2
    assert f"Agents-Run: #1@{harness.store.nonce} iteration 2" in messages[1]
    # No force push: the first commit is still an ancestor of the new head.
    from tests.blueprint.helpers import git

    git(bare, "merge-base", "--is-ancestor", first_head or "", a.head_sha or "")
    [pr] = harness.forge.list_prs(REPO)
    assert pr.head_sha == a.head_sha
    assert "## Iterations" in pr.body
    assert REWORK_FEEDBACK in pr.body
    prompt = harness.models.requests[6]["messages"][0]["content"][0]["text"]
    assert REWORK_FEEDBACK in prompt
    assert "iteration 2" in prompt
    events = harness.store.events(run.id)
    assert len([e for e in events if isinstance(e, PullRequestOpened)]) == 1
    [updated] = [e for e in events if e.kind == "pr_updated"]
    assert updated.text == f"pushed iteration 2 to {a.branch}"


def test_an_oversized_patch_fails_the_run_with_the_reason(harness: Harness) -> None:
    """The agent's change exports bigger than the sandbox allows: the run ends failed,
    saying why and what to look at, and nothing is pushed."""
    harness.script(script("clean"))
    inner = harness.deps.sandboxes

    def small_patches(run_id: str, config: SandboxConfig, workspace: WorkspaceArchive) -> Sandbox:
        return inner(run_id, config.model_copy(update={"max_patch_bytes": 256}), workspace)

    harness.deps.sandboxes = small_patches
    run = harness.run(harness.create(CLEAN_REQUEST).id)
    assert run.status is RunStatus.FAILED
    assert run.error is not None
    assert "the patch is larger than 256 bytes" in run.error
    assert "is a build directory missing from .gitignore?" in run.error
    assert harness.forge.list_prs(REPO) == []


NOTHING_IMPORTS = {
    "tests/test_retry.py": "import not_installed_anywhere\n\n\ndef test_x() -> None:\n    pass\n",
    "tests/test_more.py": "from also_missing import thing\n\n\ndef test_y() -> None:\n    pass\n",
}


def test_tests_that_all_fail_to_import_are_not_green(harness: Harness, tmp_path: Path) -> None:
    """Every test module fails to import on the base and the head: no failure counts as
    pre-existing, no fix round is spent, and the run escalates saying why."""
    source = copy_sample(SAMPLE, tmp_path / "src", NOTHING_IMPORTS)
    harness.add_repo("acme/broken", source)
    harness.configure(fix_rounds=2, escalation="draft")
    harness.script(
        [
            write("retrying/version.py", '__version__ = "0.1.0"\n'),
            finish("Added __version__."),
            verdict("approve", "Fine."),
        ]
    )
    final = harness.run(harness.create("add a version module", repo="acme/broken").id)

    assert final.artifacts.fix_rounds_spent == 0
    assert final.artifacts.escalated
    events = harness.store.events(final.id)
    assert not any(isinstance(e, ChecksRan) and e.passed for e in events)
    [escalated] = [e for e in events if e.kind == "escalated"]
    assert escalated.text.startswith("checks could not run: 2 test modules failed to import")
    assert "(first: tests.test_more)" in escalated.text
    [result] = final.artifacts.check_reports[-1].results
    assert not any(f.preexisting for f in result.failures)
    body = harness.forge.get_pr("acme/broken", 1).body
    assert "**checks could not run:**" in body
    assert "2 test modules failed to import" in body
