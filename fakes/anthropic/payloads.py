"""The bodies the fake Messages API sends, shaped as the API reference shows them.

A scripted reply is the part a test cares about (content, stop reason, usage); the
envelope around it (``id``, ``type``, ``role``, ``model``, ``stop_sequence``) is added
here, and so is an error's (``type: error``, ``request_id``). The contract tests
(``tests/fakes/anthropic/test_contract.py``) hold both to the ``anthropic`` SDK's own
types, with no field more and none fewer.
"""

from __future__ import annotations

from typing import Any

REQUEST_ID = "req_fake"


def message_body(reply: dict[str, Any], *, number: int, model: str) -> dict[str, Any]:
    """A ``Message``: the scripted ``reply`` (content, stop_reason, usage) in its envelope."""
    return {
        "id": f"msg_fake_{number:03d}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "stop_sequence": None,
        **reply,
    }


def error_body(kind: str, message: str) -> dict[str, Any]:
    """An ``ErrorResponse``: ``{"type": "error", "error": {type, message}, request_id}``."""
    return {"type": "error", "error": {"type": kind, "message": message}, "request_id": REQUEST_ID}
