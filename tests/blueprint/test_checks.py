"""Check results and the failure slice the agent is given."""

from __future__ import annotations

import secrets
from pathlib import Path

from jobs.blueprint.steps.checks import passing, run_checks
from jobs.checks import (
    MAX_EXCERPT,
    evaluate,
    excerpt,
    failure_slice,
    mark_preexisting,
    parse_junit,
)
from jobs.repo_config import CheckCommand
from sandboxes.local_sandbox import LocalSandbox

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="4" failures="1" errors="1">
  <testcase classname="tests.test_retry" name="test_default" time="0.01"/>
  <testcase classname="tests.test_retry" name="test_configurable" time="0.02">
    <failure message="AssertionError: assert 3 == 5">def test_configurable():
&gt;       assert retry.limit() == 5
E       AssertionError: assert 3 == 5</failure>
  </testcase>
  <testcase classname="tests.test_env" name="test_env" time="0.0">
    <error message="fixture 'env' not found">setup failed</error>
  </testcase>
  <testcase classname="tests.test_retry" name="test_skipped"><skipped/></testcase>
</testsuite></testsuites>
"""

PYTEST = CheckCommand(name="pytest", run="pytest", junit="/tmp/agents-checks/pytest.xml")


def test_junit_failures_and_errors() -> None:
    tests, failures = parse_junit(JUNIT)
    assert tests == 4
    assert [f.test_id for f in failures] == [
        "tests.test_retry::test_configurable",
        "tests.test_env::test_env",
    ]
    assert "assert 3 == 5" in failures[0].message
    assert "fixture 'env' not found" in failures[1].message


def test_evaluate_prefers_junit() -> None:
    result = evaluate(PYTEST, exit_code=1, output="lots of log", junit_xml=JUNIT)
    assert result.source == "junit"
    assert not result.passed
    assert len(result.failures) == 2


def test_evaluate_without_junit_uses_the_exit_code_and_tail() -> None:
    check = CheckCommand(name="make test", run="make test")
    ok = evaluate(check, exit_code=0, output="all good")
    assert ok.passed
    assert ok.failures == []
    bad = evaluate(check, exit_code=2, output="compiling\n" * 500 + "error: x.c:3 oops")
    assert not bad.passed
    (failure,) = bad.failures
    assert failure.test_id == "make test"
    assert failure.message.startswith("exited 2")
    assert "error: x.c:3 oops" in failure.message
    assert len(failure.message) <= MAX_EXCERPT + 20


def test_timeout_fails_even_with_exit_zero() -> None:
    result = evaluate(PYTEST, exit_code=0, output="", timed_out=True)
    assert not result.passed
    assert result.failures[0].message.startswith("timed out")


def test_garbage_junit_falls_back_to_exit_code() -> None:
    result = evaluate(PYTEST, exit_code=1, output="boom", junit_xml="<not xml")
    assert result.source == "exit_code"
    assert [f.test_id for f in result.failures] == ["pytest"]


def test_preexisting_failures_are_labelled_and_left_out() -> None:
    base = [evaluate(PYTEST, exit_code=1, output="", junit_xml=JUNIT)]
    only_env = JUNIT.replace("<failure", "<skipped").replace("</failure>", "</skipped>")
    head = [evaluate(PYTEST, exit_code=1, output="", junit_xml=only_env)]
    marked = mark_preexisting(head, base)
    assert [(f.test_id, f.preexisting) for f in marked[0].failures] == [
        ("tests.test_env::test_env", True)
    ]
    assert marked[0].only_preexisting
    text = failure_slice(marked)
    assert "test_env" not in text.split("(")[0]
    assert "1 failure(s) also happen on the base commit" in text


def test_failure_slice_is_bounded() -> None:
    cases = "".join(
        f'<testcase classname="t" name="test_{i}">'
        f'<failure message="m">{"x" * 900}</failure></testcase>'
        for i in range(50)
    )
    result = evaluate(PYTEST, exit_code=1, output="", junit_xml=f"<testsuite>{cases}</testsuite>")
    text = failure_slice([result], limit=4000)
    assert len(text) <= 4000 + 100
    assert "t::test_0" in text
    assert "more failing tests not shown" in text


def test_excerpt_keeps_head_and_tail() -> None:
    text = "HEAD" + "-" * 10_000 + "TAIL"
    cut = excerpt(text, 500)
    assert cut.startswith("HEAD")
    assert cut.endswith("TAIL")
    assert "characters cut" in cut
    assert len(cut) <= 540


CLEAN_JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="2" failures="0" errors="0">
  <testcase classname="tests.test_retry" name="test_default" time="0.01"/>
  <testcase classname="tests.test_retry" name="test_configurable" time="0.02"/>
</testsuite></testsuites>
"""


