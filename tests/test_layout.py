"""Dependencies point one way: cli -> bot -> jobs -> sandboxes -> runs -> process.

``fakes`` (the Slack emulator, the fake GitHub, the fake Messages API) stand in for the
outside world: the tests and the CLI's wiring (``agents demo``, the transcript
recorders) import them, and no product package does.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

FAKES = "fakes"
FORBIDDEN: dict[str, set[str]] = {
    "process": {"cli", "bot", "jobs", "sandboxes", "runs", FAKES, "slack_bolt", "slack_sdk"}
    | {"anthropic", "docker", "github", "rq"},
    "runs": {"cli", "bot", "jobs", "sandboxes", FAKES, "slack_bolt", "slack_sdk", "anthropic"}
    | {"docker", "github"},
    "sandboxes": {"cli", "bot", "jobs", FAKES, "slack_bolt", "slack_sdk", "anthropic", "github"},
    # The brain reaches Docker only through sandboxes/.
    "jobs": {"cli", "bot", FAKES, "slack_bolt", "slack_sdk", "docker"},
    # The surface holds Slack tokens only: no model, forge or Docker clients.
    "bot": {"cli", FAKES, "anthropic", "github", "docker"},
    # The fakes imitate services; they lean on nothing of the product they stand in for
    # but the context-manager protocol, so a bug in the product cannot hide in a fake.
    FAKES: {"cli", "bot", "jobs", "sandboxes", "runs"},
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


#: Modules outside those packages that one role runs without the other's package: the
#: worker command serves ``/healthz`` and ``/metrics`` from ``process.endpoints`` and
#: ``jobs.metrics``, never from the Slack surface.
FORBIDDEN_FILES: dict[str, set[str]] = {
    "cli/commands/worker.py": {"bot", "slack_bolt", "slack_sdk", FAKES},
    "cli/commands/bot.py": {FAKES},
    "cli/commands/run.py": {FAKES},
    "cli/main.py": {FAKES},
    "process/endpoints.py": {"rq", "jobs", "bot", "slack_bolt", "slack_sdk"},
}


@pytest.mark.parametrize("module", sorted(FORBIDDEN_FILES))
def test_module_does_not_import(module: str) -> None:
    assert sorted(imported_roots(ROOT / module) & FORBIDDEN_FILES[module]) == []


def test_imported_roots_sees_imports_inside_functions(tmp_path: Path) -> None:
    """The worker command imports lazily, inside functions: those count too."""
    module = tmp_path / "lazy.py"
    module.write_text("def handle() -> None:\n    from bot.metrics import metrics_app\n")
    assert imported_roots(module) == {"bot"}
