"""`agents eval` end to end on a fixture repository built from a real package: the
oracle resolves every task, the null model none, the side-by-side table and the chart
are written, and a SWE-bench-format file runs with its bad lines dropped and counted."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from jobs.forge.local import LocalForge
from tests.eval import fixture
from tests.eval.conftest import Built, records

pytestmark = [pytest.mark.redis, pytest.mark.slow]


@pytest.fixture(scope="module")
def compared(built: Built) -> tuple[subprocess.CompletedProcess[str], Path]:
    out = built.root / "compare"
    done = built.agents(
        "eval",
        "--repo",
        str(built.repo),
        "--from-history",
        "7",
        "--compare",
        "model=oracle",
        "model=null",
        "--workers",
        "2",
        "--out",
        str(out),
        "--timeout",
        "400",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done, out


def of_type(rows: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [row for row in rows if row["type"] == kind]


def test_history_mode_oracle_resolves_every_task_and_null_none(
    built: Built, compared: tuple[subprocess.CompletedProcess[str], Path]
) -> None:
    _, out = compared
    rows = records(out / "results.jsonl")
    tasks = of_type(rows, "task")
    oracle = [r for r in tasks if r["variant"] == "model=oracle"]
    null = [r for r in tasks if r["variant"] == "model=null"]
    assert len(oracle) == len(null) == 6
    assert all(r["resolved"] and r["failure_reason"] is None for r in oracle)
    assert not any(r["resolved"] for r in null)
    assert all("FAIL_TO_PASS still fail" in r["failure_reason"] for r in null)
    # The oracle's change is the commit's source change; the null model's is nothing.
    assert all("+def " in r["patch"] and "tests/" not in r["patch"] for r in oracle)
    assert all(r["patch"] == "" for r in null)
    summary = {s["variant"]: s for s in of_type(rows, "summary")}
    assert (summary["model=oracle"]["resolved_rate"], summary["model=null"]["resolved_rate"]) == (
        1.0,
        0.0,
    )
    assert of_type(rows, "eval") == [
        {"type": "eval", "complete": True, "task_runs": 12, "expected": 12, "dropped": 1}
    ]


def test_history_mode_takes_commits_that_change_source_and_tests(
    built: Built, compared: tuple[subprocess.CompletedProcess[str], Path]
) -> None:
    _, out = compared
    rows = records(out / "results.jsonl")
    picked = {r["instance_id"].rsplit("-", 1)[1] for r in of_type(rows, "task")}
    wanted = {built.commits[c.subject][:12] for c in fixture.CHANGES}
    assert picked == wanted
    (dropped,) = of_type(rows, "dropped")
    assert dropped["instance_id"].endswith(built.commits[fixture.ALREADY_PASSING.subject][:12])
    assert "no test fails at the base commit" in dropped["reason"]
    # FAIL_TO_PASS are the commit's new tests, found by running them before and after.
    kebab = next(
        r
        for r in of_type(rows, "task")
        if r["variant"] == "model=oracle" and "kebabize" in "".join(r["fail_to_pass"])
    )
    assert kebab["fail_to_pass"] == [
        "tests/test_kebabize.py::test_camel_case",
        "tests/test_kebabize.py::test_two_words",
    ]


def test_an_eval_never_publishes(
    built: Built, compared: tuple[subprocess.CompletedProcess[str], Path]
) -> None:
    done, _ = compared
    name = re.search(r"local forge as (\S+)", done.stdout)
    assert name is not None
    forge = LocalForge(built.root / "forge")
    assert forge.list_prs(name.group(1)) == []
    branches = subprocess.run(
        ["git", "for-each-ref", "--format=%(refname)", "refs/heads/"],
        cwd=forge.repo_path(name.group(1)),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert branches == ["refs/heads/main"]


def test_compare_writes_the_side_by_side_table_and_the_chart(
    compared: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    _, out = compared
    report = (out / "report.md").read_text()
    assert "## Side by side" in report
    assert (
        "| task | model=oracle: resolved | model=oracle: cost | model=null: resolved "
        "| model=null: cost |" in report
    )
    assert "| resolved | 6/6 | 0/6 |" in report
    chart = (out / "chart.png").read_bytes()
    assert chart.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(chart) > 5000


def table_rows(report: str) -> list[list[str]]:
    section = report.split("## Tasks", 1)[1].split("## Dropped", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("| ")][1:]
    return [[cell.strip() for cell in line.strip("|").split(" | ")] for line in lines]


def assert_report_matches_records(out: Path) -> None:
    rows = records(out / "results.jsonl")
    tasks = of_type(rows, "task")
    table = table_rows((out / "report.md").read_text())
    assert len(table) == len(tasks)
    for cells, record in zip(table, tasks, strict=True):
        assert cells[0] == record["instance_id"]
        assert cells[1] == record["variant"]
        assert cells[2] == ("yes" if record["resolved"] else "no")
        assert cells[6] == str(record["turns"])
        assert cells[7] == str(record["fix_rounds_spent"])
    for summary in of_type(rows, "summary"):
        mine = [t for t in tasks if t["variant"] == summary["variant"]]
        assert summary["tasks"] == len(mine)
        assert summary["resolved"] == sum(t["resolved"] for t in mine)


def test_the_report_matches_the_per_task_records(
    compared: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    assert_report_matches_records(compared[1])


def test_a_swe_bench_file_runs_and_bad_tasks_are_dropped_and_counted(built: Built) -> None:
    name = next((built.root / "forge" / "local").glob("*.git")).name.removesuffix(".git")
    repo = f"local/{name}"
    commits = built.commits
    first, second = (commits[c.subject] for c in fixture.CHANGES[:2])
    passing = commits[fixture.ALREADY_PASSING.subject]
    good = [
        fixture.swe_task(
            built.repo,
            repo,
            sha,
            FAIL_TO_PASS=json.dumps(ids),
            PASS_TO_PASS="[]",
        )
        for sha, ids in (
            (first, ["tests/test_kebabize.py::test_camel_case"]),
            (second, ["tests/test_constant.py::test_constant"]),
        )
    ]
    stale = fixture.swe_task(
        built.repo, repo, first, FAIL_TO_PASS=["tests/test_kebabize.py::test_camel_case"]
    )
    stale.update(
        instance_id="fixture__stale", base_commit="0123456789abcdef0123456789abcdef01234567"
    )
    already = fixture.swe_task(
        built.repo, repo, passing, FAIL_TO_PASS=["tests/test_ordinal_suffix.py::test_first"]
    )
    tasks_file = built.root / "tasks.jsonl"
    tasks_file.write_text(
        fixture.as_jsonl([good[0], '{"instance_id": "broken", ', good[1], stale, already])
    )
    out = built.root / "swe"
    done = built.agents(
        "eval", "--tasks", str(tasks_file), "--model", "oracle", "--workers", "1", "--out", str(out)
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = records(out / "results.jsonl")
    resolved = {r["instance_id"]: r["resolved"] for r in of_type(rows, "task")}
    assert resolved == {good[0]["instance_id"]: True, good[1]["instance_id"]: True}
    reasons = {d["instance_id"]: d["reason"] for d in of_type(rows, "dropped")}
    assert reasons["tasks.jsonl:2"].startswith("tasks.jsonl:2: not JSON")
    assert "is not in" in reasons["fixture__stale"]
    assert "already pass at the base commit" in reasons[str(already["instance_id"])]
    assert of_type(rows, "eval")[0] == {
        "type": "eval",
        "complete": True,
        "task_runs": 2,
        "expected": 2,
        "dropped": 3,
    }
    assert_report_matches_records(out)
    assert "3 task(s) dropped" in done.stdout
