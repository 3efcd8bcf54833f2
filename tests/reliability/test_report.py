"""The reliability page's CI-time table: measured from `.ci/run`'s start, judged against
the 10-minute target, and absent when the report runs outside CI."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.reliability import figures, report


@pytest.fixture
def figures_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(figures, "FIGURES_DIR", tmp_path)
    return tmp_path


def test_a_long_ci_run_is_reported_as_missed(figures_dir: Path) -> None:
    report.record_ci_time(str(int(time.time()) - 725))
    (table,) = figures.load_all(figures_dir)
    assert table["name"] == "ci-time"
    (row,) = table["rows"]  # type: ignore[misc]
    assert row[2] in {"12 min 05 s", "12 min 06 s"}
    assert row[4] == "**missed**"
    assert "## Fresh-clone CI time" in report.render([table])


def test_a_short_ci_run_meets_the_target(figures_dir: Path) -> None:
    report.record_ci_time(str(int(time.time()) - 540))
    (table,) = figures.load_all(figures_dir)
    assert table["rows"][0][4] == "met"  # type: ignore[index]


@pytest.mark.parametrize("started", [None, "", "soon"])
def test_outside_ci_nothing_is_recorded(figures_dir: Path, started: str | None) -> None:
    report.record_ci_time(started)
    assert figures.load_all(figures_dir) == []
