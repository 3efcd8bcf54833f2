"""docs/architecture.md is a map: every file and directory it names must exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "architecture.md"
#: Paths the page names, in backticks, under the project's packages.
NAMED = re.compile(r"`((?:process|runs|sandboxes|jobs|bot|cli|fakes|tests|docs)/[^`\s]*)`")


def test_every_path_the_architecture_page_names_exists() -> None:
    named = sorted(set(NAMED.findall(PAGE.read_text())))
    assert len(named) > 40
    missing = [path for path in named if "<" not in path and not (ROOT / path).exists()]
    assert missing == []
