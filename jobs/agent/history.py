"""Keeping a long conversation inside the model's context window.

A pass that reads many files or runs many commands grows its prompt every turn, and
most of that is old tool output the model has already acted on. When the prompt
passes ``AgentConfig.context_tokens``, the loop replaces the output of every turn but
the newest few with a one-line note (and shortens the long arguments of old calls,
such as a whole file given to ``write_file``). The calls themselves stay, so the
model still knows what it did and can run a command again if it needs the output.

Elision is deterministic and only ever shortens history, so a replayed transcript
elides exactly as the recorded run did, and the prompt cache is rebuilt once per trim
rather than every turn.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from jobs.agent.limits import ProgressTracker
from process.exceptions import ContextWindowFull
from runs.events import ContextTrimmed, Event

ELIDED_RESULT = (
    "[output of an earlier turn, removed to keep the conversation within the context "
    "window; run the call again if you need it]"
)
ELIDED_ARGUMENT = "[long argument of an earlier turn, removed to save context]"
#: Arguments of old calls longer than this many characters are shortened.
LONG_ARGUMENT = 400


@dataclass(frozen=True)
class Trimmed:
    """What one trim removed: how many blocks it touched and how many characters."""

    blocks: int
    chars: int


def trim_history(messages: list[dict[str, Any]], *, keep_turns: int) -> Trimmed:
    """Elide tool output and long call arguments older than the last ``keep_turns``
    turns: ``messages`` (the list) is updated in place, with new messages, content
    lists and blocks where something was cut. The first message (the task) is never
    touched. Blocks already elided are skipped, so trimming twice removes nothing the
    second time."""
    turn_starts = [
        index
        for index, message in enumerate(messages)
        if index > 0 and message["role"] == "assistant"
    ]
    if len(turn_starts) <= keep_turns:
        return Trimmed(0, 0)
    cutoff = turn_starts[-keep_turns] if keep_turns else len(messages)
    blocks = chars = 0
    for position in range(1, cutoff):
        content = messages[position]["content"]
        if not isinstance(content, list):
            continue
        kept: list[dict[str, Any]] = []
        for block in content:
            shorter, saved = _elided(block)
            kept.append(shorter)
            if saved:
                blocks += 1
                chars += saved
        if kept != content:
            # A new message, list and blocks, never an edit of the old ones: they may
            # be shared (a replayed transcript's response, a checkpoint's copy).
            messages[position] = {**messages[position], "content": kept}
    return Trimmed(blocks, chars)


def _elided(block: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """``block`` shortened, and the number of characters it lost (0: unchanged)."""
    if block.get("type") == "tool_result":
        before = _size(block.get("content"))
        if block.get("content") == ELIDED_RESULT or before <= len(ELIDED_RESULT):
            return block, 0
        return {**block, "content": ELIDED_RESULT}, before - len(ELIDED_RESULT)
    if block.get("type") == "tool_use" and isinstance(block.get("input"), dict):
        arguments = dict(block["input"])
        saved = 0
        for key, value in arguments.items():
            if isinstance(value, str) and len(value) > LONG_ARGUMENT:
                arguments[key] = ELIDED_ARGUMENT
                saved += len(value) - len(ELIDED_ARGUMENT)
        return ({**block, "input": arguments}, saved) if saved else (block, 0)
    return block, 0


def _size(content: Any) -> int:
    if isinstance(content, str):
        return len(content)
    if isinstance(content, list):
        return sum(len(str(part.get("text", ""))) for part in content if isinstance(part, dict))
    return 0


class ConversationHistory:
    """A pass's conversation, kept inside the context window.

    A soft trim (the prompt passed ``context_tokens``) keeps the newest ``keep_turns``
    turns whole and happens at most once per ``keep_turns`` turns, so the prompt cache
    is rewritten from the cut only that often. A hard one (the API refused the prompt)
    keeps only the newest turn, and stops the pass if nothing is left to remove.
    """

    def __init__(
        self,
        messages: list[dict[str, Any]],
        on_event: Callable[[Event], None],
        by: str,
        progress: ProgressTracker,
        keep_turns: int,
    ) -> None:
        self.messages = messages
        self.on_event = on_event
        self.by = by
        self.progress = progress
        self.keep_turns = keep_turns
        self.trimmed_at: int | None = None

    def trim(self, turn: int) -> None:
        if self.trimmed_at is None or turn - self.trimmed_at >= self.keep_turns:
            self._trim(self.keep_turns, turn)

    def make_room(self, why: str, turn: int) -> None:
        if not self._trim(1, turn).blocks:
            raise ContextWindowFull(
                f"the conversation no longer fits the model's context window ({why}), even "
                "with old tool output removed; split the request into smaller ones"
            )

    def _trim(self, keep_turns: int, turn: int) -> Trimmed:
        trimmed = trim_history(self.messages, keep_turns=keep_turns)
        if trimmed.blocks:
            self.trimmed_at = turn
            self.progress.forget()  # re-reading what was cut is progress, not a loop
            self.on_event(
                ContextTrimmed(
                    by=self.by,
                    blocks=trimmed.blocks,
                    chars=trimmed.chars,
                    text=f"removed {trimmed.blocks} old tool outputs and call arguments "
                    f"({trimmed.chars:,} characters) to stay within the context window",
                )
            )
        return trimmed
