"""The factory's acceptance flows, each recorded through the real SDK against the fake
Messages API and then replayed (tests/blueprint/factory_flows.py), on the sample
repository in a LocalSandbox with the local forge: plan -> revise -> approve -> build,
specialist reviewers, fallbacks, budgets that ask, the debugger, on_edit checks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import fakeredis

from fakes.anthropic import message, text, tool_use
from jobs import decisions
from jobs.agent.config import AgentConfig
from jobs.pauses import expired_asks
from jobs.queue import RunQueue
from process.settings import AgentLimits
from runs.artifacts import BudgetAsk
from runs.events import (
    BudgetAsked,
    BudgetDecided,
    ModelFellBack,
    PlanDecided,
    PlanProposed,
    RootCauseFound,
    SpecialistReviewed,
    TodosUpdated,
)
from runs.record import RunStatus, Step
from runs.store import RunStore
from tests.blueprint.conftest import CLEAN_REQUEST, REPO, SAMPLE, script
from tests.blueprint.factory_flows import Flow, record_and_replay, record_flow, replayed
from tests.blueprint.helpers import copy_sample

CLEAN = script("clean")
BUILDER, REVIEW = CLEAN[:5], CLEAN[5]
FEEDBACK = "Keep the default at 3, and say so in the README."


def plan_reply(version: int, criteria: list[str], *, read_first: bool = False) -> dict[str, Any]:
    spec = {
        "problem": "`call_with_retry` always tries MAX_ATTEMPTS (3) times; callers cannot choose.",
        "constraints": ["Existing callers keep today's behaviour."],
        "approach": f"Version {version}: a keyword-only `max_attempts` parameter on "
        "`call_with_retry`, defaulting to MAX_ATTEMPTS.",
        "acceptance_criteria": criteria,
        "risks": ["A zero or negative limit must be refused."],
        "tasks": ["Add the parameter", "Test a custom limit and invalid limits"],
    }
    calls = [tool_use(f"toolu_p{version}", "submit_plan", spec)]
    if read_first:
        calls.insert(0, tool_use("toolu_r", "read_file", {"path": "retrying/retry.py"}))
        return message(text("Reading the module first."), calls[0])
    return message(*calls)


def verdict(kind: str, notes: str, **extra: Any) -> dict[str, Any]:
    return message(tool_use("toolu_v", "verdict", {"verdict": kind, "notes": notes, **extra}))


def finish(summary: str) -> dict[str, Any]:
    return message(tool_use("toolu_f", "finish", {"summary": summary, "notes_for_reviewer": ""}))


def write(path: str, content: str, **usage: int) -> dict[str, Any]:
    return message(tool_use("toolu_w", "write_file", {"path": path, "content": content}), **usage)


# -- plan mode ----------------------------------------------------------------------


CRITERIA_V1 = ["`call_with_retry(fn, max_attempts=5)` tries five times"]
CRITERIA_V2 = [
    "`call_with_retry(fn, max_attempts=5)` tries five times",
    "Without `max_attempts` it still tries 3 times",
    "The README documents `max_attempts`",
]


def test_plan_revise_approve_then_build_against_the_spec(tmp_path: Path) -> None:
    todo = message(
        tool_use(
            "toolu_t",
            "todo",
            {"items": [{"text": "read the module", "done": True}, {"text": "add max_attempts"}]},
        )
    )
    criteria = [
        {"criterion": 1, "met": True, "note": "test_a_custom_limit"},
        {"criterion": 2, "met": True, "note": "the default is MAX_ATTEMPTS"},
        {"criterion": 3, "met": False, "note": "the README is unchanged"},
    ]
    flow = Flow(
        "plan",
        CLEAN_REQUEST,
        [
            plan_reply(1, CRITERIA_V1, read_first=True),
            plan_reply(1, CRITERIA_V1),  # after reading, the plan itself
            plan_reply(2, CRITERIA_V2),
            todo,
            *BUILDER,
            verdict("comment", "Good; the README was not updated.", criteria=criteria),
        ],
        answers=[f"revise-plan:{FEEDBACK}", "approve-plan"],
        plan=True,
    )
    with record_and_replay(tmp_path, flow) as done:
        run = done.run
        assert run.status is RunStatus.AWAITING_DECISION, run.error
        a = run.artifacts
        assert [p.version for p in a.plans] == [1, 2]
        assert a.plan_approved == 2
        assert [(f.by, f.text) for f in a.plan_feedback] == [("U-recorder", FEEDBACK)]
        assert a.completed_steps[:3] == [Step.PREPARE, Step.PLAN, Step.AGENT]
        # Two deliberate pauses, no crash.
        assert run.handbacks == {"plan": 2}
        events = done.events()
        assert [e.version for e in events if isinstance(e, PlanProposed)] == [1, 2]
        assert [(e.action, e.version) for e in events if isinstance(e, PlanDecided)] == [
            ("revise", 1),
            ("approve", 2),
        ]
        requests = done.requests()
        # The planner reads, never writes.
        assert [t["name"] for t in requests[0]["tools"]] == [
            "read_file",
            "list_files",
            "search",
            "submit_plan",
        ]
        # The revision sees version 1 and the feedback, credited.
        revision = json.dumps(requests[2]["messages"][0])
        assert "Write version 2" in revision
        assert FEEDBACK in revision
        # The builder gets the approved spec as its contract; the reviewer its criteria.
        builder = requests[3]["system"][0]["text"]
        assert "The approved plan: your contract" in builder
        assert "The README documents `max_attempts`" in builder
        reviewer = json.dumps(requests[-1]["messages"][0])
        assert "give a verdict on each of its 3 acceptance criteria" in reviewer
        assert "The approved plan" not in reviewer  # no builder prompt, no transcript
        # The todo list is on the run.
        assert [t.model_dump() for t in a.todos] == [
            {"text": "read the module", "done": True},
            {"text": "add max_attempts", "done": False},
        ]
        assert any(isinstance(e, TodosUpdated) for e in events)
        pr = done.forge.get_pr(REPO, 1)
        assert "## Plan" in pr.body
        assert "- [x] `call_with_retry(fn, max_attempts=5)` tries five times — met" in pr.body
        assert "- [x] Without `max_attempts` it still tries 3 times — met" in pr.body
        assert (
            "- [ ] The README documents `max_attempts` — **not met**: the README is unchanged"
            in pr.body
        )
        # The cost table splits by role and model.
        assert set(run.cost_by_role) == {"planner", "builder", "reviewer"}
        assert "| planner | `claude-opus-5-5` |" in pr.body


def test_a_short_request_does_not_plan_and_a_long_one_does(tmp_path: Path) -> None:
    from jobs.blueprint.steps.plan import wants_plan
    from jobs.repo_config import RepoConfig
    from runs.record import Run

    run = Run(id=1, requester="U1", repo=REPO, request="fix the typo in README.md")
    rule = "chars>200,paths>2"
    assert wants_plan(run, RepoConfig(), rule) is None
    assert wants_plan(run, RepoConfig(plan="always"), rule) == ".agents.yml says plan: always"
    long = run.model_copy(update={"request": "x " * 150})
    assert wants_plan(long, RepoConfig(), rule) == "the request is longer than 200 characters"
    many = run.model_copy(update={"request": "touch alpha.py, beta.py and src/gamma.py"})
    assert wants_plan(many, RepoConfig(), rule) == "the request names more than 2 files"
    assert wants_plan(run.model_copy(update={"plan_asked": True}), RepoConfig(), "never")
    assert wants_plan(long, RepoConfig(), "never") is None


# -- specialists --------------------------------------------------------------------


MIGRATION = "CREATE TABLE attempts (id INTEGER PRIMARY KEY, n INTEGER NOT NULL);\n"


def test_requirements_and_a_migration_bring_in_both_specialists(tmp_path: Path) -> None:
    security = verdict(
        "comment",
        "A new dependency.",
        findings=[
            {
                "severity": "medium",
                "path": "requirements.txt",
                "line": 1,
                "text": "requests is not pinned to a version.",
            }
        ],
    )
    migrations = verdict("approve", "A new table; reversible.")
    flow = Flow(
        "specialists",
        "record attempts in a table",
        [
            message(
                tool_use(
                    "toolu_a", "write_file", {"path": "requirements.txt", "content": "requests\n"}
                ),
                tool_use(
                    "toolu_b",
                    "write_file",
                    {"path": "db/migrations/0001_attempts.sql", "content": MIGRATION},
                ),
            ),
            finish("Added a dependency and a migration."),
            verdict("approve", "Fine."),
            security,
            migrations,
        ],
    )
    with record_and_replay(tmp_path, flow) as done:
        run = done.run
        assert run.status is RunStatus.AWAITING_DECISION, run.error
        assert sorted(run.artifacts.specialists) == ["migrations", "security"]
        reviews = {e.specialist: e for e in done.events() if isinstance(e, SpecialistReviewed)}
        assert (reviews["security"].findings, reviews["security"].blocking) == (1, 0)
        requests = done.requests()
        focus = requests[-2]["messages"][0]["content"][0]["text"]
        assert "You are the security reviewer" in focus
        assert (
            "You are the migrations reviewer" in requests[-1]["messages"][0]["content"][0]["text"]
        )
        # The medium finding is a review comment on the PR, not a blocker.
        [comment] = done.forge.reviews(REPO, 1)
        assert "requests is not pinned" in comment
        assert "`requirements.txt:1`" in comment
        assert run.artifacts.review_comments_posted


def test_a_docs_only_diff_brings_in_no_specialist(tmp_path: Path) -> None:
    flow = Flow(
        "docs",
        "document the retry limit",
        [
            write("docs/retries.md", "# Retries\n\nThree attempts, doubling the delay.\n"),
            finish("Documented the retry limit."),
            verdict("approve", "Docs only."),
        ],
    )
    with record_and_replay(tmp_path, flow) as done:
        assert done.run.status is RunStatus.AWAITING_DECISION, done.run.error
        assert done.run.artifacts.specialists == {}
        assert not any(isinstance(e, SpecialistReviewed) for e in done.events())
        assert len(done.requests()) == 3  # builder twice, the reviewer once


def test_a_blocking_finding_that_stays_blocks_publishing(tmp_path: Path) -> None:
    high = {
        "severity": "high",
        "path": "requirements.txt",
        "text": "The package comes from an unpinned URL.",
    }
    flow = Flow(
        "blocked",
        "add a dependency",
        [
            write("requirements.txt", "requests @ http://example.test/requests.tar.gz\n"),
            finish("Added a dependency."),
            verdict("approve", "Fine."),
            verdict("block", "Unsafe source.", findings=[high]),
            finish("I left it as it is."),  # the extra round changes nothing
            verdict("approve", "Fine."),
            verdict("block", "Still unsafe.", findings=[high]),
        ],
    )
    with record_and_replay(tmp_path, flow) as done:
        run = done.run
        assert run.status is RunStatus.FAILED
        assert run.error is not None
        assert run.error.startswith(
            "publishing is blocked by the specialist review: [security, high]"
        )
        assert done.forge.list_prs(REPO) == []
        fix = json.dumps(done.requests()[4]["messages"][0])
        assert "Specialist reviewers found problems that block publishing" in fix


# -- routing and fallback -----------------------------------------------------------


def test_a_529_and_a_refusal_fall_back_and_the_thread_is_told(tmp_path: Path) -> None:
    overloaded: Any = {"status": 529, "error_type": "overloaded_error", "message": "Overloaded"}
    refusal = message(text("I won't review this."), stop_reason="refusal")
    flow = Flow("fallback", CLEAN_REQUEST, [overloaded, *BUILDER, refusal, REVIEW])
    with record_and_replay(tmp_path, flow) as done:
        run = done.run
        assert run.status is RunStatus.AWAITING_DECISION, run.error
        fell = [
            (e.role, e.model, e.fallback, e.cause)
            for e in done.events()
            if isinstance(e, ModelFellBack)
        ]
        assert fell == [
            ("builder", "claude-sonnet-5-5", "claude-opus-5-5", "overloaded"),
            ("reviewer", "claude-opus-5-5", "claude-sonnet-5-5", "refused"),
        ]
        models = [r["model"] for r in done.requests()]
        assert models == ["claude-sonnet-5-5"] + ["claude-opus-5-5"] * 5 + [
            "claude-opus-5-5",
            "claude-sonnet-5-5",
        ]
        # Cost by role and model: the builder only paid its fallback; the reviewer both.
        assert set(run.cost_by_role["builder"]) == {"claude-opus-5-5"}
        assert set(run.cost_by_role["reviewer"]) == {"claude-opus-5-5", "claude-sonnet-5-5"}
        # The reviewer still runs on another model than the builder by default.
        assert run.artifacts.review is not None
        assert run.artifacts.review.model == "claude-sonnet-5-5"


# -- budgets that ask ---------------------------------------------------------------

# Each builder call prices at $0.20 (100k input tokens on claude-sonnet-5-5): with a
# cap of $0.30 the third call is asked about.
EXPENSIVE = {"input_tokens": 100_000}
BUDGET = AgentConfig(limits=AgentLimits(max_dollars=0.3))
EDIT = BUILDER[1]["content"][1]


def budget_replies(*, after_pause: bool) -> list[dict[str, Any]]:
    replies = [
        message(tool_use("toolu_r", "read_file", {"path": "retrying/retry.py"}), **EXPENSIVE),
        message(EDIT, **EXPENSIVE),
    ]
    if after_pause:
        replies += [finish("Added max_attempts."), verdict("approve", "Fine.")]
    return replies


def test_a_budget_pause_extends_and_the_run_goes_on_to_approval(tmp_path: Path) -> None:
    flow = Flow(
        "extend", CLEAN_REQUEST, budget_replies(after_pause=True), answers=["extend"], agent=BUDGET
    )
    with record_and_replay(tmp_path, flow) as done:
        run = done.run
        assert run.status is RunStatus.AWAITING_DECISION, run.error
        [asked] = [e for e in done.events() if isinstance(e, BudgetAsked)]
        assert asked.text == "#1 has spent $0.40 of $0.30. Extend by $0.30?"
        assert (asked.limit_kind, asked.can_extend, asked.extend_by) == ("dollars", True, 0.3)
        [extended] = [e for e in done.events() if isinstance(e, BudgetDecided)]
        assert extended.action == "extend"
        assert run.artifacts.extra_dollars == 0.3
        assert run.handbacks == {"budget": 1}
        # The paused pass went on with the same conversation (its 3rd call saw the edit).
        third = json.dumps(done.requests()[2]["messages"][-1])
        assert "edited retrying/retry.py" in third
        assert not run.artifacts.budget_stopped
        assert "stopped at its budget" not in done.forge.get_pr(REPO, 1).body
        # ... to approval: Approve merges nothing it should not, and the run is approved.
        approved = decisions.approve_on_forge(
            done.store, done.forge, done.deps.config, run.id, "U-recorder"
        )
        assert approved.status is RunStatus.APPROVED


def test_a_budget_pause_stopped_here_publishes_a_draft(tmp_path: Path) -> None:
    flow = Flow(
        "stop", CLEAN_REQUEST, budget_replies(after_pause=False), answers=["stop"], agent=BUDGET
    )
    with record_and_replay(tmp_path, flow) as done:
        run = done.run
        assert run.status is RunStatus.AWAITING_DECISION, run.error
        assert run.artifacts.budget_stopped
        pr = done.forge.get_pr(REPO, 1)
        assert pr.draft
        assert "stopped at its budget before it finished" in pr.body
        assert "max_attempts: int = MAX_ATTEMPTS" in (run.artifacts.patch or "")
        [stopped] = [e for e in done.events() if isinstance(e, BudgetDecided)]
        assert (
            stopped.text
            == "stopped at its budget (stopped by U-recorder); publishing what exists as a draft"
        )


def test_the_hard_cap_refuses_to_extend(tmp_path: Path) -> None:
    capped = AgentConfig(limits=AgentLimits(max_dollars=0.3, max_dollars_hard=0.3))
    flow = Flow("hard-cap", CLEAN_REQUEST, budget_replies(after_pause=False), agent=capped)
    with record_and_replay(tmp_path, flow) as done:
        run = done.run
        assert run.status is RunStatus.AWAITING_BUDGET
        [asked] = [e for e in done.events() if isinstance(e, BudgetAsked)]
        assert not asked.can_extend
        assert "hard cap ($0.30, AGENTS_MAX_DOLLARS_HARD), which can't be extended" in asked.text
        refused = decisions.extend_budget(done.queue, run.id, "U-recorder", approvers=[])
        assert (refused.done, refused.kind) == (False, "hard_cap")
        assert done.store.get(run.id).status is RunStatus.AWAITING_BUDGET
        assert done.store.get(run.id).artifacts.extra_dollars == 0
        # Only the requester or an approver may answer.
        stranger = decisions.stop_at_budget(done.queue, run.id, "U-stranger", approvers=[])
        assert (stranger.done, stranger.kind) == (False, "refused")


def test_an_evaluation_run_stops_at_its_cap_and_never_plans(tmp_path: Path) -> None:
    """`agents eval` runs have nobody to ask: the cap is a limit, and no plan waits."""
    flow = Flow("eval-cap", CLEAN_REQUEST, budget_replies(after_pause=False), agent=BUDGET)
    transcript = record_flow(tmp_path / "record", flow)
    with replayed(tmp_path / "replay", flow, transcript, evaluation=True) as done:
        run = done.run
        assert run.status is RunStatus.FAILED
        assert run.error is not None
        assert "$0.30" in run.error
        assert not [e for e in done.events() if isinstance(e, BudgetAsked)]
        assert run.handbacks == {}
    from jobs.blueprint.steps.plan import wants_plan
    from jobs.repo_config import RepoConfig

    asked = run.model_copy(update={"plan_asked": True})
    assert wants_plan(asked, RepoConfig(plan="always"), "always") is None
    assert wants_plan(asked.model_copy(update={"evaluation": False}), RepoConfig(), "never")


def test_an_unanswered_budget_question_stops_the_run() -> None:
    connection = fakeredis.FakeRedis()
    store = RunStore(connection)
    queue = RunQueue(connection, store, name="q")
    run = store.create(requester="U1", repo=REPO, request="x")
    store.transition(run.id, RunStatus.RUNNING, by="w")

    def paused(r: Any) -> None:
        r.artifacts.budget_ask = BudgetAsk(
            at="2026-01-01T00:00:00+00:00", limit_kind="turns", can_extend=True
        )
        r.artifacts.config = {"escalation": "draft"}
        r.artifacts.patch = "diff --git a/x b/x\n"

    store.transition(run.id, RunStatus.AWAITING_BUDGET, by="w", change=paused)
    assert expired_asks(queue, 3600) == [run.id]
    stopped = store.get(run.id)
    assert stopped.status is RunStatus.QUEUED
    assert stopped.artifacts.budget_stopped
    [decided] = [e for e in store.events(run.id) if isinstance(e, BudgetDecided)]
    assert decided.action == "timeout"
    assert expired_asks(queue, 3600) == []


# -- the debugger -------------------------------------------------------------------

FAILING_TEST = (
    "from retrying import retry\n\n\n"
    "def test_describe_limit() -> None:\n"
    "    assert retry.describe_limit() == '3 attempts'\n"
)
OLD = "class RetryError(Exception):\n"
NEW = (
    "def describe_limit() -> str:\n"
    '    return f"{MAX_ATTEMPTS} attempts"\n\n\n'
    "class RetryError(Exception):\n"
)


def test_the_debugger_is_called_after_repeated_failures_and_its_note_reaches_the_builder(
    tmp_path: Path,
) -> None:
    root_cause = {
        "root_cause": "describe_limit is called by the new test but was never written.",
        "fix": "Add describe_limit() to retrying/retry.py.",
    }
    flow = Flow(
        "debugger",
        "describe the retry limit",
        [
            write("tests/test_describe.py", FAILING_TEST),
            finish("Added a test."),
            finish("Tried again."),  # fix round 1: no change, the same failure
            message(
                tool_use(
                    "toolu_d1", "run", {"command": "python3 -m pytest -q tests/test_describe.py"}
                ),
                tool_use("toolu_d2", "run", {"command": "touch debugger-was-here"}),
            ),
            message(tool_use("toolu_d3", "root_cause", root_cause)),
            message(
                tool_use(
                    "toolu_e",
                    "edit_file",
                    {"path": "retrying/retry.py", "old_text": OLD, "new_text": NEW},
                )
            ),
            finish("Added describe_limit."),
            verdict("approve", "Fine."),
        ],
        blueprint={"fix_rounds": 2, "debug_after_rounds": 1},
    )
    with record_and_replay(tmp_path, flow) as done:
        run = done.run
        assert run.status is RunStatus.AWAITING_DECISION, run.error
        [found] = [e for e in done.events() if isinstance(e, RootCauseFound)]
        assert "never written" in found.note
        requests = done.requests()
        debugger = requests[3]
        assert [t["name"] for t in debugger["tools"]] == [
            "read_file",
            "list_files",
            "search",
            "run",
            "root_cause",
        ]
        # The note is in the next fix round's brief, with the failure slice.
        second_round = json.dumps(requests[5]["messages"][0])
        assert "A debugger looked into why this failure keeps coming back" in second_round
        assert "Add describe_limit() to retrying/retry.py." in second_round
        # The debugger's sandbox was thrown away: nothing it ran is in the change.
        assert "debugger-was-here" not in (run.artifacts.patch or "")
        assert "describe_limit" in (run.artifacts.patch or "")
        assert "## Debugging" in done.forge.get_pr(REPO, 1).body


# -- checks at write time -----------------------------------------------------------


def test_an_on_edit_failure_reaches_the_builder_in_the_same_turn(tmp_path: Path) -> None:
    repo_dir = copy_sample(
        SAMPLE,
        tmp_path / "src",
        {".agents.yml": "on_edit:\n  - run: python3 -m py_compile {file}\n    files: '*.py'\n"},
    )
    flow = Flow(
        "on-edit",
        "add a constants module",
        [
            write("retrying/constants.py", "LIMIT = (3\n"),
            write("retrying/constants.py", "LIMIT = 3\n"),
            finish("Added a constants module."),
            verdict("approve", "Fine."),
        ],
        repo_dir=repo_dir,
    )
    with record_and_replay(tmp_path, flow) as done:
        run = done.run
        assert run.status is RunStatus.AWAITING_DECISION, run.error
        first = done.requests()[1]["messages"][-1]["content"][0]["content"]
        assert first.startswith("created retrying/constants.py")
        assert (
            "[on_edit `python3 -m py_compile {file}` failed (exit 1) on retrying/constants.py:]"
            in first
        )
        second = done.requests()[2]["messages"][-1]["content"][0]["content"]
        assert "[on_edit `python3 -m py_compile {file}` passed]" in second
        assert run.artifacts.on_edit_runs == 2
        assert "On-edit checks: 2 run(s)" in done.forge.get_pr(REPO, 1).body