def test_a_clean_junit_report_with_a_non_zero_exit_code_fails() -> None:
    """Every test passed, yet the command failed (a crash at teardown, a coverage
    threshold, a plugin's error): the exit code wins, and the agent is shown the output."""
    output = "2 passed\nFAIL Required test coverage of 90% not reached. Total coverage: 71%"
    result = evaluate(PYTEST, exit_code=2, output=output, junit_xml=CLEAN_JUNIT)
    assert result.source == "junit"
    assert result.tests == 2
    assert not result.passed
    (failure,) = result.failures
    assert failure.test_id == "pytest"
    assert failure.message.startswith("exited 2")
    assert "coverage of 90% not reached" in failure.message
    assert "coverage of 90% not reached" in failure_slice([result])
    clean = evaluate(PYTEST, exit_code=0, output="2 passed", junit_xml=CLEAN_JUNIT)
    assert clean.passed
    assert clean.failures == []


def test_a_clean_report_and_a_failing_command_in_a_sandbox(tmp_path: Path) -> None:
    """The same through the checks step, in a real (local) sandbox: the command writes
    its report, then exits non-zero."""
    command = (
        "mkdir -p /tmp/agents-checks && "
        f"printf '%s' '{CLEAN_JUNIT}' > /tmp/agents-checks/pytest.xml && "
        "echo 'INTERNALERROR> teardown crashed' >&2 && exit 3"
    )
    check = CheckCommand(name="pytest", run=command, junit="/tmp/agents-checks/pytest.xml")
    with LocalSandbox("clean-report-1", parent=tmp_path) as sandbox:
        (result,) = run_checks(sandbox, [check])
    assert (result.source, result.tests, result.exit_code) == ("junit", 2, 3)
    assert not passing([result])
    (failure,) = result.failures
    assert failure.message.startswith("exited 3")
    assert "teardown crashed" in failure.message


def test_a_report_placed_by_the_tools_own_configuration_is_read_where_the_check_says(
    tmp_path: Path,
) -> None:
    """jest-junit takes its directory from package.json, not the command line: a check
    whose command does not name the report directory is read at the declared path."""
    report = f"/tmp/agents-checks/configured-{secrets.token_hex(6)}.xml"
    check = CheckCommand(
        name="unit tests",
        run='mkdir -p "$(dirname "$(cat where)")" && cat report.xml > "$(cat where)"',
        junit=report,
    )
    with LocalSandbox("configured-report-1", parent=tmp_path) as sandbox:
        sandbox.write_file("where", report.encode())
        sandbox.write_file("report.xml", CLEAN_JUNIT.encode())
        try:
            (result,) = run_checks(sandbox, [check])
            # A report left from before is removed first, never read as this run's.
            sandbox.exec("rm where")
            (again,) = run_checks(sandbox, [check])
        finally:
            Path(report).unlink(missing_ok=True)
    assert (result.source, result.tests, result.exit_code) == ("junit", 2, 0)
    assert (again.source, again.tests, again.passed) == ("exit_code", None, False)
