"""Stats over a store seeded with runs of known outcomes, on a real local forge: the
exact merged rate, cost per merged PR, and line survival at 30 and 90 days measured
with git blame on the worker's mirror."""

from __future__ import annotations

import os
import subprocess
from datetime import datetime, timedelta
from pathlib import Path

import fakeredis
import pytest

from jobs.forge.local import LocalForge
from jobs.forge.protocol import PullRequest
from jobs.stats import refresh
from runs.artifacts import Cost
from runs.events import CiFinished, PullRequestOpened
from runs.outcomes import OutcomeStore
from runs.record import Run, RunStatus, utcnow
from runs.stats import estimate, parse_window, stats_report
from runs.store import RunStore
from sandboxes.cache import RepoCache

REPO, OTHER = "acme/api", "acme/web"


def git(cwd: Path, *args: str, when: datetime | None = None) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Dev",
        "GIT_AUTHOR_EMAIL": "dev@example.com",
        "GIT_COMMITTER_NAME": "Dev",
        "GIT_COMMITTER_EMAIL": "dev@example.com",
        "GIT_CONFIG_GLOBAL": os.devnull,
    }
    if when is not None:
        stamp = f"{int(when.timestamp())} +0000"
        env.update(GIT_AUTHOR_DATE=stamp, GIT_COMMITTER_DATE=stamp)
    done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


class World:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.forge = LocalForge(root / "forge")
        source = root / "seed"
        source.mkdir()
        (source / "app.py").write_text("print('hello')\n")
        self.forge.create_repo(REPO, source=source)
        self.work = root / "work"
        git(root, "clone", "-q", str(self.forge.repo_path(REPO)), str(self.work))
        self.connection = fakeredis.FakeRedis()
        self.store = RunStore(self.connection)
        self.outcomes = OutcomeStore(self.connection)
        self.cache = RepoCache(root / "cache")

    def pull_request(self, branch: str, path: str, lines: int) -> PullRequest:
        git(self.work, "checkout", "-q", "-B", branch, "origin/main")
        (self.work / path).write_text("".join(f"line {i} of {path}\n" for i in range(lines)))
        git(self.work, "add", path)
        git(self.work, "commit", "-q", "-m", f"add {path}")
        git(self.work, "push", "-q", "origin", f"{branch}:{branch}")
        return self.forge.create_pr(
            REPO, branch=branch, base="main", title=f"add {path}", body="", draft=False
        )

    def run(
        self,
        dollars: float,
        *,
        repo: str = REPO,
        pr: PullRequest | None = None,
        error: str | None = None,
        reworks: int = 0,
        ci: int = 0,
        minutes_to_pr: float = 5,
    ) -> Run:
        run = self.store.create(requester="U1", repo=repo, request="change it")
        self.store.add_cost(run.id, Cost(dollars=dollars))
        self.store.transition(run.id, RunStatus.RUNNING, by="w")
        if error is not None:
            return self.store.transition(run.id, RunStatus.FAILED, by="w", reason=error)
        assert pr is not None

        def published(r: Run) -> None:
            r.artifacts.pr_number, r.artifacts.pr_url = pr.number, pr.url
            r.iteration = 1 + reworks

        opened = PullRequestOpened(
            by="w",
            at=run.created_at + timedelta(minutes=minutes_to_pr),
            url=pr.url,
            number=pr.number,
            branch=pr.branch,
            head_sha=pr.head_sha,
            draft=False,
        )
        ci_events = [CiFinished(by="w", state="success", text="green") for _ in range(ci)]
        self.store.update(run.id, published, events=[opened, *ci_events])
        return self.store.transition(run.id, RunStatus.AWAITING_DECISION, by="w")


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


