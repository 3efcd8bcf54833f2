"""The forge side of the blueprint's publish, watch-CI and approve steps.

Each function is safe to run again after a crash, which is how the blueprint resumes a
run from its last completed step:

* :func:`push_and_open_pr` recognises its own commit on the forge (the ``Agents-Run:
  #<id>@<store nonce> iteration <n>`` trailer) and the open PR for its branch, so a
  second run neither commits, pushes nor opens anything twice. Rework adds a commit on
  top of the pushed head; nothing is ever force-pushed.
* :func:`poll_ci` only reads.
* :func:`finish_pr` checks the PR's state before each write.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from jobs.forge import git as gitops
from jobs.forge.git import BOT_IDENTITY, Identity
from jobs.forge.protocol import CheckSummary, Forge, MergeMethod, PullRequest, can_write
from process.exceptions import ForgeRejected, ForgeUnavailable, NothingToPublish

log = logging.getLogger(__name__)

RUN_BODY_MARKER = "<!-- agents-run: {run_id} -->"

ApproveAction = Literal["ready", "merge"]
CiState = Literal["success", "failure", "none", "timed_out"]


# -- publish: push the change, open or find the PR -----------------------------------


@dataclass(frozen=True)
class PublishRequest:
    """Everything :func:`push_and_open_pr` needs; all of it is on the run record or in settings.

    ``patch`` is the binary git diff the sandbox exported; ``patch_base`` is the commit
    the sandbox started from. It defaults to the branch's pushed head when there is one
    (rework continues from what was pushed), else ``base_commit``. A patch made against
    another commit, say ``base_commit`` for a cumulative rework patch, is merged three-way
    onto the pushed head.
    """

    run_id: int
    repo: str
    request: str
    summary: str
    patch: bytes
    base_commit: str
    iteration: int = 1
    patch_base: str | None = None
    branch: str | None = None
    base_branch: str | None = None
    draft: bool = True
    title: str | None = None
    body: str | None = None
    requester: str | None = None
    thread_url: str | None = None
    co_authors: Sequence[Identity] = ()
    author: Identity = BOT_IDENTITY
    #: The run store's nonce (branch name and commit trailer), see ``gitops.branch_name``.
    nonce: str = ""

    @property
    def branch_name(self) -> str:
        return self.branch or gitops.branch_name(self.run_id, self.request, nonce=self.nonce)


@dataclass(frozen=True)
class PublishResult:
    branch: str
    head_sha: str
    pr: PullRequest
    committed: bool
    """A new commit was made and pushed by this call (False when resuming or no change)."""
    pr_created: bool
    changed: bool = True
    """False for a rework whose patch changed nothing on top of the pushed head."""
    notes: list[str] = field(default_factory=list)


def pr_title(request: str) -> str:
    title = gitops.subject_line(request)
    return title[:1].upper() + title[1:]


def minimal_pr_body(
    *,
    run_id: int,
    request: str,
    summary: str,
    requester: str | None = None,
    thread_url: str | None = None,
) -> str:
    """The PR description: what was asked, what was done, and where it came from."""
    quoted = "\n".join(f"> {line}" if line else ">" for line in request.strip().splitlines())
    origin = f"Run #{run_id}"
    if requester:
        origin += f", requested by {requester}"
    if thread_url:
        origin += f" in [this Slack thread]({thread_url})"
    parts = [
        quoted,
        summary.strip(),
        "---",
        f"{origin}. Opened by the agents bot; review it like any other change.",
        RUN_BODY_MARKER.format(run_id=run_id),
    ]
    return "\n\n".join(part for part in parts if part) + "\n"


def push_and_open_pr(
    forge: Forge, req: PublishRequest, workdir: Path, *, reference: Path | None = None
) -> PublishResult:
    """Commit the patch on the run's branch, push it, and open (or find) its PR.

    ``workdir`` is a worker-side directory for this run (never the sandbox); it holds
    a plain repository with no remote configured and no credential. ``reference``: the
    worker's local mirror of the repository, if any, to borrow objects from.
    """
    branch = req.branch_name
    base = req.base_branch or forge.default_branch(req.repo)
    marker = gitops.run_marker(req.run_id, req.iteration, nonce=req.nonce)
    notes: list[str] = []

    gitops.init_workdir(workdir, reference)
    remote = forge.remote_head(req.repo, branch)
    missing = [
        sha
        for sha in dict.fromkeys([req.base_commit, remote, req.patch_base])
        if sha and not gitops.has_commit(workdir, sha)
    ]
    forge.fetch(req.repo, workdir, missing)

    head = remote
    committed = False
    changed = True
    if remote is not None and gitops.find_marked_commit(workdir, req.base_commit, remote, marker):
        notes.append(f"{branch} already has the commit for iteration {req.iteration}")
        log.info("run #%d: %s already pushed; not committing again", req.run_id, branch)
    else:
        parent = remote or req.base_commit
        message = gitops.commit_message(
            req.summary,
            run_id=req.run_id,
            iteration=req.iteration,
            requester=req.requester,
            thread_url=req.thread_url,
            co_authors=req.co_authors,
            nonce=req.nonce,
        )
        sha = gitops.commit_patch(
            workdir,
            req.patch,
            parent=parent,
            patch_base=req.patch_base,
            message=message,
            author=req.author,
        )
        if sha is None:
            if remote is None:
                raise NothingToPublish(
                    f"run #{req.run_id}: the patch changes nothing, so there is nothing to push"
                )
            changed = False
            notes.append(f"iteration {req.iteration} changed nothing on top of {branch}")
        else:
            forge.push(req.repo, workdir, sha, branch)
            head, committed = sha, True
            log.info("run #%d: pushed %s to %s", req.run_id, sha[:12], branch)
    assert head is not None

    body = req.body or minimal_pr_body(
        run_id=req.run_id,
        request=req.request,
        summary=req.summary,
        requester=req.requester,
        thread_url=req.thread_url,
    )
    pr = forge.find_pr(req.repo, branch)
    created = False
    if pr is None:
        pr = forge.create_pr(
            req.repo,
            branch=branch,
            base=base,
            title=req.title or pr_title(req.request),
            body=body,
            draft=req.draft,
        )
        created = True
    elif pr.body.strip() != body.strip():
        pr = forge.update_pr_body(req.repo, pr.number, body)
    return PublishResult(
        branch=branch,
        head_sha=head,
        pr=pr,
        committed=committed,
        pr_created=created,
        changed=changed,
        notes=notes,
    )


# -- watch CI -------------------------------------------------------------------------


class CiOutcome(BaseModel):
    """How CI ended on one commit, for the run record and the thread."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    state: CiState
    checks: CheckSummary
    polls: int
    waited: float


