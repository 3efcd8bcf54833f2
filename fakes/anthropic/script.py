"""What the fake Messages API answers, in order: a test's script of replies.

A reply is an assistant message's body (:func:`message`, with :func:`text` and
:func:`tool_use` blocks), a :class:`Failure` (an error status and type) or a
:class:`Disconnect`. :func:`load_script` reads one from JSON, for
``python -m cli.record_agent --script``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Block = dict[str, Any]


@dataclass(frozen=True)
class Failure:
    """An error response, e.g. ``Failure(429, "rate_limit_error", headers={...})``."""

    status: int
    error_type: str
    message: str = "scripted failure"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Disconnect:
    """Close the connection without answering, as a network failure would."""


Reply = dict[str, Any] | Failure | Disconnect


def text(value: str) -> Block:
    return {"type": "text", "text": value}


def tool_use(id: str, name: str, input: dict[str, Any]) -> Block:
    return {"type": "tool_use", "id": id, "name": name, "input": input}


def message(
    *content: Block,
    stop_reason: str | None = None,
    input_tokens: int = 100,
    output_tokens: int = 20,
    cache_read_tokens: int = 0,
    cache_write_tokens: int = 0,
) -> dict[str, Any]:
    """A reply body. The stop reason defaults to ``tool_use`` if it calls tools."""
    if stop_reason is None:
        calls = any(block.get("type") == "tool_use" for block in content)
        stop_reason = "tool_use" if calls else "end_turn"
    return {
        "content": list(content),
        "stop_reason": stop_reason,
        "usage": {
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "cache_read_input_tokens": cache_read_tokens,
            "cache_creation_input_tokens": cache_write_tokens,
        },
    }


def load_script(path: Path) -> list[Reply]:
    """Replies from a JSON file: a list of reply bodies (as :func:`message` makes them),
    ``{"status": 429, "error_type": "rate_limit_error", ...}`` failures, or
    ``{"disconnect": true}``."""
    replies: list[Reply] = []
    for item in json.loads(path.read_text(encoding="utf-8")):
        if "status" in item:
            replies.append(Failure(**item))
        elif item.get("disconnect"):
            replies.append(Disconnect())
        else:
            replies.append(item)
    return replies
