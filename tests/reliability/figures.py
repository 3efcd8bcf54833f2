"""Figures the reliability tests measure, kept for `docs/reliability.md`.

Each test that produces a figure calls `record` with one table. The tables land in
``artifacts/reliability/<name>.json``; `tests.reliability.report` renders them into
the doc after the suite, so the doc always shows the figures of the last run.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

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
) -> Path:
    """Write one table; a later call with the same name replaces it.

    `order` places the section in the doc (lower first); `notes` is markdown shown
    under the table.
    """
    if any(len(row) != len(columns) for row in rows):
        raise ValueError(f"{name}: every row needs {len(columns)} cells")
    FIGURES_DIR.mkdir(parents=True, exist_ok=True)
    path = FIGURES_DIR / f"{name}.json"
    payload = {
        "name": name,
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
    tables = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(directory.glob("*.json"))]
    return sorted(tables, key=lambda t: (int(t["order"]), str(t["name"])))
