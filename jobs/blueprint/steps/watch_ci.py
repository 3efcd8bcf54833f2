"""watch CI: poll the PR's check runs and combined status until they finish or time
out, and record the outcome. On failure, optionally one fix round from the CI log,
pushed as one more commit on the same branch (never forced)."""

from __future__ import annotations

from jobs import ci_events
from jobs.blueprint.context import RunContext
from jobs.blueprint.sandbox import SandboxSession
from jobs.blueprint.steps.agent import agent_pass, finish_pass
from jobs.blueprint.steps.checks import judged, passing, stable, summarize
from jobs.blueprint.steps.publish import push_iteration, record_pr
from jobs.checks import excerpt
from jobs.forge.steps import CiOutcome
from jobs.forge.steps import poll_ci as forge_watch
from process.exceptions import StepFailed
from runs.artifacts import CiCheckSeen, CiFailing, CiRecord
from runs.events import CiFinished
from runs.record import Run

MAX_CI_SLICE = 6000


def outcome_record(outcome: CiOutcome, sha: str) -> CiRecord:
    return CiRecord(
        state=outcome.state,
        sha=sha,
        polls=outcome.polls,
        waited=round(outcome.waited, 1),
        checks=[CiCheckSeen(name=r.name, state=r.state) for r in outcome.checks.runs],
        failing=[
            CiFailing(name=r.name, summary=r.summary, url=r.url) for r in outcome.checks.failing
        ],
    )


def ci_slice(ci: CiRecord) -> str:
    """What the agent is told about failed CI: the failing checks and their output."""
    blocks = []
    for item in ci.failing:
        text = f"### {item.name}\n{item.summary or '(no output reported)'}"
        if item.url:
            text += f"\n(details: {item.url})"
        blocks.append(text)
    return stable(excerpt("\n\n".join(blocks), MAX_CI_SLICE))


def _text(ci: CiRecord) -> str:
    state = ci.state
    if state == "failure":
        names = ", ".join(f.name for f in ci.failing)
        return f"CI failed on {ci.sha[:12]}: {names}"
    texts = {
        "success": f"CI passed on {ci.sha[:12]}",
        "none": "no CI checks reported on the pull request",
        "timed_out": "CI did not finish before the watch timed out",
        "skipped": "CI not watched (AGENTS_CI_TIMEOUT_SECONDS=0)",
        "unconfigured": "CI not watched: the forge reports no CI for this repository",
    }
    return texts.get(state, state)


def watch(ctx: RunContext, sha: str) -> CiRecord:
    """Read the checks on ``sha`` until they finish. Between reads, a CI webhook about
    ``sha`` wakes the watch at once; where the repository sends them, reads are
    further apart (:mod:`jobs.ci_events`)."""
    deps = ctx.deps
    run = ctx.run()
    config = deps.config
    redis, prefix = deps.store.redis, deps.store.prefix
    interval = config.ci_poll_seconds
    if ci_events.webhooks_seen(redis, prefix, run.repo):
        interval *= ci_events.WEBHOOK_POLL_FACTOR
    outcome = forge_watch(
        deps.forge,
        run.repo,
        sha,
        timeout=config.ci_timeout_seconds,
        interval=interval,
        settle=config.ci_settle_seconds,
        between_polls=ctx.stop_if_draining,
        sleep=ci_events.waiter(redis, prefix, run.repo, sha),
    )
    return outcome_record(outcome, sha)


def _save_ci(ctx: RunContext, ci: CiRecord) -> None:
    def saved(run: Run) -> None:
        run.artifacts.ci = ci

    ctx.save(saved)
    ctx.record(CiFinished(by=ctx.by, state=ci.state, text=_text(ci)))


def fix_ci(ctx: RunContext, session: SandboxSession, ci: CiRecord) -> CiRecord:
    """One fix round from the CI log, in a sandbox at the pushed head; push if the
    local checks pass. Returns the updated CI record."""
    run = ctx.run()
    head = run.artifacts.head_sha
    if head is None:
        raise StepFailed("no pushed head to fix CI on")
    if ci.fix is None:
        # From here the iteration continues from the pushed head, like a rework would.
        ci = ci.at_fix("started")
        ci.fix_base = head

        def started(run: Run) -> None:
            run.artifacts.ci = ci
            run.artifacts.start_commit = head
            run.artifacts.patch = None

        ctx.save(started)
        session.close()
    if ci.fix == "started":
        fixed = agent_pass(
            ctx,
            session,
            "The change is pushed and its pull request's CI failed. Fix what failed; do "
            "not weaken or skip checks:\n\n" + ci_slice(ci),
        )
        results = judged(ctx, session, ctx.repo_config())
        ci = ci.at_fix("checked" if passing(results) else "checks_failed")
        ci.fix_checks = summarize(results)

        def after(run: Run) -> None:
            finish_pass(run, fixed)
            run.artifacts.ci = ci

        ctx.save(after)
    if ci.fix == "checked":
        run = ctx.run()
        result = push_iteration(
            ctx,
            run,
            patch=run.artifacts.patch or "",
            patch_base=str(ci.fix_base),
            since=str(ci.fix_base),
        )
        record_pr(ctx, result)
        ci = ci.at_fix("pushed")
        _save_ci(ctx, ci)
    if ci.fix == "pushed":
        after_fix = watch(ctx, str(ctx.run().artifacts.head_sha))
        ci = ci.at_fix("done")
        ci.after_fix = after_fix
        saved = ci.model_copy(deep=True)
        saved.state, saved.sha = after_fix.state, after_fix.sha
        _save_ci(ctx, saved)
    return ci


def watch_ci(ctx: RunContext, session: SandboxSession) -> None:
    run = ctx.run()
    config = ctx.deps.config
    head = run.artifacts.head_sha
    if head is None:
        raise StepFailed("nothing was pushed, so there is no CI to watch")
    ci = run.artifacts.ci
    if config.ci_timeout_seconds <= 0:
        _save_ci(ctx, CiRecord(state="skipped", sha=head))
        return
    if ci is None or (ci.sha != head and ci.fix is None):
        if not ctx.deps.forge.ci_configured(run.repo):
            # Nothing will ever report: don't spend the settle time waiting for it.
            _save_ci(ctx, CiRecord(state="unconfigured", sha=head))
            return
        ci = watch(ctx, head)
        _save_ci(ctx, ci)
    if ci.state == "failure" and config.ci_fix and ci.fix != "done":
        fix_ci(ctx, session, ci)
