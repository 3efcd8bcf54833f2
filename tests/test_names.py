"""One name means one thing: public names are unique across the product, and each
setting is declared once."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from collections import defaultdict
from pathlib import Path

from pydantic import BaseModel

from process import settings

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("process", "runs", "sandboxes", "jobs", "bot", "cli")
#: Names every module of a kind defines on purpose: the hook a listener or command
#: module registers itself with, a command's handler, a runnable module's entry point.
PROTOCOL = {"register", "handle", "main"}
#: The repository's own file (``.agents.yml``) has keys named like the settings they
#: ask to tighten (``fix_rounds``, ``escalation``...): a request, clamped to the setting.
REPOSITORY_FILE = "jobs.repo_config"


def public_definitions() -> dict[str, list[str]]:
    found: dict[str, list[str]] = defaultdict(list)
    for package in PRODUCT:
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.parse(path.read_text()).body:
                definition = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef
                if isinstance(node, definition) and not node.name.startswith("_"):
                    found[node.name].append(str(path.relative_to(ROOT)))
    return found


def test_no_two_product_definitions_share_a_public_name() -> None:
    twice = {
        name: places
        for name, places in public_definitions().items()
        if len(places) > 1 and name not in PROTOCOL
    }
    assert twice == {}


def product_models() -> list[type[BaseModel]]:
    """Every pydantic model the product defines (settings, sections, configs, records)."""
    for package in PRODUCT:
        module = importlib.import_module(package)
        for info in pkgutil.walk_packages(module.__path__, prefix=f"{package}."):
            if not info.name.endswith("__main__"):
                importlib.import_module(info.name)
    seen: dict[str, type[BaseModel]] = {}
    stack: list[type[BaseModel]] = [BaseModel]
    while stack:
        for sub in stack.pop().__subclasses__():
            stack.append(sub)
            if sub.__module__.split(".")[0] in PRODUCT:
                seen[f"{sub.__module__}.{sub.__qualname__}"] = sub
    return list(seen.values())


def declarations(names: set[str], models: list[type[BaseModel]]) -> dict[str, list[str]]:
    """For each name, the models that declare it themselves (not by inheriting it)."""
    found: dict[str, list[str]] = defaultdict(list)
    for model in models:
        if model.__module__ == REPOSITORY_FILE:
            continue
        for name in vars(model).get("__annotations__", {}):
            if name in names:
                found[name].append(f"{model.__module__}.{model.__qualname__}")
    return found


def setting_names() -> set[str]:
    return {name for cls in settings.ROLES.values() for name in cls.model_fields}


def test_each_setting_is_declared_once() -> None:
    where = declarations(setting_names(), product_models())
    assert {name: places for name, places in where.items() if len(places) != 1} == {}
    assert set(where) == setting_names()


def test_a_setting_declared_again_is_caught() -> None:
    class Elsewhere(BaseModel):
        max_turns: int = 40  # the worker's AGENTS_MAX_TURNS, declared a second time

    where = declarations(setting_names(), [*product_models(), Elsewhere])
    assert len(where["max_turns"]) == 2


def test_a_part_reads_a_section_by_the_settings_names() -> None:
    worker = settings.WorkerSettings(
        model_backend="replay", forge="local", max_turns=7, model_builder="claude-x"
    )
    assert settings.AgentLimits.of(worker).max_turns == 7
    assert settings.ModelRoles.of(worker).for_role("builder") == "claude-x"
