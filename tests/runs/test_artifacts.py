"""The run record's typed artifacts read records written before they were typed.

A run record in Redis from the version that kept these parts as plain dicts must load
unchanged (no migration), and what it held must survive a write and a read: every key
and value the old record stored is still there, under the same name.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis
from pydantic import ValidationError

from runs.artifacts import (
    AgentResume,
    ApproveGuard,
    BudgetAsk,
    CheckReport,
    CiRecord,
    Manifest,
    ReviewOutcome,
    Spec,
    SpecialistOutcome,
    TodoItem,
)
from runs.record import Run, RunStatus, approval_in_progress, utcnow
from runs.store import RunStore

SHA = "3f1c2a9b8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a"
NEW_SHA = "9a8b7c6d5e4f3a3f1c2a9b8d7e6f5a4b3c2d1e0f"
FINDING = {"severity": "low", "path": "retry.py", "line": 12, "text": "name it LIMIT"}
BLOCKER = {"severity": "high", "path": "migrations/0002.py", "text": "drops a column"}

#: The artifacts of a run record as the previous version wrote them (the writers'
#: dict literals of ``jobs/blueprint/steps/*.py``, ``budget.py``, ``decisions.py``),
#: with a key that version left out where it could (``pass``, ``fix_summary``).
OLD_ARTIFACTS: dict[str, Any] = {
    "base_commit": SHA,
    "patch": "diff --git a/retry.py b/retry.py\n",
    "summary": "Made the retry limit configurable.",
    "check_reports": [
        {
            "iteration": 1,
            "phase": "checks",
            "round": 0,
            "passed": False,
            "summary": "pytest: 1 failed",
            "results": [
                {
                    "name": "pytest",
                    "command": "python -m pytest -q",
                    "exit_code": 1,
                    "timed_out": False,
                    "duration": 1.5,
                    "source": "junit",
                    "tests": 4,
                    "failures": [
                        {"test_id": "tests/test_retry.py::test_five", "message": "assert 3 == 5"}
                    ],
                    "output_tail": "1 failed, 3 passed",
                }
            ],
            "fingerprint": "0123456789abcdef",
            "fix_summary": "used max_attempts in the loop",
        },
        {
            "iteration": 1,
            "phase": "checks",
            "round": 1,
            "passed": True,
            "summary": "pytest: 4 passed",
            "results": [],
            "fingerprint": None,
        },
    ],
    "review": {
        "verdict": "approve",
        "notes": "Looks right.",
        "round": 1,
        "model": "claude-sonnet-5-5",
        "criteria": [{"criterion": 1, "met": True, "note": "tested"}],
        "findings": [FINDING],
    },
    "branch": "agents/1-make-the-retry-limit-configurable",
    "pr_url": "https://github.com/acme/api/pull/7",
    "pr_number": 7,
    "completed_steps": ["prepare", "plan", "agent", "checks", "review", "publish"],
    "steps_iteration": 1,
    "base_branch": "main",
    "start_commit": SHA,
    "head_sha": NEW_SHA,
    "config": {"escalation": "draft", "fix_rounds": 2, "checks": [{"run": "make test"}]},
    "agent_resume": {
        "step": "checks",
        "system": "You are the builder.",
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "fix the failure"}]},
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "toolu_1", "name": "run", "input": {"cmd": "ls"}}
                ],
            },
        ],
        "turns": 3,
        "cost": {"input_tokens": 900, "output_tokens": 80, "dollars": 0.01},
        "trimmed_at": None,
        "model": "claude-sonnet-5-5",
    },
    "ci": {
        "state": "success",
        "sha": NEW_SHA,
        "polls": 2,
        "waited": 31.5,
        "checks": [{"name": "ci/test", "state": "success"}],
        "failing": [],
        "fix": "done",
        "fix_base": SHA,
        "fix_checks": "pytest: 4 passed",
        "after_fix": {
            "state": "success",
            "sha": NEW_SHA,
            "polls": 1,
            "waited": 12.0,
            "checks": [{"name": "ci/test", "state": "success"}],
            "failing": [],
        },
    },
    "manifest": {
        "agents_version": "0.1.0",
        "repo": "acme/api",
        "base_branch": "main",
        "base_commit": SHA,
        "start_commit": SHA,
        "iteration": 1,
        "sandbox": "docker",
        "image": "agents-sandbox:latest",
        "image_id": "sha256:abc",
        "models": {"builder": "claude-sonnet-5-5", "reviewer": "claude-opus-5-5"},
        "prompt_sha256": {"builder": "aa11", "reviewer": "bb22"},
        "setup": ["pip install -e ."],
        "environment": {"key": "e0f1", "image_id": "sha256:def", "commit": SHA},
        "checks": ["make test"],
        "checks_detected": False,
    },
    "plans": [
        {
            "version": 1,
            "problem": "The retry limit is fixed at 3.",
            "constraints": [],
            "approach": "A keyword-only max_attempts parameter.",
            "acceptance_criteria": ["max_attempts=5 tries five times"],
            "risks": [],
            "tasks": ["Add the parameter"],
            "feedback_seen": 0,
            "model": "claude-opus-5-5",
        }
    ],
    "plan_approved": 1,
    "todos": [{"text": "read retry.py", "done": True}, {"text": "add max_attempts", "done": False}],
    "specialists": {
        "migrations": {
            "verdict": "block",
            "notes": "A column goes.",
            "findings": [BLOCKER, FINDING],
            "blocking_findings": [BLOCKER],
            "round": 1,
            "model": "claude-opus-5-5",
        }
    },
    "budget_ask": {
        "limit_kind": "dollars",
        "spent": 5.02,
        "limit": 5.0,
        "extend_by": 5.0,
        "can_extend": True,
        "hard_cap": 50.0,
        "text": "#1 has spent $5.02 of $5.00. Extend by $5?",
        "step": "checks",
        "at": "2026-11-30T10:00:00.123456+00:00",
    },
    "approving": {"by": "U0CAROL", "iteration": 1, "at": "2026-11-30T10:05:00+00:00"},
}

OLD_RECORD: dict[str, Any] = {
    "id": 1,
    "requester": "U0ALICE",
    "repo": "acme/api",
    "request": "make the retry limit configurable",
    "status": "awaiting_decision",
    "iteration": 1,
    "artifacts": OLD_ARTIFACTS,
    "created_at": "2026-11-30T09:58:00+00:00",
    "updated_at": "2026-11-30T10:06:00+00:00",
}


def contains(new: Any, old: Any) -> bool:
    """Every key and value of ``old`` is in ``new`` (which may add defaulted keys)."""
    if isinstance(old, dict):
        return isinstance(new, dict) and all(
            key in new and contains(new[key], value) for key, value in old.items()
        )
    if isinstance(old, list):
        return (
            isinstance(new, list)
            and len(new) == len(old)
            and all(contains(n, o) for n, o in zip(new, old, strict=True))
        )
    return bool(new == old)


@pytest.fixture
def store(redis_conn: redis.Redis) -> RunStore:
    return RunStore(redis_conn, retention_seconds=3600)


def test_a_run_record_in_the_old_shape_loads_typed_and_round_trips(store: RunStore) -> None:
    store.redis.set(store._run_key(1), json.dumps(OLD_RECORD))

    run = store.get(1)
    a = run.artifacts
    assert isinstance(a.check_reports[0], CheckReport)
    assert a.check_reports[0].results[0].failures[0].test_id == "tests/test_retry.py::test_five"
    assert a.check_reports[0].fix_summary == "used max_attempts in the loop"
    assert a.check_reports[1].fix_summary is None  # the key the old writer left out
    assert isinstance(a.review, ReviewOutcome)
    assert a.review.verdict == "approve"
    assert isinstance(a.agent_resume, AgentResume)
    assert a.agent_resume.pass_name == "builder"  # an old checkpoint without "pass"
    assert a.agent_resume.cost.input_tokens == 900
    assert isinstance(a.ci, CiRecord)
    assert a.ci.after_fix is not None
    assert a.ci.after_fix.fix is None
    assert isinstance(a.manifest, Manifest)
    assert a.manifest.environment is not None
    assert isinstance(a.plans[0], Spec)
    assert a.latest_plan == 1
    assert a.todos == [TodoItem(text="read retry.py", done=True), TodoItem(text="add max_attempts")]
    migrations = a.specialists["migrations"]
    assert isinstance(migrations, SpecialistOutcome)
    assert migrations.milder_findings == [FINDING]
    assert isinstance(a.budget_ask, BudgetAsk)
    assert a.budget_ask.at == OLD_ARTIFACTS["budget_ask"]["at"]  # the buttons' token, as text
    assert isinstance(a.approving, ApproveGuard)
    assert a.approving.by == "U0CAROL"

    # A write keeps every old key and value under its name, and reads back the same.
    store.update(1, lambda r: None)
    written = json.loads(store.redis.get(store._run_key(1)) or b"{}")
    assert contains(written["artifacts"], OLD_ARTIFACTS)
    assert written["artifacts"]["agent_resume"]["pass"] == "builder"
    assert "pass_name" not in written["artifacts"]["agent_resume"]
    again = store.get(1)
    assert again.artifacts == a
    assert again.status is RunStatus.AWAITING_DECISION


def test_an_old_record_without_the_later_parts_loads() -> None:
    """A record from before a part existed carries none of its keys."""
    bare = {k: v for k, v in OLD_RECORD.items() if k != "artifacts"}
    run = Run.model_validate_json(json.dumps({**bare, "artifacts": {"base_commit": SHA}}))
    a = run.artifacts
    assert (a.check_reports, a.review, a.ci, a.manifest, a.plans) == ([], None, None, None, [])
    assert (a.todos, a.specialists, a.budget_ask, a.approving) == ([], {}, None, None)


@pytest.mark.parametrize(
    ("part", "typo"),
    [
        ("review", {"verdict": "approve", "note": "singular"}),
        ("ci", {"state": "success", "sha": SHA, "poll": 2}),
        ("budget_ask", {"at": "x", "limit_kind": "dollars", "can_extend": True, "cap": 1}),
        ("approving", {"by": "U1", "iteration": 1, "at": "x", "when": "now"}),
    ],
)
def test_a_misspelt_key_in_a_part_is_refused(part: str, typo: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        Run.model_validate({**OLD_RECORD, "artifacts": {**OLD_ARTIFACTS, part: typo}})


def test_the_approve_guard_holds_for_its_iteration_until_it_lapses() -> None:
    run = Run.model_validate(OLD_RECORD)
    now = utcnow()
    run.artifacts.approving = ApproveGuard(by="U1", iteration=1, at=now.isoformat())
    assert approval_in_progress(run, now)
    run.iteration = 2
    assert not approval_in_progress(run, now)
    run.iteration = 1
    run.artifacts.approving = ApproveGuard(by="U1", iteration=1, at="2000-01-01T00:00:00+00:00")
    assert not approval_in_progress(run, now)
    run.artifacts.approving = ApproveGuard(by="U1", iteration=1, at="now")
    assert not approval_in_progress(run, now)
