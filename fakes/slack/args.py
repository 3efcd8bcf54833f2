"""A Web API method's arguments, read and checked the way Slack does.

Slack takes arguments from the query string, a form body or a JSON body, and is lenient
about their types (``"true"`` is a boolean, a number may be a string). It answers bad
ones with ``{"ok": false, "error": ...}`` and, for blocks, ``response_metadata.messages``
naming the JSON pointer at fault; :class:`ApiError` carries that answer out of a method.
The checks every method shares (the channel, the message, the text and its blocks) are
here, so each method module only says what is particular to it.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from fakes.slack import validate
from fakes.slack.objects import Channel, Message, random_block_id
from fakes.slack.state import Workspace

Json = dict[str, Any]

MISSING_TEXT = "missing_text_or_fallback_or_attachments"


class ApiError(Exception):
    """A method's ``{"ok": false, "error": ...}`` answer."""

    def __init__(
        self,
        error: str,
        *,
        status: int = 200,
        extra: Json | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(error)
        self.error = error
        self.status = status
        self.extra = extra or {}
        self.headers = headers or {}


class Args:
    """Arguments from a query string, a form body or a JSON body, read leniently like Slack."""

    def __init__(self, data: Json) -> None:
        self.data = data

    def get_str(self, name: str, *, required: bool = False, error: str = "") -> str | None:
        value = self.data.get(name)
        if value is None or value == "":
            if required:
                raise ApiError(error or "invalid_arguments", extra=missing(name))
            return None
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return repr(value) if isinstance(value, float) else str(value)
        if not isinstance(value, str):
            raise ApiError("invalid_arguments", extra=error_messages([f"{name} must be a string"]))
        return value

    def get_bool(self, name: str, default: bool = False) -> bool:
        value = self.data.get(name)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        return str(value).lower() in ("1", "true", "yes")

    def get_int(self, name: str, default: int) -> int:
        value = self.data.get(name)
        if value is None or value == "":
            return default
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ApiError(
                "invalid_arguments", extra=error_messages([f"{name} must be an integer"])
            ) from None

    def get_json(self, name: str, *, error: str) -> Any:
        """A structured argument: JSON in a JSON body, a JSON-encoded string in a form."""
        value = self.data.get(name)
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                raise ApiError(error, extra=error_messages([f"{name} is not valid JSON"])) from None
        return value


def error_messages(messages: list[str]) -> Json:
    return {"response_metadata": {"messages": [f"[ERROR] {m}" for m in messages]}}


def missing(name: str) -> Json:
    return error_messages([f"missing required field: {name}"])


def ensure_ids(blocks: list[Json]) -> list[Json]:
    """What Slack stores: every block gets a ``block_id``, every interactive element an
    ``action_id``, generated when the sender left them out."""
    out = copy.deepcopy(blocks)
    for block in out:
        if not isinstance(block, dict):
            continue
        block.setdefault("block_id", random_block_id())
        elements: list[Any] = []
        if isinstance(block.get("elements"), list) and block.get("type") == "actions":
            elements = block["elements"]
        for key in ("accessory", "element"):
            if isinstance(block.get(key), dict):
                elements.append(block[key])
        for element in elements:
            if isinstance(element, dict) and element.get("type") != "image":
                element.setdefault("action_id", random_block_id())
    return out


def str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def decoded(data: Json) -> Json:
    """Arguments as the bot meant them: JSON-encoded form fields decoded."""
    out: Json = {}
    for key, value in data.items():
        if key in ("blocks", "attachments", "view", "metadata") and isinstance(value, str):
            try:
                out[key] = json.loads(value)
                continue
            except ValueError:
                pass
        out[key] = value
    return out


def channel_arg(ws: Workspace, a: Args, name: str = "channel") -> Channel:
    ref = a.get_str(name)
    channel = ws.resolve_channel(ref) if ref else None
    if channel is None:
        raise ApiError("channel_not_found")
    return channel


def message_arg(ws: Workspace, channel: Channel, ts: str | None) -> Message:
    message = ws.find_message(channel.id, ts) if ts else None
    if message is None:
        raise ApiError("message_not_found")
    return message


def content(
    ws: Workspace, a: Args, method: str, warnings: list[str], *, required: bool = True
) -> tuple[str | None, list[Json] | None, list[Json] | None]:
    """``text``, ``blocks`` and ``attachments``, validated like Slack does."""
    text = a.get_str("text")
    blocks = None
    if a.data.get("blocks") is not None:
        raw = a.get_json("blocks", error="invalid_blocks_format")
        if not isinstance(raw, list):
            raise ApiError(
                "invalid_blocks_format", extra=error_messages(["blocks must be an array"])
            )
        errors = validate.validate_message_blocks(raw)
        if errors:
            ws.warn(f"{method}: invalid_blocks: " + "; ".join(errors))
            raise ApiError(
                "invalid_blocks",
                extra={"errors": errors, **error_messages(errors)},
            )
        blocks = ensure_ids(raw)
    attachments = None
    if a.data.get("attachments") is not None:
        raw = a.get_json("attachments", error="invalid_attachments")
        if not isinstance(raw, list):
            raise ApiError("invalid_attachments")
        attachments = raw
    if text is not None and len(text) > validate.MAX_MESSAGE_TEXT:
        raise ApiError("msg_too_long")
    has_text = text is not None and text.strip() != ""
    if required and not has_text and not blocks and not attachments:
        raise ApiError("no_text")
    if not has_text and (blocks or attachments):
        warnings.append(MISSING_TEXT)
        ws.warn(
            f"{method}: blocks without a top-level text fallback ({MISSING_TEXT}); "
            "notifications and screen readers show nothing"
        )
    return text, blocks, attachments
