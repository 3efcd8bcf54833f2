"""Check results: parsed from JUnit XML when there is some, else from the exit code.

The agent never sees a whole log. It gets a *failure slice*: the failing test ids and
their error excerpts, bounded in size, with failures that also happen on the base
commit labelled pre-existing and left out of what it is asked to fix.
"""

from __future__ import annotations

import re

import defusedxml.ElementTree as ET

from jobs.repo_config import CheckCommand
from runs.artifacts import CheckResult, TestFailure

MAX_JUNIT_BYTES = 5 * 1024 * 1024
#: pytest's exit code when it collected no test at all.
PYTEST_NO_TESTS = 5
#: A failure that is a test module failing to import, not a test failing: pytest's
#: collection errors (in its JUnit report and its output) and unittest's loader.
_IMPORT_FAILURE = re.compile(
    r"collection failure|ImportError|ModuleNotFoundError|Failed to import test module"
)
_COLLECTING = re.compile(r"ERROR collecting (\S+)")
_UNITTEST_IMPORT = re.compile(r"Failed to import test module: (\S+)")
_PASSED = re.compile(r"\b\d+ passed\b|^OK\b", re.M)
_COLLECTION_ONLY = re.compile(r"Interrupted: \d+ errors? during collection|no tests ran")
MAX_EXCERPT = 1200
OUTPUT_TAIL = 3000


def excerpt(text: str, limit: int) -> str:
    """Head and tail of ``text`` within ``limit`` characters, with a marker for the cut."""
    text = text.strip()
    if len(text) <= limit:
        return text
    keep = max(limit - 60, 20)
    head, tail = text[: keep // 3], text[-(keep - keep // 3) :]
    return f"{head}\n[... {len(text) - len(head) - len(tail)} characters cut ...]\n{tail}"


def excerpt_lines(text: str, *, head: int = 12, tail: int = 25, limit: int = 1800) -> str:
    """The first ``head`` and last ``tail`` lines of ``text``, marking what was cut, within
    ``limit`` characters: a failure's command line is at the start and its cause near
    the end, so neither is ever cut away for the middle."""
    lines = [line if len(line) <= 300 else line[:297] + "..." for line in text.splitlines()]
    if len(lines) > head + tail:
        cut = len(lines) - head - tail
        lines = [*lines[:head], f"[... {cut} lines cut ...]", *lines[-tail:]]
    return excerpt("\n".join(lines), limit)


def parse_junit(xml_text: str | bytes) -> tuple[int, list[TestFailure]]:
    """Count tests and collect failures and errors from a JUnit XML report."""
    if len(xml_text) > MAX_JUNIT_BYTES:
        raise ValueError(f"JUnit report larger than {MAX_JUNIT_BYTES // (1024 * 1024)} MiB")
    root = ET.fromstring(xml_text)  # untrusted: no entities, no DTDs (defusedxml)
    tests = 0
    failures: list[TestFailure] = []
    for case in root.iter("testcase"):
        tests += 1
        for kind in ("failure", "error"):
            node = case.find(kind)
            if node is None:
                continue
            classname = case.get("classname", "")
            name = case.get("name", "?")
            test_id = f"{classname}::{name}" if classname else name
            text = "\n".join(
                part for part in (node.get("message", ""), node.text or "") if part.strip()
            )
            failures.append(TestFailure(test_id=test_id, message=excerpt(text, MAX_EXCERPT)))
            break
    return tests, failures


def evaluate(
    check: CheckCommand,
    *,
    exit_code: int,
    output: str,
    timed_out: bool = False,
    duration: float = 0.0,
    junit_xml: str | bytes | None = None,
) -> CheckResult:
    """Turn one command's outcome (and its JUnit report, if any) into a result."""
    result = CheckResult(
        name=check.name,
        command=check.run,
        exit_code=exit_code,
        timed_out=timed_out,
        duration=duration,
        output_tail=excerpt(output, OUTPUT_TAIL),
    )
    if junit_xml:
        try:
            tests, failures = parse_junit(junit_xml)
        except (ET.ParseError, ValueError):
            pass  # an unreadable report: judge by the exit code and output below
        else:
            result.source = "junit"
            result.tests = tests
            result.failures = failures
    result.not_run = no_tests_reason(check, result, output)
    if not result.passed and not result.failures:
        # No per-test detail: the tail of the output stands in for the failing "test".
        what = "timed out" if timed_out else f"exited {exit_code}"
        result.failures = [
            TestFailure(test_id=check.name, message=f"{what}\n{excerpt(output, MAX_EXCERPT)}")
        ]
    return result


def _modules(names: list[str]) -> str:
    unique = list(dict.fromkeys(names))
    count = len(unique)
    noun = "test module" if count == 1 else "test modules"
    return f"{count} {noun} failed to import (first: {unique[0]})"


def no_tests_reason(check: CheckCommand, result: CheckResult, output: str) -> str | None:
    """Why ``check`` executed no test, or None when it did (or is no test runner).

    A run that tested nothing is never a pass: pytest's exit 5, a JUnit report with no
    test case, and failures that are all import or collection errors with no test
    passing (so the checks "pass" as pre-existing on a base that imports no better).
    """
    if result.timed_out:
        return None
    if result.source == "junit":
        if result.tests == 0:
            return "its JUnit report holds no test case"
        failed = result.failures
        imports = [f for f in failed if _IMPORT_FAILURE.search(f.message)]
        if failed and len(imports) == len(failed) == result.tests:
            return _modules([f.test_id for f in failed])
    collecting = _COLLECTING.findall(output) + _UNITTEST_IMPORT.findall(output)
    if collecting and result.exit_code != 0:
        stopped = _COLLECTION_ONLY.search(output) is not None
        if stopped or not _PASSED.search(output):
            return _modules(collecting)
    if result.exit_code == PYTEST_NO_TESTS and ("pytest" in check.run or "no tests ran" in output):
        return "pytest collected no test (exit 5)"
    return None


def mark_preexisting(results: list[CheckResult], base: list[CheckResult]) -> list[CheckResult]:
    """Label failures that also occur, with the same test id, on the base commit.

    Only a base run that executed tests counts: failures on a base where nothing
    imported say nothing about this change."""
    at_base = {(r.name, f.test_id) for r in base if not r.not_run for f in r.failures}
    return [
        r.model_copy(
            update={
                "failures": [
                    f.model_copy(update={"preexisting": (r.name, f.test_id) in at_base})
                    for f in r.failures
                ]
            }
        )
        for r in results
    ]


def failure_slice(results: list[CheckResult], limit: int = 8000) -> str:
    """What the agent is told to fix: new failures only, bounded to ``limit`` characters."""
    parts: list[str] = []
    skipped = 0
    used = 0
    for result in results:
        for failure in result.new_failures:
            block = f"### {result.name}: {failure.test_id}\n{failure.message}\n"
            if used + len(block) > limit:
                skipped += 1
                continue
            parts.append(block)
            used += len(block)
    preexisting = sum(len(r.failures) - len(r.new_failures) for r in results)
    if skipped:
        parts.append(f"[... {skipped} more failing tests not shown ...]\n")
    if preexisting:
        parts.append(
            f"({preexisting} failure(s) also happen on the base commit; they are "
            "pre-existing and not yours to fix.)\n"
        )
    return "".join(parts)
