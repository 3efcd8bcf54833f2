"""Every Slack payload is made storable before any listener sees it.

JSON may carry a lone surrogate (``"\\ud800"``) or a NUL, and Python keeps them in a
``str``; Redis, pydantic's JSON and a subprocess argument (a git commit message) then
refuse the string, in the middle of creating a run. So a bolt middleware rewrites every
string of the payload in place first: a lone surrogate becomes U+FFFD (the replacement
character), and a NUL or other control character (tabs and line breaks aside) goes.
The same holds in Socket Mode and in HTTP mode, and bolt's signature check has seen the
raw body before this runs.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from slack_bolt import BoltRequest, BoltResponse

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_text(text: str) -> str:
    """``text`` with lone surrogates replaced and control characters removed."""
    if not text.isascii():
        text = _SURROGATE.sub("\ufffd", text)
    return _CONTROL.sub("", text)


def clean(value: Any) -> Any:
    """``value`` (a parsed payload) with every string cleaned, dicts and lists in place."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        for key in list(value):
            cleaned_key = clean_text(key) if isinstance(key, str) else key
            item = clean(value.pop(key)) if cleaned_key != key else clean(value[key])
            value[cleaned_key] = item
        return value
    if isinstance(value, list):
        value[:] = [clean(item) for item in value]
        return value
    return value


def clean_payload(
    req: BoltRequest, resp: BoltResponse, next: Callable[[], BoltResponse]
) -> BoltResponse:
    """The bolt middleware: clean ``req.body`` in place, then go on."""
    clean(req.body)
    return next()
