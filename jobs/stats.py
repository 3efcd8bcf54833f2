"""The worker's stats pass: outcomes from the runs, merges from the forge, survival
from ``git blame`` on the repository mirror.

It runs as an RQ job (:func:`jobs.entrypoints.stats_job`), enqueued by each worker's
periodic thread under one job id per interval, so one worker does each pass; the bot
only reads what it wrote (:mod:`runs.outcomes`, :mod:`runs.stats`).

Where "merged" comes from is pluggable (:class:`MergeSource`): polling the forge for
each open agent PR here, or a webhook calling :meth:`OutcomeStore.mark_merged`. Either
way survival is measured the same: the lines the PR's merge added on the base branch
(``git diff --numstat`` against its first parent), and, on the default branch as it
stood 30 and 90 days after the merge, how many lines ``git blame`` still attributes to
the PR's commits.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from jobs.forge.protocol import Forge, PullRequest
from process.exceptions import ForgeError, RepoCacheError
from runs.outcomes import OutcomeStore, RunOutcome, Survival, outcome_of
from runs.record import utcnow
from runs.stats import HORIZONS, horizon_due
from runs.store import RunStore
from sandboxes.cache import RepoCache

log = logging.getLogger(__name__)

#: Runs looked at per pass (newest first); older ones are settled long before.
MAX_RUNS = 5000
_BLAME_HEADER = re.compile(rb"^([0-9a-f]{40}) \d+ \d+", re.MULTILINE)


class MergeSource(Protocol):
    """Where the state of a run's PR comes from."""

    def pull(self, repo: str, number: int) -> PullRequest: ...


@dataclass
class ForgePolling:
    """The forge's answer now (``get_pr``), for each PR not yet merged or closed."""

    forge: Forge

    def pull(self, repo: str, number: int) -> PullRequest:
        return self.forge.get_pr(repo, number)


