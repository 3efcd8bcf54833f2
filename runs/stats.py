"""The figures of ``agents stats``, ``/agents stats`` and the App Home, from outcomes.

Pure functions: the same outcomes give the same figures wherever they are drawn.

- **merged rate**: PRs merged over runs (how many runs end in a merged PR);
- **cost per merged PR**: everything the runs spent, failures included, over the PRs
  merged (what a merged change costs);
- **median time to PR**: from the request to the PR being opened;
- **rework and CI rounds per PR**: over the runs that opened one;
- **survival at 30 and 90 days**: of the lines merged agent PRs added, the share still
  on the default branch that long after the merge. It covers every merged PR old
  enough, whatever the window (a 30-day window holds no PR merged 90 days ago).

And the estimate a new thread shows: medians of what the last finished runs on the
repository took, once there are :data:`ESTIMATE_MIN_RUNS` of them.
"""

from __future__ import annotations

import re
import statistics
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict

from runs.outcomes import RunOutcome
from runs.record import Estimate

ESTIMATE_MIN_RUNS = 5
ESTIMATE_SAMPLE = 20
HORIZONS = (30, 90)
TOP_FAILURES = 3
_WINDOW = re.compile(r"^(\d{1,4})([hdw])$")
_VOLATILE = re.compile(r"#\d+|\b[0-9a-f]{7,40}\b|\d+(\.\d+)?")


def parse_window(text: str) -> timedelta:
    """``12h``, ``30d``, ``8w``; raises ValueError with what is expected."""
    match = _WINDOW.match(text.strip().lower())
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"{text!r} is not a window: use hours, days or weeks, e.g. 30d, 12h, 8w")
    amount, unit = int(match.group(1)), match.group(2)
    return (
        timedelta(hours=amount)
        if unit == "h"
        else timedelta(days=amount * (7 if unit == "w" else 1))
    )


def failure_kind(error: str) -> str:
    """A failure's reason without what differs between runs (ids, numbers, hashes)."""
    first = error.strip().splitlines()[0] if error.strip() else "unknown"
    head = first.split(": ", 2)
    short = ": ".join(head[:2]) if len(head) > 2 and len(head[0]) < 40 else first
    return _VOLATILE.sub("N", short)[:100]


class Figures(BaseModel):
    model_config = ConfigDict(extra="forbid")

    repo: str
    runs: int
    prs_opened: int
    prs_merged: int
    merged_rate: float
    median_time_to_pr: float | None
    dollars: float
    cost_per_run: float | None
    cost_per_merged_pr: float | None
    rework_rounds_per_pr: float | None
    ci_rounds_per_pr: float | None
    top_failures: list[tuple[str, int]]
    #: By horizon ("30", "90"): share of added lines still there, or None (no PR that old).
    survival: dict[str, float | None]
    survival_lines: dict[str, tuple[int, int]]


def _survival(
    merged: list[RunOutcome],
) -> tuple[dict[str, float | None], dict[str, tuple[int, int]]]:
    shares: dict[str, float | None] = {}
    lines: dict[str, tuple[int, int]] = {}
    for days in HORIZONS:
        measured = [o.survival[str(days)] for o in merged if str(days) in o.survival]
        added = sum(s.added for s in measured)
        surviving = sum(s.surviving for s in measured)
        lines[str(days)] = (surviving, added)
        shares[str(days)] = round(surviving / added, 4) if added else None
    return shares, lines


def figures(repo: str, window: list[RunOutcome], all_merged: list[RunOutcome]) -> Figures:
    runs = len(window)
    opened = [o for o in window if o.pr_number is not None]
    merged = [o for o in opened if o.merged]
    dollars = round(sum(o.dollars for o in window), 6)
    times = [t for o in opened if (t := o.time_to_pr) is not None]
    failures = Counter(failure_kind(o.error) for o in window if o.error)
    survival, lines = _survival(all_merged)
    return Figures(
        repo=repo,
        runs=runs,
        prs_opened=len(opened),
        prs_merged=len(merged),
        merged_rate=round(len(merged) / runs, 4) if runs else 0.0,
        median_time_to_pr=statistics.median(times) if times else None,
        dollars=dollars,
        cost_per_run=round(dollars / runs, 6) if runs else None,
        cost_per_merged_pr=round(dollars / len(merged), 6) if merged else None,
        rework_rounds_per_pr=(
            round(statistics.fmean(o.rework_rounds for o in opened), 4) if opened else None
        ),
        ci_rounds_per_pr=round(statistics.fmean(o.ci_rounds for o in opened), 4)
        if opened
        else None,
        top_failures=failures.most_common(TOP_FAILURES),
        survival=survival,
        survival_lines=lines,
    )


