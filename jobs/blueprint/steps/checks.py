"""checks: run the repository's checks in the sandbox, label failures that also happen
on the base commit as pre-existing, and send what is left back to the agent as a
failure slice, for at most N fix rounds. When rounds keep ending on the same failure,
a debugger looks for its root cause first (:mod:`jobs.blueprint.debugger`) and the
next round gets its note. Then escalate as configured."""

from __future__ import annotations

import hashlib
import json
import logging
import posixpath
import re
import secrets

from jobs.blueprint.context import RunContext
from jobs.blueprint.debugger import debug, fingerprint, note_for_builder, wants_debugger
from jobs.blueprint.sandbox import SandboxSession, open_sandbox, set_network
from jobs.blueprint.steps.agent import Pass, agent_pass, finish_pass, pending_pass
from jobs.checks import evaluate, failure_slice, mark_preexisting
from jobs.repo_config import JUNIT_DIR, CheckCommand, RepoConfig
from process.exceptions import StepFailed
from runs.artifacts import CheckReport, CheckResult
from runs.events import ChecksRan, Escalated, Event
from runs.record import Run
from sandboxes.protocol import Sandbox

log = logging.getLogger(__name__)


def _read_report(sandbox: Sandbox, path: str) -> str | None:
    """The JUnit XML a check wrote; None when it is missing or was cut."""
    if posixpath.isabs(path):
        result = sandbox.exec(["cat", "--", path], timeout=60)
        if not result.ok or result.stdout_truncated:
            return None
        return result.stdout
    try:
        data = sandbox.read_file(path)
    except (FileNotFoundError, IsADirectoryError):
        return None
    sandbox.exec(["rm", "-f", "--", path], timeout=60)  # keep it out of the patch
    return data.decode("utf-8", errors="replace")


def private_report(check: CheckCommand) -> tuple[str, str | None]:
    """The command and report path to run: a report under the shared JUnit directory
    goes to a directory of its own, as the sandbox's /tmp may be the host's (local).
    Only when the command names that directory: a tool told where to write by its own
    configuration (jest-junit's ``outputDirectory`` in package.json) writes where the
    check says, and is read there."""
    junit = check.junit
    if junit is None or not junit.startswith(JUNIT_DIR + "/") or JUNIT_DIR not in check.run:
        return check.run, junit
    private = f"{JUNIT_DIR}/{secrets.token_hex(8)}"
    return check.run.replace(JUNIT_DIR, private), junit.replace(JUNIT_DIR, private, 1)


def run_check(sandbox: Sandbox, check: CheckCommand) -> CheckResult:
    command, junit = private_report(check)
    if junit:
        sandbox.exec(
            ["sh", "-c", 'mkdir -p "$(dirname "$1")" && rm -f "$1"', "sh", junit], timeout=60
        )
    result = sandbox.exec(command, timeout=check.timeout)
    report = _read_report(sandbox, junit) if junit else None
    if junit and junit != check.junit:
        sandbox.exec(["rm", "-rf", "--", posixpath.dirname(junit)], timeout=60)
    return evaluate(
        check,
        exit_code=result.exit_code,
        output=f"{result.stdout}\n{result.stderr}",
        timed_out=result.timed_out,
        duration=result.duration,
        junit_xml=report,
    )


def run_checks(sandbox: Sandbox, checks: list[CheckCommand]) -> list[CheckResult]:
    return [run_check(sandbox, check) for check in checks]


def passing(results: list[CheckResult]) -> bool:
    """Everything passed, or failed only in ways the base commit fails too."""
    return all(r.passed or r.only_preexisting for r in results)


def summarize(results: list[CheckResult]) -> str:
    """One line for the thread: what passed, what failed, what was already failing."""
    if not results:
        return "no checks to run"
    parts = []
    for r in results:
        if r.not_run:
            parts.append(f"{r.name} could not run: {r.not_run}")
            continue
        if r.passed:
            counted = f" ({r.tests} tests)" if r.tests is not None else ""
            parts.append(f"{r.name} passed{counted}")
            continue
        new = [f.test_id for f in r.new_failures]
        old = len(r.failures) - len(new)
        if new:
            shown = ", ".join(new[:3]) + (f" and {len(new) - 3} more" if len(new) > 3 else "")
            parts.append(f"{r.name} failed: {shown}")
        if old:
            parts.append(f"{r.name}: {old} pre-existing failure(s), also on the base commit")
    return "; ".join(parts)


def base_cache_key(ctx: RunContext, run: Run, checks: list[CheckCommand]) -> str:
    ident = json.dumps(
        [run.repo, run.artifacts.base_commit, [c.model_dump() for c in checks]], sort_keys=True
    )
    return f"{ctx.store.prefix}:base-checks:{hashlib.sha256(ident.encode()).hexdigest()}"


def base_results(ctx: RunContext, config: RepoConfig) -> list[CheckResult]:
    """The same checks on the base commit, run once per commit and then cached."""
    run = ctx.run()
    key = base_cache_key(ctx, run, config.checks)
    cached = ctx.store.redis.get(key)
    if cached is not None:
        return [CheckResult.model_validate(item) for item in json.loads(cached)]
    base = run.artifacts.base_commit
    if base is None:
        return []
    try:
        sandbox, _ = open_sandbox(ctx, run, base, None)
    except StepFailed as err:
        log.warning("run #%s: cannot run the checks on the base commit: %s", run.id, err)
        return []
    try:
        set_network(sandbox, config, "checks")
        results = run_checks(sandbox, config.checks)
    finally:
        sandbox.close()
    payload = json.dumps([r.model_dump(mode="json") for r in results])
    ctx.store.redis.set(key, payload, ex=ctx.deps.config.base_checks_ttl)
    return results


