"""An eval's results as files: JSON Lines, a Markdown table, the side-by-side table of
two or more variants, and a PNG chart of resolved rate and cost per task.

Every figure is computed from the per-task records (:class:`TaskResult`), and the JSON
Lines file holds those records, so the report can be checked against it. A report of
an eval that did not finish says so in its first line, and its summary carries
``"complete": false``: a partial result is never written as if it were whole.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from jobs.eval.records import TaskResult
from jobs.eval.tasks import Dropped

JSONL_FILE = "results.jsonl"
MARKDOWN_FILE = "report.md"
CHART_FILE = "chart.png"


class VariantSummary(BaseModel):
    model_config = ConfigDict(extra="forbid")

    variant: str
    tasks: int
    resolved: int
    resolved_rate: float
    dollars: float
    cost_per_task: float
    #: All the variant's spend over the tasks it resolved; None when it resolved none.
    cost_per_resolved: float | None
    tokens: int
    cache_share: float
    mean_turns: float
    mean_fix_rounds: float
    median_wall_seconds: float


def summarize_variants(results: list[TaskResult], variants: list[str]) -> list[VariantSummary]:
    out = []
    for name in variants:
        mine = [r for r in results if r.variant == name]
        count = len(mine)
        resolved = sum(r.resolved for r in mine)
        dollars = round(sum(r.dollars for r in mine), 6)
        prompt = sum(r.input_tokens + r.cache_read_tokens + r.cache_write_tokens for r in mine)
        cache_read = sum(r.cache_read_tokens for r in mine)
        out.append(
            VariantSummary(
                variant=name,
                tasks=count,
                resolved=resolved,
                resolved_rate=round(resolved / count, 4) if count else 0.0,
                dollars=dollars,
                cost_per_task=round(dollars / count, 6) if count else 0.0,
                cost_per_resolved=round(dollars / resolved, 6) if resolved else None,
                tokens=sum(r.tokens for r in mine),
                cache_share=round(cache_read / prompt, 4) if prompt else 0.0,
                mean_turns=round(statistics.fmean(r.turns for r in mine), 2) if mine else 0.0,
                mean_fix_rounds=(
                    round(statistics.fmean(r.fix_rounds_spent for r in mine), 2) if mine else 0.0
                ),
                median_wall_seconds=(
                    round(statistics.median(r.wall_seconds for r in mine), 1) if mine else 0.0
                ),
            )
        )
    return out


def _cell(text: str, limit: int = 160) -> str:
    """Text for a Markdown table cell: one line, pipes escaped, bounded."""
    flat = " ".join(text.split()).replace("|", "\\|")
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _money(value: float | None) -> str:
    return "—" if value is None else f"${value:.4f}" if value < 1 else f"${value:.2f}"


def summary_table(summaries: list[VariantSummary]) -> str:
    lines = [
        "| variant | tasks | resolved | resolved rate | cost | cost per task "
        "| cost per resolved | tokens | cache share | turns (mean) | fix rounds (mean) "
        "| wall time (median) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in summaries:
        lines.append(
            f"| {_cell(s.variant)} | {s.tasks} | {s.resolved} | {s.resolved_rate:.0%} "
            f"| {_money(s.dollars)} | {_money(s.cost_per_task)} | {_money(s.cost_per_resolved)} "
            f"| {s.tokens:,} | {s.cache_share:.0%} | {s.mean_turns:g} | {s.mean_fix_rounds:g} "
            f"| {s.median_wall_seconds:g}s |"
        )
    return "\n".join(lines)


def task_table(results: list[TaskResult]) -> str:
    lines = [
        "| task | variant | resolved | cost | tokens | cache share | turns | fix rounds "
        "| wall time | failure reason |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {_cell(r.instance_id)} | {_cell(r.variant)} | {'yes' if r.resolved else 'no'} "
            f"| {_money(r.dollars)} | {r.tokens:,} | {r.cache_share:.0%} | {r.turns} "
            f"| {r.fix_rounds_spent} | {r.wall_seconds:.1f}s | {_cell(r.failure_reason or '')} |"
        )
    return "\n".join(lines)


def compare_table(
    results: list[TaskResult], summaries: list[VariantSummary], tasks: list[str]
) -> str:
    """Side by side: one row per task, resolved and cost under each variant, then the
    summary figures under each variant."""
    names = [s.variant for s in summaries]
    by = {(r.instance_id, r.variant): r for r in results}
    head = "| task | " + " | ".join(f"{_cell(n)}: resolved | {_cell(n)}: cost" for n in names)
    lines = [head + " |", "|---|" + "---|---|" * len(names)]
    for task in tasks:
        cells = []
        for name in names:
            r = by.get((task, name))
            if r is None:
                cells += ["—", "—"]
            else:
                cells += ["yes" if r.resolved else "no", _money(r.dollars)]
        lines.append(f"| {_cell(task)} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "| | " + " | ".join(_cell(n) for n in names) + " |",
        "|---|" + "---|" * len(names),
        "| resolved | " + " | ".join(f"{s.resolved}/{s.tasks}" for s in summaries) + " |",
        "| resolved rate | " + " | ".join(f"{s.resolved_rate:.0%}" for s in summaries) + " |",
        "| cost per task | " + " | ".join(_money(s.cost_per_task) for s in summaries) + " |",
        "| cost per resolved | "
        + " | ".join(_money(s.cost_per_resolved) for s in summaries)
        + " |",
        "| tokens | " + " | ".join(f"{s.tokens:,}" for s in summaries) + " |",
        "| wall time (median) | "
        + " | ".join(f"{s.median_wall_seconds:g}s" for s in summaries)
        + " |",
    ]
    return "\n".join(lines)


def markdown(
    title: str,
    results: list[TaskResult],
    summaries: list[VariantSummary],
    dropped: list[Dropped],
    tasks: list[str],
    *,
    complete: bool,
    expected: int,
) -> str:
    parts = []
    if not complete:
        parts.append(
            f"**INCOMPLETE: {len(results)} of {expected} task runs finished.** "
            "These figures cover only those; do not publish them as the eval's result.\n"
        )
    parts.append(f"# {title}\n")
    parts.append(summary_table(summaries) + "\n")
    if len(summaries) > 1:
        parts.append("## Side by side\n")
        parts.append(compare_table(results, summaries, tasks) + "\n")
    parts.append("## Tasks\n")
    parts.append(task_table(results) + "\n")
    if dropped:
        parts.append(f"## Dropped tasks ({len(dropped)})\n")
        parts.append("Left out of every figure above, with the reason:\n")
        parts.extend(f"- `{_cell(d.instance_id, 80)}`: {_cell(d.reason, 400)}" for d in dropped)
        parts.append("")
    return "\n".join(parts)


def jsonl(
    results: list[TaskResult],
    summaries: list[VariantSummary],
    dropped: list[Dropped],
    *,
    complete: bool,
    expected: int,
) -> str:
    """One line per task record, one per dropped task, one per variant's summary, and
    a last line saying whether the eval finished."""
    lines = [json.dumps({"type": "task", **r.model_dump(mode="json")}) for r in results]
    lines += [json.dumps({"type": "dropped", **d.model_dump(mode="json")}) for d in dropped]
    lines += [json.dumps({"type": "summary", **s.model_dump(mode="json")}) for s in summaries]
    lines.append(
        json.dumps(
            {
                "type": "eval",
                "complete": complete,
                "task_runs": len(results),
                "expected": expected,
                "dropped": len(dropped),
            }
        )
    )
    return "\n".join(lines) + "\n"


def chart(summaries: list[VariantSummary], path: Path, *, title: str) -> None:
    """Resolved rate and cost per task, one bar per variant, as a PNG."""
    from matplotlib.figure import Figure  # heavy: only when a report is written

    names = [s.variant for s in summaries]
    figure = Figure(figsize=(max(6.0, 2.2 * len(names) + 2), 3.6), dpi=100)
    rate, cost = figure.subplots(1, 2)
    rate.bar(names, [s.resolved_rate * 100 for s in summaries], color="#2e7d32")
    rate.set_ylim(0, 100)
    rate.set_ylabel("resolved (%)")
    rate.set_title("resolved rate")
    cost.bar(names, [s.cost_per_task for s in summaries], color="#1565c0")
    cost.set_ylabel("US dollars")
    cost.set_title("cost per task")
    for axes in (rate, cost):
        axes.tick_params(axis="x", labelrotation=15)
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, format="png")


def write_reports(
    directory: Path,
    title: str,
    results: list[TaskResult],
    variants: list[str],
    dropped: list[Dropped],
    tasks: list[str],
    *,
    expected: int,
) -> dict[str, Path]:
    """Write the three files into ``directory``; returns them by kind."""
    complete = len(results) == expected
    summaries = summarize_variants(results, variants)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {
        "jsonl": directory / JSONL_FILE,
        "markdown": directory / MARKDOWN_FILE,
        "chart": directory / CHART_FILE,
    }
    paths["jsonl"].write_text(
        jsonl(results, summaries, dropped, complete=complete, expected=expected)
    )
    paths["markdown"].write_text(
        markdown(title, results, summaries, dropped, tasks, complete=complete, expected=expected)
    )
    chart(summaries, paths["chart"], title=title if complete else f"{title} (INCOMPLETE)")
    return paths
