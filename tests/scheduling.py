"""Which pytest-xdist worker runs what, and in which order (``make pytest``: ``-n`` with
``--dist loadgroup``).

A module's tests stay on one worker: module-scoped fixtures are made once, and a
reliability figure's table is collected whole. The environment modules
(tests/environments/) share one group: they build, list and remove environment images,
and `agents env rm --repo` acts on the whole engine. Every other module, Docker ones
included, runs beside the rest: each names its own containers, networks, stores and
egress proxy. What cannot share the machine at all is marked ``serial`` and runs alone
after.

The groups are handed out longest first, by the seconds each took in a measured run
(``durations.json`` beside this file): a group started late, such as the soak, would
keep one worker busy after the others are done. A group not measured yet goes first if
it holds a ``slow`` test (its length is unknown; starting it early is the safe guess)
and last otherwise. pytest-xdist would reorder the groups by their number of tests, so
that is turned off (:func:`keep_order`).

``make durations`` refreshes the table from the last ``make pytest``'s JUnit report:

    python -m tests.scheduling .venv/junit.xml
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

import defusedxml.ElementTree as SafeET
import pytest

DURATIONS = Path(__file__).with_name("durations.json")
#: Groups measured shorter than this are left out of the table: their order hardly
#: matters, and the table stays short enough to read in a diff.
SHORTEST = 5.0


def group_of(module: str) -> str:
    """The xdist group of a test module, by its dotted name."""
    return "environments" if module.startswith("tests.environments.") else module


def load_durations(path: Path = DURATIONS) -> dict[str, float]:
    """Seconds per group from the table; empty if there is none."""
    try:
        found = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    return {str(group): float(seconds) for group, seconds in found.items()}


def order(items: list[pytest.Item], durations: dict[str, float]) -> None:
    """Mark each item with its group and sort the items longest group first (stable)."""
    groups = {item: group_of(item.module.__name__) for item in items}
    for item, group in groups.items():
        item.add_marker(pytest.mark.xdist_group(group))
    slow = {groups[item] for item in items if item.get_closest_marker("slow")}
    seconds = {group: expected_seconds(group, durations, slow) for group in set(groups.values())}
    items.sort(key=lambda item: -seconds[groups[item]])


def expected_seconds(group: str, durations: dict[str, float], slow: set[str]) -> float:
    """How long a group is taken to be: as measured; if not measured, longer than any
    measured one when it holds a ``slow`` test, else none at all."""
    if group in durations:
        return durations[group]
    return max(durations.values(), default=0.0) + 1.0 if group in slow else 0.0


def keep_order(config: pytest.Config) -> None:
    """Turn off pytest-xdist's reordering of groups by their number of tests (on by
    default), which would undo :func:`order`."""
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False


def measured(junit_xml: Path) -> dict[str, float]:
    """Seconds per group in a JUnit report (a test's time there includes its setup and
    teardown), the groups of at least :data:`SHORTEST` seconds, longest first."""
    totals: dict[str, float] = {}
    for case in SafeET.parse(junit_xml).getroot().iter("testcase"):
        parts = case.get("classname", "").split(".")
        while parts and not parts[-1].startswith("test_"):
            parts.pop()  # a test class: its module is the group
        if not parts:
            continue
        group = group_of(".".join(parts))
        totals[group] = totals.get(group, 0.0) + float(case.get("time") or 0.0)
    kept = {group: round(seconds) for group, seconds in totals.items() if seconds >= SHORTEST}
    return dict(sorted(kept.items(), key=lambda pair: (-pair[1], pair[0])))


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m tests.scheduling JUNIT_XML", file=sys.stderr)
        return 2
    report = Path(args[0])
    if not report.is_file():
        print(f"{report}: no JUnit report; run `make pytest` first", file=sys.stderr)
        return 1
    table = measured(report)
    DURATIONS.write_text(json.dumps(table, indent=1) + "\n")
    print(f"{DURATIONS}: {len(table)} groups, {sum(table.values())} s in all")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
