"""The debugger: called when fix rounds keep ending on the same failure, it looks for
the root cause instead of another retry, and writes a note the builder gets next.

It reads and runs, never edits: it works in a sandbox of its own (the iteration's
change applied), thrown away after it, so nothing it runs can reach the change. It
never sees the builder's conversation, only the request, the failure and the diff.
A failure is known by its fingerprint (the checks that failed and their new failing
tests), so "the same failure" survives reruns and resumes, and the debugger looks at
each failure once.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from jobs.agent.prompt import Task
from jobs.blueprint.context import RunContext
from jobs.blueprint.providers import CountingModel
from jobs.blueprint.sandbox import open_sandbox, set_network
from jobs.blueprint.steps.agent import check_command, role_pass
from jobs.checks import excerpt, failure_slice
from process.exceptions import StepFailed
from runs.artifacts import CheckReport, CheckResult
from runs.events import RootCauseFound
from runs.record import Run

#: Most characters of the diff the debugger is shown (it can read the files).
DIFF_CHARS = 20_000


def fingerprint(results: Sequence[CheckResult]) -> str:
    """What failed, independent of timings and messages: the checks that failed and
    their new failing tests (or their exit code, without JUnit)."""
    failing: list[Any] = []
    for result in results:
        if result.passed or result.only_preexisting:
            continue
        tests = sorted(f.test_id for f in result.new_failures)
        failing.append([result.name, tests or [f"exit {result.exit_code}", result.timed_out]])
    return hashlib.sha256(json.dumps(failing, sort_keys=True).encode()).hexdigest()[:16]


def same_failure_rounds(reports: Sequence[CheckReport]) -> int:
    """Fix rounds in a row that ended on the failure of the last report: the trailing
    reports with its fingerprint, counted once per round (a resumed job may run the
    checks of one round twice)."""
    if not reports:
        return 0
    last = reports[-1].fingerprint
    rounds: set[int] = set()
    for report in reversed(reports):
        if last is None or report.fingerprint != last:
            break
        rounds.add(report.round)
    return max(len(rounds) - 1, 0)


def wants_debugger(run: Run, after_rounds: int) -> bool:
    """The last fix rounds failed ``after_rounds`` times on one failure not debugged yet."""
    reports = run.artifacts.check_reports
    if after_rounds <= 0 or not reports:
        return False
    print_ = reports[-1].fingerprint
    if print_ is None or print_ in run.artifacts.debugged:
        return False
    return same_failure_rounds(reports) >= after_rounds


def note_for_builder(run: Run) -> str | None:
    """The debugger's note, if it is about the failure the checks show now."""
    reports = run.artifacts.check_reports
    a = run.artifacts
    if not a.root_cause or not a.debugged or not reports:
        return None
    if reports[-1].fingerprint != a.debugged[-1]:
        return None
    return (
        "A debugger looked into why this failure keeps coming back. Its root-cause "
        "note (it could read and run, not edit):\n\n" + a.root_cause
    )


def debug(ctx: RunContext, results: Sequence[CheckResult], rounds: int) -> None:
    """Run the debugger on the failure ``results`` show, in a throwaway sandbox, and
    save its note (with the failure's fingerprint) and a ``root_cause`` event."""
    run = ctx.run()
    config = ctx.repo_config()
    start = run.artifacts.start_commit
    if start is None:
        raise StepFailed("the run has no start commit (prepare did not run)")
    limit = ctx.deps.config.failure_slice_chars
    context = (
        f"The checks still fail after {rounds} fix round(s), on the same failure:\n\n"
        + failure_slice(list(results), limit)
        + "\n\nThe change so far (a diff against the commit the work started from):\n\n"
        + (excerpt(run.artifacts.patch or "", DIFF_CHARS) or "(empty)")
    )
    task = Task(
        repo=run.repo, request=run.request, check_command=check_command(config), context=context
    )
    sandbox, _ = open_sandbox(ctx, run, start, run.artifacts.patch)
    try:
        set_network(sandbox, config, "agent")
        result = role_pass(ctx, "debugger", task, sandbox)
    finally:
        sandbox.close()
    cause = str(result.output.get("root_cause") or result.summary).strip()
    fix = str(result.output.get("fix") or "").strip()
    note = f"Root cause: {cause}" + (f"\n\nWhat to change: {fix}" if fix else "")
    print_ = fingerprint(results)
    counted = ctx.model if isinstance(ctx.model, CountingModel) else None

    def noted(run: Run) -> None:
        run.artifacts.root_cause = note
        run.artifacts.debugged.append(print_)
        run.artifacts.agent_resume = None
        if counted is not None:
            run.artifacts.model_calls = counted.calls

    first = cause.splitlines()[0] if cause else "no cause given"
    ctx.save(noted, [RootCauseFound(by="agent:debugger", note=note, text=first[:300])])
