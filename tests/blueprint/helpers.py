"""Small helpers shared by the blueprint tests."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

from fakes.anthropic import message, text, tool_use


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


def commits(bare: Path, branch: str, base: str = "main") -> list[str]:
    """Commit messages on ``branch`` since ``base``, oldest first."""
    out = git(bare, "log", "--reverse", "--format=%B%x00", f"{base}..{branch}")
    return [m.strip() for m in out.split("\0") if m.strip()]


def verdict(kind: str, notes: str) -> dict[str, Any]:
    return message(tool_use("toolu_v", "verdict", {"verdict": kind, "notes": notes}))


def finish(summary: str, notes: str = "") -> dict[str, Any]:
    return message(tool_use("toolu_f", "finish", {"summary": summary, "notes_for_reviewer": notes}))


def write(path: str, content: str, note: str = "Writing it.") -> dict[str, Any]:
    return message(
        text(note), tool_use("toolu_w", "write_file", {"path": path, "content": content})
    )


def copy_sample(sample: Path, target: Path, extra: dict[str, str]) -> Path:
    """The sample repository plus ``extra`` files (path -> content)."""
    shutil.copytree(sample, target, ignore=shutil.ignore_patterns(".git", "__pycache__"))
    for name, content in extra.items():
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        (target / name).write_text(content)
    return target