class Report(BaseModel):
    model_config = ConfigDict(extra="forbid")

    since: datetime
    repos: list[Figures]
    total: Figures
    #: Runs left out because the viewer may not see them (private conversations).
    hidden: int = 0


def stats_report(
    outcomes: Iterable[RunOutcome],
    *,
    since: datetime,
    visible: Callable[[RunOutcome], bool] | None = None,
    repos: set[str] | None = None,
) -> Report:
    """Per repository and in total, for runs created since ``since``."""
    shown: list[RunOutcome] = []
    hidden = 0
    for outcome in outcomes:
        if repos is not None and outcome.repo not in repos:
            continue
        if visible is not None and not visible(outcome):
            hidden += 1
            continue
        shown.append(outcome)
    window = [o for o in shown if o.created_at >= since]
    names = sorted({o.repo for o in window})
    merged = [o for o in shown if o.merged]
    per_repo = [
        figures(name, [o for o in window if o.repo == name], [o for o in merged if o.repo == name])
        for name in names
    ]
    return Report(since=since, repos=per_repo, total=figures("all", window, merged), hidden=hidden)


def estimate(outcomes: Iterable[RunOutcome], repo: str) -> Estimate | None:
    """What the last finished runs on ``repo`` took to open their PR, and cost; None
    below :data:`ESTIMATE_MIN_RUNS` of them."""
    finished = sorted(
        (o for o in outcomes if o.repo == repo and o.time_to_pr is not None),
        key=lambda o: o.created_at,
    )[-ESTIMATE_SAMPLE:]
    if len(finished) < ESTIMATE_MIN_RUNS:
        return None
    return Estimate(
        seconds=statistics.median(o.time_to_pr or 0.0 for o in finished),
        dollars=statistics.median(o.dollars for o in finished),
        runs=len(finished),
    )


def horizon_due(outcome: RunOutcome, days: int, now: datetime) -> bool:
    """Whether the PR is old enough for its survival at ``days`` to be measured."""
    return (
        outcome.merged
        and outcome.merged_at is not None
        and str(days) not in outcome.survival
        and outcome.merged_at + timedelta(days=days) <= now
    )


def _minutes(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    return f"{seconds / 3600:.1f} h" if seconds >= 5400 else f"{max(1, round(seconds / 60))} min"


def _dollars(value: float | None) -> str:
    return "—" if value is None else f"${value:.2f}"


def _share(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def _per(value: float | None) -> str:
    return "—" if value is None else f"{value:.2g}"


def figure_lines(f: Figures) -> list[str]:
    """One figure set as lines of ``label: value``; the CLI and Slack both show these."""
    lines = [
        f"runs: {f.runs} · PRs opened: {f.prs_opened} · merged: {f.prs_merged} "
        f"· merged rate: {f.merged_rate:.0%}",
        f"median time to PR: {_minutes(f.median_time_to_pr)} · cost per run: "
        f"{_dollars(f.cost_per_run)} · cost per merged PR: {_dollars(f.cost_per_merged_pr)}",
        f"rework rounds per PR: {_per(f.rework_rounds_per_pr)} · CI rounds per PR: "
        f"{_per(f.ci_rounds_per_pr)}",
        f"lines surviving: {_share(f.survival['30'])} at 30 days, "
        f"{_share(f.survival['90'])} at 90 days",
    ]
    if f.top_failures:
        lines.append("top failures: " + "; ".join(f"{kind} ({n})" for kind, n in f.top_failures))
    return lines


def render_stats(stats: Report, window: str) -> str:
    parts = [f"Since {stats.since:%Y-%m-%d %H:%M} UTC ({window}):"]
    for figures_ in [*stats.repos, stats.total] if len(stats.repos) != 1 else stats.repos:
        name = "all repositories" if figures_.repo == "all" else figures_.repo
        parts.append(f"\n{name}")
        parts.extend(f"  {line}" for line in figure_lines(figures_))
    if not stats.repos:
        parts.append("  no runs in this window")
    if stats.hidden:
        parts.append(f"\n({stats.hidden} run(s) asked in conversations you're not in are left out)")
    return "\n".join(parts)
