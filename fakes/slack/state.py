"""The emulated workspace: who is in it, what was said, which views are open.

Everything lives in one :class:`Workspace` guarded by one re-entrant lock. Every
change bumps :attr:`Workspace.version` and wakes :meth:`Workspace.wait_for`, so tests
and the web page can wait for "the next thing" instead of sleeping. The objects it
keeps, and their API JSON, are in :mod:`fakes.slack.objects`.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from fakes.slack.objects import (
    Channel,
    Ephemeral,
    Message,
    ResponseTarget,
    Trigger,
    User,
    View,
    random_id,
    view_hash,
)

Json = dict[str, Any]
T = TypeVar("T")

_COLORS = ("#2b7bb9", "#e8912d", "#3c989f", "#4d394b", "#9b3b70", "#508a3a", "#a63024")


class Workspace:
    """All state of the emulated workspace. Lock :attr:`lock` around any access."""

    def __init__(
        self,
        *,
        team_id: str,
        team_name: str,
        team_domain: str,
        bot_user_id: str,
        bot_id: str,
        app_id: str,
        bot_name: str,
    ) -> None:
        self.team_id = team_id
        self.team_name = team_name
        self.team_domain = team_domain
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.app_id = app_id
        self.bot_name = bot_name
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.version = 0
        self.users: dict[str, User] = {}
        self.channels: dict[str, Channel] = {}
        self.messages: dict[str, list[Message]] = {}
        self.ephemerals: list[Ephemeral] = []
        self.views: dict[str, View] = {}
        self.modal_stacks: dict[str, list[str]] = {}
        self.home_views: dict[str, str] = {}
        self.triggers: dict[str, Trigger] = {}
        self.response_targets: dict[str, ResponseTarget] = {}
        self.warnings: list[str] = []
        #: The workspace's address (``auth.test``'s ``url``, permalinks): the emulator's
        #: server, known once it listens.
        self.url = "http://127.0.0.1"
        #: Seconds a ``trigger_id`` stays valid for ``views.open`` (Slack: 3).
        self.trigger_ttl = 3.0
        self._last_us = 0
        self.add_user(
            bot_user_id, bot_name, real_name=bot_name, is_bot=True, bot_id=bot_id, color="#611f69"
        )

    # -- change notification ---------------------------------------------------------

    def touch(self) -> None:
        """Record a change; wakes everyone in :meth:`wait_for`."""
        with self.lock:
            self.version += 1
            self.changed.notify_all()

    def wait_for(self, predicate: Callable[[], T | None], timeout: float, what: str = "") -> T:
        """Wait until ``predicate()`` is truthy (checked after every change) and return it."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                result = predicate()
                if result:
                    return result
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    label = what or getattr(predicate, "__name__", "condition")
                    raise TimeoutError(f"emulator: {label} not met within {timeout:.1f} s")
                self.changed.wait(remaining)

    def warn(self, text: str) -> None:
        with self.lock:
            self.warnings.append(text)
            self.touch()

    # -- ids -------------------------------------------------------------------------

    def next_ts(self) -> str:
        """A fresh message ts, strictly increasing, shaped like Slack's ``1700000000.000100``."""
        with self.lock:
            us = max(time.time_ns() // 1000, self._last_us + 1)
            self._last_us = us
            return f"{us // 1_000_000}.{us % 1_000_000:06d}"

    # -- users and channels ----------------------------------------------------------

    def add_user(
        self,
        user_id: str,
        name: str,
        *,
        real_name: str | None = None,
        email: str | None = None,
        is_bot: bool = False,
        bot_id: str | None = None,
        color: str | None = None,
    ) -> User:
        with self.lock:
            user = User(
                id=user_id,
                name=name,
                real_name=real_name or name.capitalize(),
                email=email,
                is_bot=is_bot,
                bot_id=bot_id,
                color=color or _COLORS[len(self.users) % len(_COLORS)],
            )
            self.users[user_id] = user
            self.touch()
            return user

    def add_channel(
        self,
        channel_id: str,
        name: str,
        *,
        private: bool = False,
        members: set[str] | None = None,
        bot_member: bool = True,
        topic: str = "",
    ) -> Channel:
        with self.lock:
            channel = Channel(
                id=channel_id,
                name=name.lstrip("#"),
                is_private=private,
                members=set(members) if members is not None else None,
                bot_member=bot_member,
                topic=topic,
            )
            self.channels[channel_id] = channel
            self.messages.setdefault(channel_id, [])
            self.touch()
            return channel

    def open_im(self, user_id: str) -> Channel:
        """The bot's DM with ``user_id``, created on first use."""
        with self.lock:
            for channel in self.channels.values():
                if channel.is_im and channel.im_user == user_id:
                    return channel
            channel = Channel(id="D" + user_id.lstrip("U").lstrip("_"), name=user_id, is_im=True)
            channel.im_user = user_id
            if channel.id in self.channels:
                channel.id = random_id("D")
            self.channels[channel.id] = channel
            self.messages.setdefault(channel.id, [])
            self.touch()
            return channel

    def resolve_channel(self, ref: str) -> Channel | None:
        """A channel by id, ``#name``/``name`` (Slack accepts both), or a user id (their DM)."""
        with self.lock:
            if ref in self.channels:
                return self.channels[ref]
            if ref in self.users and ref != self.bot_user_id:
                return self.open_im(ref)
            name = ref.lstrip("#")
            for channel in self.channels.values():
                if not channel.is_im and channel.name == name:
                    return channel
            return None

    def member_count(self, channel: Channel) -> int:
        if channel.is_im:
            return 2
        if channel.members is None:
            return len(self.users)
        return len(channel.members) + (1 if channel.bot_member else 0)

    def user_by_name(self, name: str) -> User | None:
        with self.lock:
            for user in self.users.values():
                if user.name == name:
                    return user
            return None

    # -- views -----------------------------------------------------------------------

    def new_view(
        self, user: str, definition: Json, root: str | None = None, previous: str | None = None
    ) -> View:
        """Store a new view (a modal, pushed or not, or a home tab) for ``user``."""
        with self.lock:
            view_id = random_id("V", 10)
            view = View(
                id=view_id,
                user=user,
                definition=definition,
                hash=view_hash(),
                team_id=self.team_id,
                app_id=self.app_id,
                bot_id=self.bot_id,
                root_view_id=root or view_id,
                previous_view_id=previous,
            )
            self.views[view_id] = view
            return view

    # -- messages --------------------------------------------------------------------

    def find_message(self, channel_id: str, ts: str) -> Message | None:
        with self.lock:
            for message in self.messages.get(channel_id, []):
                if message.ts == ts:
                    return message
            return None

    def replies(self, channel_id: str, root_ts: str) -> list[Message]:
        with self.lock:
            return [m for m in self.messages.get(channel_id, []) if m.thread_ts == root_ts]

    def add_message(self, message: Message) -> Message:
        with self.lock:
            self.messages.setdefault(message.channel, []).append(message)
            self.touch()
            return message

    def delete_message(self, message: Message) -> None:
        with self.lock:
            self.messages[message.channel] = [
                m for m in self.messages.get(message.channel, []) if m is not message
            ]
            self.touch()

    def message_json(self, message: Message) -> Json:
        """A message as Slack's API returns it (conversations.history / replies)."""
        with self.lock:
            out: Json = {"type": "message", "user": message.user, "text": message.text}
            if message.bot_id:
                out["bot_id"] = message.bot_id
                out["app_id"] = message.app_id
                out["bot_profile"] = {
                    "id": message.bot_id,
                    "app_id": message.app_id,
                    "name": self.bot_name,
                    "deleted": False,
                    "team_id": self.team_id,
                    "icons": {},
                }
            out["ts"] = message.ts
            out["team"] = self.team_id
            if message.client_msg_id:
                out["client_msg_id"] = message.client_msg_id
            if message.blocks is not None:
                out["blocks"] = copy.deepcopy(message.blocks)
            if message.attachments is not None:
                out["attachments"] = copy.deepcopy(message.attachments)
            if message.metadata is not None:
                out["metadata"] = copy.deepcopy(message.metadata)
            if message.edited is not None:
                out["edited"] = dict(message.edited)
            if message.thread_ts:
                out["thread_ts"] = message.thread_ts
                parent = self.find_message(message.channel, message.thread_ts)
                if parent is not None:
                    out["parent_user_id"] = parent.user
                if message.reply_broadcast:
                    out["subtype"] = "thread_broadcast"
            else:
                replies = self.replies(message.channel, message.ts)
                if replies:
                    users = list(dict.fromkeys(r.user for r in replies))
                    out.update(
                        thread_ts=message.ts,
                        reply_count=len(replies),
                        reply_users_count=len(users),
                        latest_reply=replies[-1].ts,
                        reply_users=users,
                        is_locked=False,
                        subscribed=False,
                    )
            if message.reactions:
                out["reactions"] = [
                    {"name": name, "users": list(users), "count": len(users)}
                    for name, users in message.reactions.items()
                ]
            return out
