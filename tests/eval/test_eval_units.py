"""The eval's parts on their own: reading task files, reading test reports, the
built-in models, variants, and the report's figures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobs.agent.roles import agent_role
from jobs.agent.tool_specs import TOOLS, RootCauseInput, VerdictInput, input_schema
from jobs.blueprint.providers import NullModel, OracleModel
from jobs.eval import hidden
from jobs.eval.history import is_source_file, is_test_file
from jobs.eval.records import TaskResult, parse_variant
from jobs.eval.report import jsonl, markdown, summarize_variants
from jobs.eval.tasks import load_tasks, parse_line
from process.exceptions import EvalInputError, TaskDropped
from process.settings import Role

PATCH = "diff --git a/t/test_a.py b/t/test_a.py\n--- a/t/test_a.py\n+++ b/t/test_a.py\n"
TASK = {
    "instance_id": "acme__api-1",
    "repo": "acme/api",
    "base_commit": "0123456789abcdef0123456789abcdef01234567",
    "problem_statement": "Fix the retry limit",
    "test_patch": PATCH,
    "FAIL_TO_PASS": '["t/test_a.py::test_x"]',
    "PASS_TO_PASS": [],
    "hints_text": "ignored",
}


def test_a_swe_bench_line_reads_its_json_string_lists() -> None:
    task = parse_line(json.dumps(TASK), "f:1")
    assert task.fail_to_pass == ["t/test_a.py::test_x"]
    assert task.pass_to_pass == []
    assert task.hidden_tests == ["t/test_a.py::test_x"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"base_commit": "main"}, "f:1: base_commit: expected a commit id"),
        ({"repo": "acme"}, "f:1: repo: expected owner/name"),
        ({"FAIL_TO_PASS": "[]"}, "f:1: FAIL_TO_PASS is empty"),
        ({"FAIL_TO_PASS": "not json"}, "f:1: FAIL_TO_PASS: expected a list of test ids"),
        ({"test_patch": "hello"}, "f:1: test_patch: is not a git diff"),
        ({"problem_statement": "  "}, "f:1: problem_statement: is empty"),
    ],
)
def test_a_bad_line_is_refused_with_its_place_and_reason(
    change: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("[", r"\[").replace("]", r"\]")):
        parse_line(json.dumps({**TASK, **change}), "f:1")


def test_a_file_keeps_good_lines_and_counts_bad_ones(tmp_path: Path) -> None:
    path = tmp_path / "tasks.jsonl"
    second = {**TASK, "instance_id": "acme__api-2"}
    path.write_text(f"{json.dumps(TASK)}\n[1, 2]\n\n{json.dumps(TASK)}\n{json.dumps(second)}\n")
    tasks, dropped = load_tasks(path)
    assert [t.instance_id for t in tasks] == ["acme__api-1", "acme__api-2"]
    assert [d.reason for d in dropped] == [
        "tasks.jsonl:2: expected a JSON object, got list",
        "tasks.jsonl:4: instance_id 'acme__api-1' appears twice",
    ]


def test_a_file_without_any_usable_task_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "tasks.jsonl"
    path.write_text("{oops\n")
    with pytest.raises(EvalInputError, match="no usable task"):
        load_tasks(path)


@settings(max_examples=200, derandomize=True, deadline=None)
@given(st.text(max_size=300))
def test_any_line_is_a_task_or_a_value_error(line: str) -> None:
    message = ""
    try:
        parse_line(line, "f:1")
    except ValueError as err:
        message = str(err)
    assert message == "" or message.startswith("f:1: ")


def test_junit_becomes_pytest_node_ids() -> None:
    xml = b"""<testsuites><testsuite>
      <testcase classname="tests.test_a" name="test_ok" file="tests/test_a.py"/>
      <testcase classname="tests.test_a.TestB" name="test_p[1]" file="tests/test_a.py">
        <failure message="boom"/></testcase>
      <testcase classname="tests.test_a" name="test_skip" file="tests/test_a.py">
        <skipped/></testcase>
    </testsuite></testsuites>"""
    assert hidden.junit_outcomes(xml) == {
        "tests/test_a.py::test_ok": True,
        "tests/test_a.py::TestB::test_p[1]": False,
        "tests/test_a.py::test_skip": False,
    }


def test_a_hostile_report_is_refused() -> None:
    bomb = b'<!DOCTYPE x [<!ENTITY a "aaaa">]><testsuite>&a;</testsuite>'
    from defusedxml.common import DefusedXmlException

    with pytest.raises(DefusedXmlException):
        hidden.junit_outcomes(bomb)


def test_fail_to_pass_and_pass_to_pass_come_from_before_and_after() -> None:
    before = {"t::a": False, "t::b": True}
    after = {"t::a": True, "t::b": True, "t::c": True, "t::d": False}
    assert hidden.derive(before, after) == (["t::a", "t::c"], ["t::b"])
    assert hidden.unresolved({"t::a": True, "t::b": True}, ["t::a"], ["t::b"]) is None
    why = hidden.unresolved({"t::a": True}, ["t::a"], ["t::b"])
    assert why == "1 of 1 PASS_TO_PASS now fail (t::b)"


def test_paths_outside_the_repository_are_refused() -> None:
    assert hidden.patch_paths(PATCH) == ["t/test_a.py"]
    for bad in ("../etc/passwd", "/etc/passwd", ".git/config"):
        with pytest.raises(TaskDropped):
            hidden.safe_path(bad)


def test_tests_and_sources_by_convention() -> None:
    assert is_test_file("tests/test_x.py")
    assert is_test_file("pkg/foo_test.go")
    assert is_test_file("web/app.spec.ts")
    assert is_test_file("conftest.py")
    assert not is_test_file("pkg/testing_utils.py")
    assert is_source_file("pkg/core.py")
    assert not is_source_file("README.md")


def test_the_oracle_applies_its_patch_then_reports_how_it_went() -> None:
    oracle = OracleModel("diff --git a/x b/x\n")
    first = oracle.complete({"model": "m", "messages": [{"role": "user", "content": "do it"}]})
    assert [c["name"] for c in first.tool_calls] == ["write_file", "run"]
    assert first.tool_calls[0]["input"]["content"] == "diff --git a/x b/x\n"
    ok = [{"type": "tool_result", "tool_use_id": "x", "content": "exit code: 0"}]
    bad = [{"type": "tool_result", "tool_use_id": "x", "content": "exit code: 1\nerror"}]
    for results, summary in ((ok, "Applied"), (bad, "does not apply")):
        request = {"model": "m", "messages": [{"role": "user", "content": results}]}
        (call,) = oracle.complete(request).tool_calls
        assert call["name"] == "finish"
        assert summary in call["input"]["summary"]


def role_request(role: Role) -> dict[str, Any]:
    """The first request of a pass as ``role``, with the tools the loop offers it."""
    tools = [t for t in TOOLS if t.name in agent_role(role).tools]
    specs = [{"name": t.name, "input_schema": input_schema(t.input)} for t in tools]
    return {"model": "m", "tools": specs, "messages": [{"role": "user", "content": "r"}]}


def test_the_null_model_finishes_at_once_and_both_approve_as_reviewers() -> None:
    (call,) = NullModel().complete(role_request("builder")).tool_calls
    assert call["name"] == "finish"
    for model in (NullModel(), OracleModel("p")):
        (verdict,) = model.complete(role_request("reviewer")).tool_calls
        assert (verdict["name"], verdict["input"]["verdict"]) == ("verdict", "approve")
        VerdictInput.model_validate(verdict["input"])
        # A debugger pass (fix rounds failing the same way) ends with its own tool.
        (found,) = model.complete(role_request("debugger")).tool_calls
        assert found["name"] == "root_cause"
        RootCauseInput.model_validate(found["input"])


def test_variants_name_settings_the_agent_works_with() -> None:
    variant = parse_variant("model=claude-x,fix_rounds=0")
    assert (variant.model, variant.settings) == ("claude-x", {"fix_rounds": "0"})
    with pytest.raises(EvalInputError, match="github_token is not a setting a variant"):
        parse_variant("github_token=abc")
    with pytest.raises(EvalInputError, match="expected KEY=VALUE"):
        parse_variant("oracle")


def result(variant: str, resolved: bool, dollars: float, **kw: object) -> TaskResult:
    return TaskResult.model_validate(
        {"instance_id": f"t{dollars}", "variant": variant, "resolved": resolved, "dollars": dollars}
        | kw
    )


def test_summary_figures_come_from_the_records() -> None:
    records = [
        result("a", True, 1.0, cache_read_tokens=30, input_tokens=70, wall_seconds=10),
        result("a", False, 3.0, wall_seconds=30),
        result("b", False, 0.5),
    ]
    a, b = summarize_variants(records, ["a", "b"])
    assert (a.tasks, a.resolved, a.resolved_rate, a.dollars) == (2, 1, 0.5, 4.0)
    assert (a.cost_per_task, a.cost_per_resolved, a.cache_share) == (2.0, 4.0, 0.3)
    assert a.median_wall_seconds == 20
    assert (b.resolved_rate, b.cost_per_resolved) == (0.0, None)


def test_an_unfinished_eval_is_marked_incomplete_everywhere() -> None:
    records = [result("a", True, 1.0)]
    summaries = summarize_variants(records, ["a"])
    report = markdown("t", records, summaries, [], ["t1.0"], complete=False, expected=4)
    assert report.startswith("**INCOMPLETE: 1 of 4 task runs finished.**")
    last = json.loads(jsonl(records, summaries, [], complete=False, expected=4).splitlines()[-1])
    assert last == {"type": "eval", "complete": False, "task_runs": 1, "expected": 4, "dropped": 0}