def poll_ci(
    forge: Forge,
    repo: str,
    sha: str,
    *,
    timeout: float = 1800.0,
    interval: float = 15.0,
    settle: float = 60.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    on_poll: Callable[[CheckSummary], None] | None = None,
    between_polls: Callable[[], None] | None = None,
) -> CiOutcome:
    """Poll check runs and statuses on ``sha`` until they finish or ``timeout`` passes.

    ``between_polls`` is called before each wait; it may raise to end the watch early
    (a draining worker does: the watch only reads, so the next job just polls again).

    Checks can take a while to register after a push, so "nothing reported" is only
    final after ``settle`` seconds. A forge outage during the watch is logged and polled
    through; it only ends the watch when the timeout does.
    """
    start = clock()
    polls = 0
    summary = CheckSummary.of(sha, [])
    while True:
        try:
            summary = forge.checks(repo, sha)
            polls += 1
            if on_poll is not None:
                on_poll(summary)
        except ForgeUnavailable as exc:
            log.warning("reading checks on %s: %s; polling on", sha[:12], exc)
        waited = clock() - start
        if summary.done:
            final: CiState = "success" if summary.state == "success" else "failure"
            return CiOutcome(state=final, checks=summary, polls=polls, waited=waited)
        if summary.state == "none" and waited >= settle:
            return CiOutcome(state="none", checks=summary, polls=polls, waited=waited)
        if waited >= timeout:
            return CiOutcome(state="timed_out", checks=summary, polls=polls, waited=waited)
        if between_polls is not None:
            between_polls()
        sleep(max(0.0, min(interval, timeout - waited)))


# -- approve: mark the PR ready, or merge it -----------------------------------------


def may_approve(forge: Forge, repo: str, login: str) -> bool:
    """Whether the GitHub account ``login`` may approve (write or admin on ``repo``)."""
    return can_write(forge.permission(repo, login))


def finish_pr(
    forge: Forge,
    repo: str,
    number: int,
    *,
    action: ApproveAction = "ready",
    merge_method: MergeMethod = "squash",
    expected_sha: str | None = None,
) -> PullRequest:
    """Mark the PR ready for review, or merge it (after marking it ready if need be).

    ``expected_sha``: the head the approver saw; the merge is refused if the branch has
    moved since. Calling again after success changes nothing.
    """
    pr = forge.get_pr(repo, number)
    if pr.merged:
        return pr
    if pr.state != "open":
        raise ForgeRejected(f"{repo}#{number} is closed; reopen it or start a new run", status=None)
    if pr.draft:
        pr = forge.mark_ready(repo, number)
    if action == "merge":
        pr = forge.merge(repo, number, method=merge_method, sha=expected_sha)
    return pr
