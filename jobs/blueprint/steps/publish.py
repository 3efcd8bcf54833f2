"""publish, on the worker side: the diff safety gate, then commit, push and open (or
find) the pull request, then the specialists' milder findings as review comments on it.
Re-running it after a crash creates nothing twice: the forge step recognises its own
commit by its ``Agents-Run`` trailer and the PR by its branch, and the comments are
marked posted on the run."""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from pathlib import Path

from jobs.blueprint.body import pr_body, redact_secrets, thread_url
from jobs.blueprint.context import RunContext
from jobs.blueprint.sandbox import SandboxSession
from jobs.blueprint.specialists import where
from jobs.forge.git import Identity
from jobs.forge.steps import PublishRequest, PublishResult
from jobs.forge.steps import push_and_open_pr as forge_publish
from jobs.safety import scan
from process.exceptions import ForgeError, StepFailed
from runs.events import Event, PullRequestOpened, PullRequestUpdated, SafetyGateBlocked
from runs.record import Run

log = logging.getLogger(__name__)

#: Most characters of one review comment.
MAX_REVIEW = 20_000

#: Age after which a publish directory is a leftover of a killed worker: a publish
#: (fetch, commit, push, PR) takes seconds to minutes.
SCRATCH_STALE_SECONDS = 6 * 3600


def co_author(login: str | None) -> list[Identity]:
    if not login:
        return []
    return [Identity(login, f"{login}@users.noreply.github.com")]


def safety_gate(ctx: RunContext, run: Run) -> None:
    """Refuse to push a diff with a secret-shaped string or a protected path in it."""
    config = ctx.repo_config()
    findings = scan(
        run.artifacts.patch or "",
        protected=config.protected_paths,
        allow=config.allow_protected,
    )
    if not findings:
        return
    described = [finding.describe() for finding in findings]
    ctx.record(
        SafetyGateBlocked(
            by=ctx.by, text="the diff safety gate refused to push", findings=described
        )
    )
    allow = (
        " (a protected path can be allowed with `allow_protected` in .agents.yml)"
        if any(f.kind == "protected_path" for f in findings)
        else ""
    )
    raise StepFailed(
        f"the diff safety gate refused to push: {'; '.join(described[:5])}"
        + (f" and {len(described) - 5} more" if len(described) > 5 else "")
        + allow
    )


def push_iteration(
    ctx: RunContext, run: Run, *, patch: str, patch_base: str, since: str | None = None
) -> PublishResult:
    """Commit ``patch`` on the run's branch and push it; open or update the PR.

    ``since``: the branch head before this push, when this iteration already pushed
    once (a CI fix round): the commit for this call is looked for after it.
    """
    deps = ctx.deps
    a = run.artifacts
    if a.base_commit is None:
        raise StepFailed("the run has no base commit (prepare did not run)")
    login = deps.config.user_map.get(run.requester)
    url = deps.forge.clone_url(run.repo)
    mirror = deps.cache.mirror_path(url)
    request = PublishRequest(
        run_id=run.id,
        repo=run.repo,
        request=run.request,
        summary=a.summary or run.request,
        patch=patch.encode("utf-8"),
        base_commit=since or a.base_commit,
        iteration=run.iteration,
        patch_base=patch_base,
        branch=a.branch,
        base_branch=a.base_branch,
        draft=deps.config.draft_prs or a.escalated or a.budget_stopped,
        body=pr_body(run, slack_url=deps.config.slack_url, requester_login=login),
        requester=f"@{login}" if login else None,
        thread_url=thread_url(run, deps.config.slack_url),
        co_authors=co_author(login),
        nonce=deps.store.nonce,
    )
    reference = mirror if (mirror / "HEAD").is_file() else None
    # Scratch only, new for every call: the branch on the forge is the record, so
    # nothing a killed attempt left (a half-made .git, a stale index.lock) is reused,
    # and two attempts of one run on one host never share a directory.
    deps.workdir.mkdir(parents=True, exist_ok=True)
    _prune_scratch(deps.workdir)
    workdir = Path(tempfile.mkdtemp(prefix=f"run-{run.id}-", dir=deps.workdir))
    try:
        return forge_publish(deps.forge, request, workdir, reference=reference)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _prune_scratch(root: Path) -> None:
    """Remove what killed workers left in ``root``; a live publish is far younger."""
    for leftover in root.iterdir():
        try:
            old = time.time() - leftover.stat().st_mtime > SCRATCH_STALE_SECONDS
        except FileNotFoundError:  # removed by a concurrent prune
            continue
        if old:
            shutil.rmtree(leftover, ignore_errors=True)


def record_pr(ctx: RunContext, result: PublishResult) -> None:
    """Save the branch and PR on the run; announce the PR the first time only."""
    run = ctx.run()
    first = run.artifacts.pr_number is None
    pr = result.pr

    def published(run: Run) -> None:
        run.artifacts.branch = result.branch
        run.artifacts.head_sha = result.head_sha
        run.artifacts.pr_url = pr.url
        run.artifacts.pr_number = pr.number

    event: Event
    if first:
        event = PullRequestOpened(
            by=ctx.by,
            url=pr.url,
            number=pr.number,
            branch=result.branch,
            head_sha=result.head_sha,
            draft=pr.draft,
        )
    else:
        event = PullRequestUpdated(
            by=ctx.by,
            url=pr.url,
            number=pr.number,
            branch=result.branch,
            head_sha=result.head_sha,
            draft=pr.draft,
            text=f"pushed iteration {run.iteration} to {result.branch}"
            if result.changed
            else f"iteration {run.iteration} changed nothing on {result.branch}",
        )
    ctx.save(published, [event])


def review_comments(run: Run) -> list[str]:
    """One review body per specialist with findings that did not block publishing."""
    bodies = []
    for name, review in sorted(run.artifacts.specialists.items()):
        milder = review.milder_findings
        if not milder:
            continue
        lines = [f"**{name} review** ({review.verdict}, by the agents bot):", ""]
        for finding in milder:
            at = where(finding)
            text = " ".join(str(finding.get("text", "")).split())
            lines.append(
                f"- **{finding.get('severity')}**" + (f" `{at}`" if at else "") + f": {text}"
            )
        bodies.append(redact_secrets("\n".join(lines))[:MAX_REVIEW])
    return bodies


def post_review_comments(ctx: RunContext) -> None:
    """The specialists' milder findings, as comment reviews on the PR (once)."""
    run = ctx.run()
    number = run.artifacts.pr_number
    if number is None or run.artifacts.review_comments_posted:
        return
    for body in review_comments(run):
        try:
            ctx.deps.forge.post_review(run.repo, number, body)
        except ForgeError as err:  # the PR is open; the findings are in its body too
            log.warning("run #%s: could not post a review comment: %s", run.id, err)

    def posted(run: Run) -> None:
        run.artifacts.review_comments_posted = True

    ctx.save(posted)


def publish(ctx: RunContext, session: SandboxSession) -> None:
    run = ctx.run()
    a = run.artifacts
    if a.budget_stopped and not (a.patch or "").strip() and a.pr_number is None:
        raise StepFailed(
            f"{run.label} stopped at its budget before changing anything; nothing to publish"
        )
    safety_gate(ctx, run)
    start = run.artifacts.start_commit
    if start is None:
        raise StepFailed("the run has no start commit (prepare did not run)")
    result = push_iteration(ctx, run, patch=run.artifacts.patch or "", patch_base=start)
    record_pr(ctx, result)
    post_review_comments(ctx)
