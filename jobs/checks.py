"""Check results: parsed from JUnit XML when there is some, else from the exit code.

The agent never sees a whole log. It gets a *failure slice*: the failing test ids and
their error excerpts, bounded in size, with failures that also happen on the base
commit labelled pre-existing and left out of what it is asked to fix.
"""

from __future__ import annotations

import defusedxml.ElementTree as ET

from jobs.repo_config import CheckCommand
from runs.artifacts import CheckResult, TestFailure

MAX_JUNIT_BYTES = 5 * 1024 * 1024
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
    if not result.passed and not result.failures:
        # No per-test detail: the tail of the output stands in for the failing "test".
        what = "timed out" if timed_out else f"exited {exit_code}"
        result.failures = [
            TestFailure(test_id=check.name, message=f"{what}\n{excerpt(output, MAX_EXCERPT)}")
        ]
    return result


def mark_preexisting(results: list[CheckResult], base: list[CheckResult]) -> list[CheckResult]:
    """Label failures that also occur, with the same test id, on the base commit."""
    at_base = {(r.name, f.test_id) for r in base for f in r.failures}
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
