"""A check that executed no test is "could not run", never a pass.

The outputs and JUnit reports come from real pytest runs over small repositories made
here, so the parsing is tested against what pytest really writes.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from jobs.blueprint.body import checks_section
from jobs.blueprint.steps.checks import could_not_run, passing, summarize
from jobs.checks import CheckResult, evaluate, mark_preexisting
from jobs.repo_config import CheckCommand
from runs.artifacts import CheckReport
from runs.record import Run

BROKEN = "import not_installed_anywhere\n\n\ndef test_x():\n    assert True\n"
GOOD = "def test_ok():\n    assert 1 + 1 == 2\n"
FAILING = "def test_bad():\n    assert 1 + 1 == 3\n"


def run_pytest(repo: Path, files: dict[str, str], *extra: str, junit: bool) -> CheckResult:
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    report = repo / "junit.xml"
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra, "tests"]
    if junit:
        argv.append(f"--junitxml={report}")
    proc = subprocess.run(argv, cwd=repo, capture_output=True, text=True, check=False)
    check = CheckCommand(name="tests", run="python -m pytest -q tests")
    return evaluate(
        check,
        exit_code=proc.returncode,
        output=f"{proc.stdout}\n{proc.stderr}",
        junit_xml=report.read_text() if junit else None,
    )


def test_every_module_failing_to_import_is_not_a_pass(tmp_path: Path) -> None:
    for junit in (False, True):
        repo = tmp_path / f"junit-{junit}"
        files = {"tests/test_a.py": BROKEN, "tests/test_b.py": BROKEN}
        result = run_pytest(repo, files, junit=junit)
        assert not result.passed
        assert result.not_run is not None
        assert result.not_run.startswith("2 test modules failed to import (first: tests")
        assert "test_a" in result.not_run


def test_no_test_collected_is_not_a_pass(tmp_path: Path) -> None:
    result = run_pytest(tmp_path, {"tests/helpers.py": "X = 1\n"}, junit=False)
    assert result.exit_code == 5
    assert result.not_run == "pytest collected no test (exit 5)"
    assert not result.passed
    with_report = run_pytest(tmp_path / "j", {"tests/helpers.py": "X = 1\n"}, junit=True)
    assert with_report.not_run == "its JUnit report holds no test case"


def test_a_report_with_no_test_case_fails_even_with_exit_zero() -> None:
    check = CheckCommand(name="tests", run="make test", junit="report.xml")
    result = evaluate(
        check, exit_code=0, output="ok", junit_xml='<testsuite name="x" tests="0"></testsuite>'
    )
    assert result.not_run == "its JUnit report holds no test case"
    assert not result.passed
    assert not passing([result])


def test_tests_that_ran_are_judged_as_before(tmp_path: Path) -> None:
    mixed = run_pytest(
        tmp_path / "mixed",
        {"tests/test_a.py": BROKEN, "tests/test_ok.py": GOOD},
        "--continue-on-collection-errors",
        junit=False,
    )
    assert mixed.not_run is None  # one test ran: an ordinary failure
    assert not mixed.passed
    failing = run_pytest(tmp_path / "failing", {"tests/test_bad.py": FAILING}, junit=True)
    assert failing.not_run is None
    assert [f.test_id for f in failing.failures] == ["tests.test_bad::test_bad"]
    green = run_pytest(tmp_path / "green", {"tests/test_ok.py": GOOD}, junit=True)
    assert green.passed
    assert green.not_run is None
    assert green.tests == 1


def test_a_base_that_ran_no_test_makes_no_failure_pre_existing(tmp_path: Path) -> None:
    broken = {"tests/test_a.py": BROKEN}
    head = run_pytest(tmp_path / "head", broken, junit=True)
    base = run_pytest(tmp_path / "base", broken, junit=True)
    marked = mark_preexisting([head], [base])
    assert not any(f.preexisting for f in marked[0].failures)
    assert not marked[0].only_preexisting
    assert not passing(marked)

    failing = {"tests/test_bad.py": FAILING}
    head_failing = run_pytest(tmp_path / "hf", failing, junit=True)
    base_failing = run_pytest(tmp_path / "bf", failing, junit=True)
    ran = mark_preexisting([head_failing], [base_failing])
    assert ran[0].only_preexisting  # the base ran that test and it failed there too


def test_the_thread_and_the_pr_body_say_checks_could_not_run(tmp_path: Path) -> None:
    result = run_pytest(tmp_path, {"tests/test_a.py": BROKEN}, junit=False)
    line = could_not_run([result])
    assert line == "checks could not run: 1 test module failed to import (first: tests/test_a.py)"
    assert summarize([result]) == (
        "tests could not run: 1 test module failed to import (first: tests/test_a.py)"
    )
    run = Run.model_validate(
        {
            "id": 1,
            "repo": "acme/api",
            "request": "x",
            "channel": "C1",
            "thread_ts": "1.0",
            "requester": "U1",
        }
    )
    run.artifacts.check_reports = [
        CheckReport(
            iteration=1, phase="checks", round=0, passed=False, summary="x", results=[result]
        )
    ]
    body = checks_section(run)
    assert "could not run: 1 test module failed to import" in body
    assert "**checks could not run:**" in body
    assert could_not_run([]) is None
