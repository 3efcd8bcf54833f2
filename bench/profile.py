"""cProfile a hop that missed its target, and keep the few lines that say why."""

from __future__ import annotations

import cProfile
import io
import pstats
from collections.abc import Callable
from typing import Any


def top(fn: Callable[[], Any], *, repeat: int = 20, lines: int = 12) -> str:
    """The top ``lines`` functions by cumulative time over ``repeat`` calls of ``fn``,
    as a fenced block for the report."""
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(repeat):
        fn()
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.strip_dirs().sort_stats("cumulative").print_stats(lines)
    text = out.getvalue()
    body = text[text.find("ncalls") :] if "ncalls" in text else text
    return "```\n" + body.rstrip() + "\n```"
