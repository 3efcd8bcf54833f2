"""Figures the reliability tests measure, kept for `docs/reliability.md`.

A test that measures a whole figure calls `record` with one table; a module whose tests
each add rows to one figure collects them in a `Table`. The tables land in
``artifacts/reliability/<name>.json``; `tests.reliability.report` renders them into
the doc after the suite, so the doc always shows the figures of the last run.

Several modules may add rows to one figure, each as a *part* of it
(``Table(..., part="http")`` writes ``<name>--http.json``): the doc shows the figure
once, its parts' rows after the main table's, in the order of their part names.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIGURES_DIR = Path(os.environ.get("AGENTS_RELIABILITY_FIGURES", ROOT / "artifacts" / "reliability"))

Cell = str | int | float


def record(
    name: str,
    title: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Cell]],
    notes: str = "",
    order: int = 50,
    part: str = "",
) -> Path:
    """Write one table (or one ``part`` of it); a later call with the same name and part
    replaces it.

    `order` places the section in the doc (lower first); `notes` is markdown shown
    under the table.
    """
    if any(len(row) != len(columns) for row in rows):
        raise ValueError(f"{name}: every row needs {len(columns)} cells")
    FIGURES_DIR.mkdir(parents=True, exist_ok=True)
    path = FIGURES_DIR / (f"{name}--{part}.json" if part else f"{name}.json")
    payload = {
        "name": name,
        "part": part,
        "title": title,
        "columns": list(columns),
        "rows": [list(row) for row in rows],
        "notes": notes,
        "order": order,
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=2), encoding="utf-8")
    tmp.replace(path)
    return path


def load_all(directory: Path = FIGURES_DIR) -> list[dict[str, object]]:
    """Every table, its parts merged into it: title, columns and notes from the main
    table (or the first part), rows of the main table first, then of each part."""
    loaded = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(directory.glob("*.json"))]
    merged: dict[str, dict[str, Any]] = {}
    for table in sorted(loaded, key=lambda t: str(t.get("part", ""))):
        name = str(table["name"])
        if name not in merged:
            merged[name] = {**table, "rows": list(table["rows"])}
        else:
            merged[name]["rows"].extend(table["rows"])
    return sorted(merged.values(), key=lambda t: (int(t["order"]), str(t["name"])))


class Table:
    """The rows a test module collects for one figure, recorded once the module is done.

    A module makes one, registers :meth:`fixture` (``record_table = TABLE.fixture()``)
    and its tests call :meth:`add` once what a row says has been asserted. When the
    module's last test has run, the rows collected are recorded, whatever tests ran (a
    ``-k`` run records the rows of the tests it ran); no rows, no record.
    """

    def __init__(
        self,
        name: str,
        title: str,
        columns: Sequence[str],
        notes: str = "",
        order: int = 50,
        part: str = "",
    ) -> None:
        self.name = name
        self.part = part
        self.title = title
        self.columns = list(columns)
        self.notes = notes
        self.order = order
        self.rows: list[list[Cell]] = []

    def add(self, *cells: Cell) -> None:
        if len(cells) != len(self.columns):
            raise ValueError(f"{self.name}: every row needs {len(self.columns)} cells")
        self.rows.append(list(cells))

    def reset(self) -> None:
        self.rows.clear()

    def collected(self) -> list[list[Cell]]:
        """The rows to record (a subclass may build them from what it collected)."""
        return self.rows

    def record(self) -> Path | None:
        rows = self.collected()
        if not rows:
            return None
        return record(self.name, self.title, self.columns, rows, self.notes, self.order, self.part)

    def fixture(self) -> Any:
        """A module-scoped autouse fixture that records the table after the module."""

        @pytest.fixture(scope="module", autouse=True, name="figure_table")
        def recording() -> Iterator[Table]:
            self.reset()
            yield self
            self.record()

        return recording
