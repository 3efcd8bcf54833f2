"""The first and last lines of a command's output, for a message a person reads."""

from __future__ import annotations

#: Lines kept from each end, and characters per line.
LINES = 8
LINE_CHARS = 300


def output_ends(text: str, lines: int = LINES) -> str:
    """``text``'s first and last ``lines`` lines (each cut to :data:`LINE_CHARS`), with
    a marker saying how many were left out between them; "(no output)" when empty."""
    all_lines = [line.rstrip()[:LINE_CHARS] for line in text.strip().splitlines()]
    all_lines = [line for line in all_lines if line]
    if not all_lines:
        return "(no output)"
    if len(all_lines) <= 2 * lines:
        return "\n".join(all_lines)
    cut = len(all_lines) - 2 * lines
    return "\n".join([*all_lines[:lines], f"[... {cut} lines ...]", *all_lines[-lines:]])
