"""The emulated workspace: users, channels and DMs, messages, ephemerals, views.

Everything lives in one :class:`Workspace` guarded by one re-entrant lock. Every
change bumps :attr:`Workspace.version` and wakes :meth:`Workspace.wait_for`, so tests
and the web page can wait for "the next thing" instead of sleeping.
"""

from __future__ import annotations

import copy
import secrets
import string
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

Json = dict[str, Any]
T = TypeVar("T")

_ALNUM = string.ascii_uppercase + string.digits
_COLORS = ("#2b7bb9", "#e8912d", "#3c989f", "#4d394b", "#9b3b70", "#508a3a", "#a63024")


def random_id(prefix: str, length: int = 10) -> str:
    """A Slack-looking id: ``prefix`` and upper-case letters and digits."""
    return prefix + "".join(secrets.choice(_ALNUM) for _ in range(length))


def random_block_id() -> str:
    """What Slack puts in a block without a ``block_id``: a short random string."""
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(5))


def new_client_msg_id() -> str:
    return str(uuid.uuid4())


@dataclass
class User:
    id: str
    name: str
    real_name: str
    email: str | None = None
    is_bot: bool = False
    bot_id: str | None = None
    tz: str = "Europe/London"
    color: str = "#2b7bb9"

    def to_api(self, team_id: str) -> Json:
        profile: Json = {
            "real_name": self.real_name,
            "display_name": self.name,
            "real_name_normalized": self.real_name,
            "display_name_normalized": self.name,
            "image_48": "",
            "team": team_id,
        }
        if self.email:
            profile["email"] = self.email
        if self.bot_id:
            profile["bot_id"] = self.bot_id
        return {
            "id": self.id,
            "team_id": team_id,
            "name": self.name,
            "deleted": False,
            "color": self.color.lstrip("#"),
            "real_name": self.real_name,
            "tz": self.tz,
            "tz_label": self.tz,
            "tz_offset": 0,
            "profile": profile,
            "is_admin": False,
            "is_owner": False,
            "is_bot": self.is_bot,
            "is_app_user": False,
            "updated": 0,
        }


@dataclass
class Channel:
    id: str
    name: str
    is_private: bool = False
    is_im: bool = False
    im_user: str | None = None
    members: set[str] | None = None  # None: everyone in the workspace
    bot_member: bool = True
    created: int = field(default_factory=lambda: int(time.time()))
    topic: str = ""

    @property
    def channel_type(self) -> str:
        """The ``channel_type`` of message events: ``channel``, ``group`` or ``im``."""
        if self.is_im:
            return "im"
        return "group" if self.is_private else "channel"

    def has_member(self, user_id: str) -> bool:
        if self.is_im:
            return user_id == self.im_user
        return self.members is None or user_id in self.members

    def to_api(self, member_count: int) -> Json:
        if self.is_im:
            return {
                "id": self.id,
                "created": self.created,
                "is_im": True,
                "is_org_shared": False,
                "user": self.im_user,
                "is_user_deleted": False,
                "priority": 0,
            }
        return {
            "id": self.id,
            "name": self.name,
            "name_normalized": self.name,
            "is_channel": not self.is_private,
            "is_group": self.is_private,
            "is_im": False,
            "is_mpim": False,
            "is_private": self.is_private,
            "is_archived": False,
            "is_general": self.name == "general",
            "is_shared": False,
            "is_ext_shared": False,
            "is_org_shared": False,
            "is_member": self.bot_member,
            "created": self.created,
            "creator": "",
            "topic": {"value": self.topic, "creator": "", "last_set": 0},
            "purpose": {"value": "", "creator": "", "last_set": 0},
            "num_members": member_count,
        }


@dataclass
class Edit:
    """One earlier version of an edited message."""

    edited_ts: str
    text: str
    blocks: list[Json] | None


@dataclass
class Message:
    channel: str
    ts: str
    user: str
    text: str
    blocks: list[Json] | None = None
    attachments: list[Json] | None = None
    thread_ts: str | None = None  # only for replies; a parent's is computed
    bot_id: str | None = None
    app_id: str | None = None
    client_msg_id: str | None = None
    reply_broadcast: bool = False
    metadata: Json | None = None
    reactions: dict[str, list[str]] = field(default_factory=dict)
    edits: list[Edit] = field(default_factory=list)
    edited: Json | None = None

    @property
    def root_ts(self) -> str:
        return self.thread_ts or self.ts


@dataclass
class Ephemeral:
    """A message only ``user`` sees; Slack never stores it, the emulator does for tests."""

    channel: str
    user: str
    ts: str
    text: str
    blocks: list[Json] | None = None
    thread_ts: str | None = None
    sender: str = "bot"  # "bot" or "slackbot"
    source: str = "chat.postEphemeral"  # or "response_url", "command_response", "emulator"

    def to_api(self, bot_user_id: str, bot_id: str, app_id: str) -> Json:
        out: Json = {
            "type": "message",
            "subtype": "ephemeral",
            "ts": self.ts,
            "text": self.text,
            "channel": self.channel,
            "recipient": self.user,
            "source": self.source,
            "is_ephemeral": True,
        }
        if self.sender == "bot":
            out.update(user=bot_user_id, bot_id=bot_id, app_id=app_id)
        else:
            out.update(user="USLACKBOT", username="Slackbot")
        if self.blocks is not None:
            out["blocks"] = copy.deepcopy(self.blocks)
        if self.thread_ts:
            out["thread_ts"] = self.thread_ts
        return out


@dataclass
class View:
    id: str
    user: str
    definition: Json
    hash: str
    team_id: str
    app_id: str
    bot_id: str
    root_view_id: str
    previous_view_id: str | None = None
    values: Json = field(default_factory=dict)  # state.values as last submitted
    errors: dict[str, str] = field(default_factory=dict)  # response_action: errors
    general_error: str | None = None  # what Slack shows when the app's answer was bad
    is_open: bool = True
    closed_by: str | None = None  # how it ended: submitted, cleared, closed, replaced

    @property
    def type(self) -> str:
        return str(self.definition.get("type", ""))

    @property
    def callback_id(self) -> str:
        return str(self.definition.get("callback_id", ""))

    def to_api(self) -> Json:
        d = self.definition
        view: Json = {
            "id": self.id,
            "team_id": self.team_id,
            "type": self.type,
            "blocks": copy.deepcopy(d.get("blocks", [])),
            "private_metadata": d.get("private_metadata", ""),
            "callback_id": d.get("callback_id", ""),
            "state": {"values": copy.deepcopy(self.values)},
            "hash": self.hash,
            "clear_on_close": bool(d.get("clear_on_close", False)),
            "notify_on_close": bool(d.get("notify_on_close", False)),
            "root_view_id": self.root_view_id,
            "previous_view_id": self.previous_view_id,
            "app_id": self.app_id,
            "external_id": d.get("external_id", ""),
            "app_installed_team_id": self.team_id,
            "bot_id": self.bot_id,
        }
        for key in ("title", "submit", "close"):
            view[key] = copy.deepcopy(d.get(key))
        return view


@dataclass
class Trigger:
    id: str
    user: str
    issued: float  # time.monotonic()
    used: bool = False


@dataclass
class ResponseTarget:
    """Where a ``response_url`` posts to, and how often it may still be used."""

    id: str
    user: str
    channel: str
    kind: str  # "command" or "block_actions"
    message_ts: str | None = None  # the message a block_actions came from
    ephemeral_ts: str | None = None  # ... if that message was an ephemeral
    thread_ts: str | None = None
    uses: int = 0
    created: float = field(default_factory=time.monotonic)


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
