"""What a Slack client does to typed text, and the ``rich_text`` blocks it attaches.

A person types ``@agents fix <this> & that https://x.test``; the bot receives
``<@U_BOT> fix &lt;this&gt; &amp; that <https://x.test>``. :func:`client_format`
does that conversion for the web page's composer; :func:`link_names` is the light
version for the Python API, where tests already write Slack's wire format.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping
from typing import Any

Json = dict[str, Any]

_CONTROL = re.compile(r"<([^<>]*)>")
_URL = re.compile(r"https?://[^\s<>]+[^\s<>.,;:!?)\]'\"]")
_AT = re.compile(r"(?<![\w<@])@([A-Za-z0-9._-]+)")
_HASH = re.compile(r"(?<![\w<#&])#([a-z0-9_-]+)")


def escape(text: str) -> str:
    """Slack's three entities: ``&``, ``<`` and ``>``."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _names(
    text: str,
    users: Mapping[str, str],
    channels: Mapping[str, str],
) -> str:
    def at(match: re.Match[str]) -> str:
        name = match.group(1).rstrip(".")
        rest = match.group(1)[len(name) :]
        if name in ("here", "channel", "everyone"):
            return f"<!{name}>{rest}"
        user_id = users.get(name)
        return f"<@{user_id}>{rest}" if user_id else match.group(0)

    def hash_(match: re.Match[str]) -> str:
        channel_id = channels.get(match.group(1))
        return f"<#{channel_id}|{match.group(1)}>" if channel_id else match.group(0)

    return _HASH.sub(hash_, _AT.sub(at, text))


def _outside_controls(text: str, convert: Callable[[str], str]) -> str:
    """Apply ``convert`` to the parts of ``text`` that are not ``<...>`` sequences."""
    out: list[str] = []
    pos = 0
    for match in _CONTROL.finditer(text):
        out.append(convert(text[pos : match.start()]))
        out.append(match.group(0))
        pos = match.end()
    out.append(convert(text[pos:]))
    return "".join(out)


def link_names(text: str, users: Mapping[str, str], channels: Mapping[str, str]) -> str:
    """``@name`` and ``#channel`` to Slack's ``<@U…>`` / ``<#C…|name>``; the rest untouched."""
    return _outside_controls(text, lambda part: _names(part, users, channels))


def client_format(text: str, users: Mapping[str, str], channels: Mapping[str, str]) -> str:
    """Typed text as a Slack client sends it: escaped, with mentions and links encoded."""
    escaped = escape(text)

    def links(part: str) -> str:
        pieces: list[str] = []
        pos = 0
        for match in _URL.finditer(part):
            pieces.append(_names(part[pos : match.start()], users, channels))
            pieces.append(f"<{html.unescape(match.group(0))}>")
            pos = match.end()
        pieces.append(_names(part[pos:], users, channels))
        return "".join(pieces)

    return links(escaped)


def mentioned_users(text: str) -> list[str]:
    """User ids mentioned as ``<@U…>`` (or ``<@U…|name>``), in order."""
    found: list[str] = []
    for match in _CONTROL.finditer(text):
        body = match.group(1)
        if body.startswith("@"):
            user_id = body[1:].split("|", 1)[0]
            if user_id not in found:
                found.append(user_id)
    return found


def rich_text_blocks(text: str, block_id: str) -> list[Json]:
    """The ``rich_text`` block a Slack client attaches to a typed message."""
    elements: list[Json] = []

    def plain(part: str) -> None:
        if part:
            elements.append({"type": "text", "text": html.unescape(part)})

    pos = 0
    for match in _CONTROL.finditer(text):
        plain(text[pos : match.start()])
        pos = match.end()
        body = match.group(1)
        target, _, label = body.partition("|")
        if target.startswith("@"):
            elements.append({"type": "user", "user_id": target[1:]})
        elif target.startswith("#"):
            elements.append({"type": "channel", "channel_id": target[1:]})
        elif target.startswith("!"):
            elements.append({"type": "broadcast", "range": target[1:]})
        else:
            link: Json = {"type": "link", "url": target}
            if label:
                link["text"] = label
            elements.append(link)
    plain(text[pos:])
    return [
        {
            "type": "rich_text",
            "block_id": block_id,
            "elements": [{"type": "rich_text_section", "elements": elements}],
        }
    ]
