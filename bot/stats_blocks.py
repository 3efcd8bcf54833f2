"""``/agents stats`` and the App Home's figures as Block Kit: the report from
:mod:`runs.stats`, drawn from the outcomes the workers' stats pass keeps."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.blocks import context, escape, section
from runs.stats import Report, figure_lines

#: Repositories shown one by one; the total covers them all.
MAX_REPOS = 15


def stats_blocks(
    report: Report, window: str, refreshed_at: datetime | None
) -> tuple[str, list[dict[str, Any]]]:
    blocks: list[dict[str, Any]] = [
        section(f"*Stats over the last {escape(window)}* (since {report.since:%Y-%m-%d %H:%M} UTC)")
    ]
    if not report.repos:
        blocks.append(section("No runs in this window."))
    shown = report.repos[:MAX_REPOS]
    for figures in shown:
        lines = "\n".join(escape(line) for line in figure_lines(figures))
        blocks.append(section(f"*{escape(figures.repo)}*\n{lines}"))
    if len(report.repos) > 1:
        lines = "\n".join(escape(line) for line in figure_lines(report.total))
        blocks.append(section(f"*All repositories*\n{lines}"))
    notes = []
    if len(report.repos) > MAX_REPOS:
        notes.append(f"{len(report.repos) - MAX_REPOS} more repositories are in the total only.")
    if report.hidden:
        notes.append(f"{report.hidden} run(s) asked in conversations you're not in are left out.")
    when = f"{refreshed_at:%Y-%m-%d %H:%M} UTC" if refreshed_at else "never yet"
    notes.append(
        f"Merged PRs and line survival come from the forge, read by a worker (last pass: {when})."
    )
    blocks.append(context(" ".join(notes)))
    total = report.total
    fallback = (
        f"{total.runs} runs, {total.prs_merged} merged PRs, merged rate {total.merged_rate:.0%}"
    )
    return escape(fallback), blocks