@dataclass
class StatsPass:
    """What one pass did, for its log line and the tests."""

    outcomes: int = 0
    merged: list[int] = field(default_factory=list)
    survival: list[tuple[int, int]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class Mirror:
    """Git reads on the worker's mirror of one repository."""

    def __init__(self, cache: RepoCache, url: str) -> None:
        self.cache = cache
        self.url = url

    def git(self, *args: str) -> bytes:
        return self.cache.git_output(self.url, list(args))

    def committed_at(self, sha: str) -> datetime:
        seconds = int(self.git("show", "-s", "--format=%ct", sha).strip())
        return datetime.fromtimestamp(seconds, UTC)

    def added_lines(self, merge_sha: str) -> dict[str, int]:
        """Lines the merge added, per file, against the base it was merged into."""
        added: dict[str, int] = {}
        raw = self.git("diff", "--numstat", "--no-renames", f"{merge_sha}^1", merge_sha)
        for line in raw.decode("utf-8", errors="replace").splitlines():
            count, _, rest = line.partition("\t")
            _, _, path = rest.partition("\t")
            if count.isdigit() and int(count) and path:
                added[path] = int(count)
        return added

    def pr_commits(self, merge_sha: str) -> set[bytes]:
        raw = self.git("rev-list", f"{merge_sha}^1..{merge_sha}")
        return {line.strip() for line in raw.splitlines() if line.strip()}

    def branch_at(self, branch: str, when: datetime) -> str | None:
        raw = self.git(
            "rev-list",
            "-1",
            "--first-parent",
            f"--before={int(when.timestamp())}",
            f"refs/heads/{branch}",
        ).strip()
        return raw.decode() or None

    def surviving(self, snapshot: str, path: str, commits: set[bytes]) -> int:
        try:
            blame = self.git("blame", "--line-porcelain", snapshot, "--", path)
        except RepoCacheError:  # the file is gone at the snapshot
            return 0
        return sum(1 for match in _BLAME_HEADER.finditer(blame) if match.group(1) in commits)


def survival(mirror: Mirror, outcome: RunOutcome, branch: str, days: int) -> Survival:
    """Of the lines ``outcome``'s merge added, those still on ``branch`` ``days`` after it."""
    assert outcome.merge_sha is not None
    assert outcome.merged_at is not None
    added = mirror.added_lines(outcome.merge_sha)
    snapshot = mirror.branch_at(branch, outcome.merged_at + timedelta(days=days))
    if snapshot is None or not added:
        return Survival(added=sum(added.values()), surviving=0)
    commits = mirror.pr_commits(outcome.merge_sha)
    kept = sum(min(mirror.surviving(snapshot, path, commits), n) for path, n in added.items())
    return Survival(added=sum(added.values()), surviving=kept)


def collect_outcomes(store: RunStore, outcomes: OutcomeStore, done: StatsPass) -> None:
    """Every recent run's outcome, keeping what the forge said about it before."""
    for offset in range(0, MAX_RUNS, 200):
        page = store.list_recent(limit=200, offset=offset)
        for run in page:
            known = outcomes.get(run.id)
            if known is not None and known.settled and known.status is run.status:
                continue
            outcomes.save(outcome_of(run, store.events(run.id), known))
            done.outcomes += 1
        if len(page) < 200:
            return


def refresh(
    store: RunStore,
    outcomes: OutcomeStore,
    forge: Forge,
    cache: RepoCache,
    *,
    merges: MergeSource | None = None,
    git_auth: Callable[[str], str | None] = lambda url: None,
    now: datetime | None = None,
    retention: timedelta = timedelta(days=400),
) -> StatsPass:
    """One pass: outcomes, then merges, then survival for PRs that reached a horizon."""
    now = now or utcnow()
    merges = merges or ForgePolling(forge)
    done = StatsPass()
    collect_outcomes(store, outcomes, done)
    outcomes.prune(now - retention)
    mirrors: dict[str, tuple[Mirror, str]] = {}

    def mirror_of(repo: str) -> tuple[Mirror, str]:
        if repo not in mirrors:
            url = forge.clone_url(repo)
            cache.mirror(url, auth_header=git_auth(url))
            mirrors[repo] = (Mirror(cache, url), forge.default_branch(repo))
        return mirrors[repo]

    for outcome in outcomes.since(None):
        try:
            _update(outcome, merges, mirror_of, now, outcomes, done)
        except (ForgeError, RepoCacheError) as err:
            done.errors.append(f"run #{outcome.run_id} ({outcome.repo}): {err}")
    outcomes.mark_refreshed(now)
    return done


def _update(
    outcome: RunOutcome,
    merges: MergeSource,
    mirror_of: Callable[[str], tuple[Mirror, str]],
    now: datetime,
    outcomes: OutcomeStore,
    done: StatsPass,
) -> None:
    changed = False
    if outcome.pr_number is not None and not outcome.merged and not outcome.closed:
        pr = merges.pull(outcome.repo, outcome.pr_number)
        if pr.merged:
            mirror, _ = mirror_of(outcome.repo)
            sha = pr.merge_sha
            outcome.merged, outcome.merge_sha = True, sha
            outcome.merged_at = mirror.committed_at(sha) if sha else now
            done.merged.append(outcome.run_id)
            changed = True
        elif pr.state == "closed":
            outcome.closed = changed = True
    if outcome.merged and outcome.merge_sha and outcome.merged_at is None:
        outcome.merged_at = mirror_of(outcome.repo)[0].committed_at(outcome.merge_sha)
        changed = True
    for days in HORIZONS:
        if outcome.merge_sha and horizon_due(outcome, days, now):
            mirror, branch = mirror_of(outcome.repo)
            outcome.survival[str(days)] = survival(mirror, outcome, branch, days)
            done.survival.append((outcome.run_id, days))
            changed = True
    if changed:
        outcomes.save(outcome)
