"""A fake of Anthropic's Messages API with scripted replies (see :mod:`fakes.anthropic.server`)."""

from fakes.anthropic.script import Disconnect, Failure, Reply, load_script, message, text, tool_use
from fakes.anthropic.server import FakeMessagesAPI, Received

__all__ = [
    "Disconnect",
    "Failure",
    "FakeMessagesAPI",
    "Received",
    "Reply",
    "load_script",
    "message",
    "text",
    "tool_use",
]