def test_stats_give_the_exact_merged_rate_cost_per_merged_pr_and_survival(world: World) -> None:
    first = world.pull_request("agents/1", "a.py", 10)
    second = world.pull_request("agents/2", "b.py", 4)
    still_open = world.pull_request("agents/3", "c.py", 3)
    world.run(2.0, pr=first, minutes_to_pr=4)
    world.run(1.0, pr=second, reworks=1, ci=1, minutes_to_pr=6)
    world.run(0.5, pr=still_open, minutes_to_pr=20)
    world.run(1.5, error="the agent stopped (turn limit): 40 turns used")
    world.run(0.0, repo=OTHER, error="the agent stopped (turn limit): 40 turns used")
    world.forge.merge(REPO, first.number, method="squash")
    merged = world.forge.merge(REPO, second.number, method="merge")
    # 60 days after the merges, someone deletes half of a.py's lines.
    git(world.work, "fetch", "-q", "origin")
    git(world.work, "checkout", "-q", "-B", "main", "origin/main")
    assert git(world.work, "rev-parse", "HEAD") == merged.merge_sha
    (world.work / "a.py").write_text("".join(f"line {i} of a.py\n" for i in range(5)))
    later = utcnow() + timedelta(days=60)
    git(world.work, "commit", "-q", "-am", "trim a.py", when=later)
    git(world.work, "push", "-q", "origin", "main:main")

    # Before any horizon: merges are known, survival is not measured yet.
    done = refresh(world.store, world.outcomes, world.forge, world.cache)
    assert sorted(done.merged) == [1, 2]
    assert done.survival == []
    assert done.errors == []
    # A hundred days on, both horizons are due for both PRs.
    done = refresh(
        world.store, world.outcomes, world.forge, world.cache, now=utcnow() + timedelta(days=100)
    )
    assert sorted(done.survival) == [(1, 30), (1, 90), (2, 30), (2, 90)]
    report = stats_report(world.outcomes.since(None), since=utcnow() - parse_window("30d"))
    api, web = report.repos
    assert (api.repo, api.runs, api.prs_opened, api.prs_merged) == (REPO, 4, 3, 2)
    assert api.merged_rate == 0.5
    assert api.dollars == 5.0
    assert api.cost_per_run == 1.25
    assert api.cost_per_merged_pr == 2.5
    assert api.median_time_to_pr == 360.0
    assert api.rework_rounds_per_pr == round(1 / 3, 4)
    assert api.ci_rounds_per_pr == round(1 / 3, 4)
    assert api.top_failures == [("the agent stopped (turn limit): N turns used", 1)]
    assert api.survival_lines == {"30": (14, 14), "90": (9, 14)}
    assert api.survival == {"30": 1.0, "90": round(9 / 14, 4)}
    assert (web.runs, web.prs_merged, web.merged_rate, web.cost_per_merged_pr) == (1, 0, 0, None)
    assert web.survival == {"30": None, "90": None}
    total = report.total
    assert (total.runs, total.prs_merged, total.merged_rate) == (5, 2, 0.4)
    assert total.cost_per_merged_pr == 2.5
    assert total.top_failures == [("the agent stopped (turn limit): N turns used", 2)]


def test_a_merge_told_by_a_webhook_is_not_polled_again(world: World) -> None:
    pr = world.pull_request("agents/1", "a.py", 3)
    world.run(1.0, pr=pr)

    class NoPolling:
        def pull(self, repo: str, number: int) -> PullRequest:
            raise AssertionError("a merge already known must not be polled")

    refresh(
        world.store,
        world.outcomes,
        world.forge,
        world.cache,
    )
    world.forge.merge(REPO, pr.number)
    merged_pr = world.forge.get_pr(REPO, pr.number)
    world.outcomes.mark_merged(1, merge_sha=merged_pr.merge_sha, merged_at=utcnow())
    refresh(world.store, world.outcomes, world.forge, world.cache, merges=NoPolling())
    outcome = world.outcomes.get(1)
    assert outcome is not None
    assert (outcome.merged, outcome.merge_sha) == (True, merged_pr.merge_sha)


def test_the_estimate_needs_five_finished_runs_on_the_repository(world: World) -> None:
    pr = world.pull_request("agents/1", "a.py", 3)
    for minutes, dollars in ((2, 0.5), (4, 1.0), (6, 1.5), (8, 2.0)):
        world.run(dollars, pr=pr, minutes_to_pr=minutes)
    world.run(9.0, error="boom")  # failed: not a finished run with a PR
    refresh(world.store, world.outcomes, world.forge, world.cache)
    assert estimate(world.outcomes.since(None), REPO) is None
    world.run(1.2, pr=pr, minutes_to_pr=5)
    refresh(world.store, world.outcomes, world.forge, world.cache)
    assert estimate(world.outcomes.since(None), OTHER) is None
    found = estimate(world.outcomes.since(None), REPO)
    assert found is not None
    assert (found.seconds, found.dollars, found.runs) == (300.0, 1.2, 5)
    assert found.text == "usually ~5 min, ~$1.20"


def test_windows_are_hours_days_or_weeks() -> None:
    assert parse_window("12h") == timedelta(hours=12)
    assert parse_window("30d") == timedelta(days=30)
    assert parse_window("2w") == timedelta(days=14)
    for bad in ("0d", "30", "1y", "-3d"):
        with pytest.raises(ValueError, match="is not a window"):
            parse_window(bad)