def judged(ctx: RunContext, session: SandboxSession, config: RepoConfig) -> list[CheckResult]:
    """Run the checks on the change; label pre-existing failures when there are any."""
    results = run_checks(session.get("checks"), config.checks)
    if all(r.passed for r in results):
        return results
    return mark_preexisting(results, base_results(ctx, config))


def report(run: Run, results: list[CheckResult], *, phase: str) -> CheckReport:
    ok = passing(results)
    return CheckReport(
        iteration=run.iteration,
        phase=phase,
        round=run.artifacts.fix_rounds_spent,
        passed=ok,
        summary=summarize(results),
        results=[r.model_copy(deep=True) for r in results],
        fingerprint=None if ok else fingerprint(results),
    )


def latest_results(run: Run) -> list[CheckResult]:
    if not run.artifacts.check_reports:
        return []
    return [r.model_copy(deep=True) for r in run.artifacts.check_reports[-1].results]


_ADDRESS = re.compile(r"\b0x[0-9a-fA-F]{6,16}\b")


def stable(text: str) -> str:
    """``text`` without memory addresses (``<function f at 0x7f...>``): they differ on
    every run, and the model gains nothing from them."""
    return _ADDRESS.sub("0x…", text)


def fix_context(results: list[CheckResult], limit: int) -> str:
    return (
        "You already changed the repository for this request (the workspace holds your "
        "change), but the checks fail now. Fix these failures; do not weaken or skip the "
        "tests:\n\n" + stable(failure_slice(results, limit))
    )


def _add_report(ctx: RunContext, entry: CheckReport, event: Event) -> None:
    def added(run: Run) -> None:
        run.artifacts.check_reports.append(entry)

    ctx.save(added, [event])


def _save_fix(ctx: RunContext, fixed: Pass, rounds: int) -> None:
    def fixed_round(run: Run) -> None:
        finish_pass(run, fixed)
        run.artifacts.fix_rounds_spent = rounds
        if run.artifacts.check_reports:
            run.artifacts.check_reports[-1].fix_summary = fixed.summary

    ctx.save(fixed_round)


def checks(ctx: RunContext, session: SandboxSession, *, phase: str = "checks") -> None:
    """Run the checks, then fix rounds while they fail and rounds are left."""
    config = ctx.repo_config()
    most = config.fix_rounds
    run = ctx.run()
    if pending_pass(run) is not None:  # a fix round its last worker stopped (drain, budget)
        fixed = agent_pass(ctx, session)
        _save_fix(ctx, fixed, run.artifacts.fix_rounds_spent + 1)
        ctx.stop_if_draining()
    while True:
        results = judged(ctx, session, config)
        run = ctx.run()
        entry = report(run, results, phase=phase)
        summary = entry.summary
        rounds = run.artifacts.fix_rounds_spent
        if passing(results):
            _add_report(ctx, entry, _checks_event(ctx, True, summary))
            return
        if rounds >= most or could_not_run(results):
            escalate(ctx, config, results, entry)
            return
        _add_report(ctx, entry, _checks_event(ctx, False, summary, attempt=rounds + 1, most=most))
        if wants_debugger(ctx.run(), ctx.deps.config.debug_after_rounds):
            debug(ctx, results, rounds)
        extra = fix_context(results, ctx.deps.config.failure_slice_chars)
        note = note_for_builder(ctx.run())
        fixed = agent_pass(ctx, session, f"{extra}\n\n{note}" if note else extra)
        _save_fix(ctx, fixed, rounds + 1)
        ctx.stop_if_draining()  # the round is saved: the next job runs the checks again


def _checks_event(
    ctx: RunContext, passed: bool, summary: str, *, attempt: int | None = None, most: int = 0
) -> ChecksRan:
    return ChecksRan(
        by=ctx.by,
        passed=passed,
        text=summary,
        fix_round=attempt,
        last_round=most if attempt is not None else None,
    )


def could_not_run(results: list[CheckResult]) -> str | None:
    """``checks could not run: ...`` when a check executed no test: no fix round helps
    a repository whose tests do not import, so the run follows ``escalation``."""
    reasons = [f"{r.not_run}" for r in results if r.not_run]
    if not reasons:
        return None
    return "checks could not run: " + "; ".join(reasons)


def escalate(
    ctx: RunContext, config: RepoConfig, results: list[CheckResult], entry: CheckReport
) -> None:
    """Checks still fail with no rounds left: a draft that says so, or stop."""
    rounds = config.fix_rounds
    failing = entry.summary
    not_run = could_not_run(results)
    if not_run is not None:
        text = not_run + (
            ". Stopping here."
            if config.escalation == "stop"
            else ". Publishing a draft pull request that says so."
        )
    elif config.escalation == "stop":
        text = f"checks still fail after {rounds} fix round(s): {failing}. Stopping here."
    else:
        text = (
            f"checks still fail after {rounds} fix round(s): {failing}. Publishing a draft "
            "pull request that documents the failures."
        )

    def escalated(run: Run) -> None:
        run.artifacts.check_reports.append(entry)
        run.artifacts.escalated = config.escalation == "draft"

    ctx.save(
        escalated,
        [
            _checks_event(ctx, False, failing),
            Escalated(by=ctx.by, text=text),
        ],
    )
    if config.escalation == "stop":
        raise StepFailed(text)
