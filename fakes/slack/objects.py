"""Slack's objects as the emulator keeps them: users, channels, messages, views, ...

Plain dataclasses, each with the JSON Slack's API shows for it (``to_api``), so the
shape of what the Web API returns is decided in one place per object and the workspace
(:mod:`fakes.slack.state`) only has to keep them.
"""

from __future__ import annotations

import copy
import secrets
import string
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

Json = dict[str, Any]

_ALNUM = string.ascii_uppercase + string.digits


def random_id(prefix: str, length: int = 10) -> str:
    """A Slack-looking id: ``prefix`` and upper-case letters and digits."""
    return prefix + "".join(secrets.choice(_ALNUM) for _ in range(length))


def random_block_id() -> str:
    """What Slack puts in a block without a ``block_id``: a short random string."""
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(5))


def view_hash() -> str:
    """A view's ``hash``: a new one on every change, for ``views.update``'s check."""
    return f"{int(time.time())}.{secrets.token_hex(4)}"


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
