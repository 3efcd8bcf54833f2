"""Dependencies point one way: cli -> bot -> jobs -> sandboxes -> core."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

FORBIDDEN: dict[str, set[str]] = {
    "core": {"cli", "bot", "jobs", "sandboxes", "slack_bolt", "slack_sdk", "anthropic", "docker"},
    "sandboxes": {"cli", "bot", "jobs", "slack_bolt", "slack_sdk", "anthropic"},
    # The brain reaches Docker only through sandboxes/.
    "jobs": {"cli", "bot", "slack_bolt", "slack_sdk", "docker"},
    # The surface holds Slack tokens only: no model, forge or Docker clients.
    "bot": {"cli", "anthropic", "github", "docker"},
}


def imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_only_downward(package: str) -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(imported_roots(path) & FORBIDDEN[package])
        for path in (ROOT / package).rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}
