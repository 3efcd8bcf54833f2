"""What tests look at: messages and threads, edits, reactions, views, API calls, warnings.

Every read takes the workspace's lock and returns copies in the Web API's JSON shapes,
so a test sees what the bot would see by reading the API, and cannot change the
workspace by accident. :meth:`Looks.wait_for` waits on the workspace's change
notification instead of sleeping.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from fakes.slack.base import EmulatorBase
from fakes.slack.objects import Edit, View
from fakes.slack.webapi import ApiCall

Json = dict[str, Any]
T = TypeVar("T")


class Looks(EmulatorBase):
    """Read-only views of the workspace, and the Web API's fault switches."""

    def messages(self, channel: str) -> list[Json]:
        """Top-level messages of ``channel`` (and thread broadcasts), oldest first."""
        with self.ws.lock:
            chan = self._channel(channel)
            return [
                self.ws.message_json(m)
                for m in self.ws.messages[chan.id]
                if m.thread_ts is None or m.reply_broadcast
            ]

    def thread(self, channel: str, ts: str) -> list[Json]:
        """A thread: its parent, then the replies, oldest first."""
        with self.ws.lock:
            chan = self._channel(channel)
            root = self.ws.find_message(chan.id, ts)
            if root is None:
                raise LookupError(f"no message {ts} in {chan.id}")
            root = self.ws.find_message(chan.id, root.root_ts) or root
            replies = self.ws.replies(chan.id, root.ts)
            return [self.ws.message_json(m) for m in [root, *replies]]

    def message(self, channel: str, ts: str) -> Json | None:
        with self.ws.lock:
            message = self.ws.find_message(self._channel(channel).id, ts)
            return self.ws.message_json(message) if message else None

    def edits(self, channel: str, ts: str) -> list[Edit]:
        """Earlier versions of an edited message, oldest first."""
        with self.ws.lock:
            message = self.ws.find_message(self._channel(channel).id, ts)
            if message is None:
                raise LookupError(f"no message {ts} in {channel}")
            return list(message.edits)

    def reactions(self, channel: str, ts: str) -> dict[str, list[str]]:
        """``{emoji name: [user ids]}`` on a message."""
        with self.ws.lock:
            message = self.ws.find_message(self._channel(channel).id, ts)
            if message is None:
                raise LookupError(f"no message {ts} in {channel}")
            return {name: list(users) for name, users in message.reactions.items()}

    def ephemerals(self, user: str | None = None) -> list[Json]:
        """Ephemeral messages (to ``user``, or to anyone), oldest first."""
        with self.ws.lock:
            ws = self.ws
            return [
                e.to_api(ws.bot_user_id, ws.bot_id, ws.app_id)
                for e in ws.ephemerals
                if user is None or e.user == user
            ]

    def views(self, user: str | None = None, *, open_only: bool = False) -> list[Json]:
        """Views the bot opened or published, as the API returns them, oldest first."""
        with self.ws.lock:
            return [
                v.to_api()
                for v in self.ws.views.values()
                if (user is None or v.user == user) and (v.is_open or not open_only)
            ]

    def view(self, view_id: str) -> View:
        """The emulator's record of a view: ``.is_open``, ``.errors``, ``.values``..."""
        with self.ws.lock:
            view = self.ws.views.get(view_id)
            if view is None:
                raise LookupError(f"no view {view_id}")
            return view

    def modal(self, user: str) -> Json | None:
        """The modal ``user`` is looking at (top of their stack), if any."""
        with self.ws.lock:
            stack = self.ws.modal_stacks.get(user, [])
            return self.ws.views[stack[-1]].to_api() if stack else None

    def home(self, user: str) -> Json | None:
        with self.ws.lock:
            view = self.ws.views.get(self.ws.home_views.get(user, ""))
            return view.to_api() if view else None

    def calls(self, method: str | None = None) -> list[ApiCall]:
        """Web API calls the bot made (all, or of ``method``), in arrival order."""
        with self.ws.lock:
            return [c for c in self.api.calls if method is None or c.method == method]

    @property
    def warnings(self) -> list[str]:
        """What Slack would have shrugged at but a reviewer should not: missing text
        fallbacks, invalid blocks, slow or failed acks, unknown methods..."""
        with self.ws.lock:
            return list(self.ws.warnings)

    def fail_next(
        self,
        method: str,
        *,
        error: str | None = None,
        status: int | None = None,
        retry_after: float | None = None,
        count: int = 1,
        drop: bool = False,
    ) -> None:
        """Make the next ``count`` calls of ``method`` (``"*"``: any) fail: with
        ``status=429`` (``Retry-After: retry_after``, default 1), a 5xx, an
        ``error`` code with HTTP 200, or ``drop=True`` (close without an answer)."""
        self.api.fail_next(
            method, error=error, status=status, retry_after=retry_after, count=count, drop=drop
        )

    def rate_limit(
        self, method: str, *, per_seconds: float = 1.0, burst: int = 1, by_channel: bool = True
    ) -> None:
        """Answer 429 when ``method`` is called faster than ``burst`` per ``per_seconds``."""
        self.api.rate_limit(method, per_seconds=per_seconds, burst=burst, by_channel=by_channel)

    def wait_for(
        self, predicate: Callable[[], T | None], timeout: float = 5.0, what: str = ""
    ) -> T:
        """Wait (without polling) until ``predicate()`` is truthy; returns its value."""
        return self.ws.wait_for(predicate, timeout, what)

    def wait_for_message(
        self,
        channel: str,
        match: str | Callable[[Json], bool],
        *,
        timeout: float = 5.0,
    ) -> Json:
        """The first message (replies included) whose text or blocks contain ``match``
        (or for which ``match(message)`` is true), waiting for it if need be."""

        def test(message: Json) -> bool:
            if isinstance(match, str):
                return match in message.get("text", "") or match in json.dumps(
                    message.get("blocks", []), ensure_ascii=False
                )
            return bool(match(message))

        def find() -> Json | None:
            with self.ws.lock:
                chan = self._channel(channel)
                for m in self.ws.messages[chan.id]:
                    as_json = self.ws.message_json(m)
                    if test(as_json):
                        return as_json
                return None

        return self.wait_for(find, timeout, f"a message matching {match!r} in {channel}")
