"""Request bodies shaped like Slack's: Events API envelopes, interaction payloads,
slash commands. Pure functions of the workspace's state; the caller holds the lock.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from typing import Any

from fakes.slack.objects import Channel, Message, User, View, random_id
from fakes.slack.state import Workspace

Json = dict[str, Any]

VERIFICATION_TOKEN = "emulator-verification-token"  # noqa: S105 (deprecated, still sent)


def event_id() -> str:
    return random_id("Ev", 10)


def action_ts() -> str:
    us = time.time_ns() // 1000
    return f"{us // 1_000_000}.{us % 1_000_000:06d}"


def _event_context(ws: Workspace, channel_id: str) -> str:
    raw = json.dumps({"team": ws.team_id, "app": ws.app_id, "channel": channel_id}).encode()
    return "4-" + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def event_envelope(ws: Workspace, event: Json, *, eid: str, channel_id: str = "") -> Json:
    """The ``event_callback`` wrapper around ``event``."""
    return {
        "token": VERIFICATION_TOKEN,
        "team_id": ws.team_id,
        "context_team_id": ws.team_id,
        "context_enterprise_id": None,
        "api_app_id": ws.app_id,
        "event": event,
        "type": "event_callback",
        "event_id": eid,
        "event_time": int(time.time()),
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": ws.team_id,
                "user_id": ws.bot_user_id,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": _event_context(ws, channel_id),
    }


def message_event(ws: Workspace, message: Message, channel: Channel, kind: str) -> Json:
    """``app_mention`` or ``message`` for a person's message."""
    event: Json = {
        "type": kind,
        "user": message.user,
        "text": message.text,
        "ts": message.ts,
    }
    if message.client_msg_id:
        event["client_msg_id"] = message.client_msg_id
    event["team"] = ws.team_id
    if message.blocks is not None:
        event["blocks"] = message.blocks
    if message.thread_ts:
        event["thread_ts"] = message.thread_ts
        parent = ws.find_message(message.channel, message.thread_ts)
        if parent is not None:
            event["parent_user_id"] = parent.user
    event["channel"] = channel.id
    event["event_ts"] = message.ts
    if kind == "message":
        event["channel_type"] = channel.channel_type
    return event


def user_ref(ws: Workspace, user: User) -> Json:
    return {"id": user.id, "username": user.name, "name": user.name, "team_id": ws.team_id}


def team_ref(ws: Workspace) -> Json:
    return {"id": ws.team_id, "domain": ws.team_domain}


def block_actions(
    ws: Workspace,
    *,
    user: User,
    channel: Channel,
    action: Json,
    trigger_id: str,
    response_url: str,
    message: Message | None,
    ephemeral_ts: str | None = None,
    thread_ts: str | None = None,
) -> Json:
    """A ``block_actions`` payload for a click on a message (or an ephemeral)."""
    container: Json = {
        "type": "message",
        "message_ts": message.ts if message is not None else ephemeral_ts,
        "channel_id": channel.id,
        "is_ephemeral": message is None,
    }
    if thread_ts:
        container["thread_ts"] = thread_ts
    payload: Json = {
        "type": "block_actions",
        "user": user_ref(ws, user),
        "api_app_id": ws.app_id,
        "token": VERIFICATION_TOKEN,
        "container": container,
        "trigger_id": trigger_id,
        "team": team_ref(ws),
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {
            "id": channel.id,
            "name": channel.name if not channel.is_im else "directmessage",
        },
    }
    if message is not None:
        payload["message"] = ws.message_json(message)
    payload["state"] = {"values": {}}
    payload["response_url"] = response_url
    payload["actions"] = [action]
    return payload


def block_suggestion(
    ws: Workspace,
    *,
    user: User,
    channel: Channel,
    message: Message,
    action_id: str,
    block_id: str,
    value: str,
) -> Json:
    """A ``block_suggestion``: the options load request for an external select in a
    message, with what the user has typed so far (``value``)."""
    return {
        "type": "block_suggestion",
        "user": user_ref(ws, user),
        "container": {
            "type": "message",
            "message_ts": message.ts,
            "channel_id": channel.id,
            "is_ephemeral": False,
        },
        "api_app_id": ws.app_id,
        "token": VERIFICATION_TOKEN,
        "action_id": action_id,
        "block_id": block_id,
        "value": value,
        "team": team_ref(ws),
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel.id, "name": channel.name},
        "message": ws.message_json(message),
        "action_ts": action_ts(),
    }


def view_submission(ws: Workspace, *, user: User, view: View, trigger_id: str) -> Json:
    return {
        "type": "view_submission",
        "team": team_ref(ws),
        "user": user_ref(ws, user),
        "api_app_id": ws.app_id,
        "token": VERIFICATION_TOKEN,
        "trigger_id": trigger_id,
        "view": view.to_api(),
        "response_urls": [],
        "is_enterprise_install": False,
        "enterprise": None,
    }


def view_closed(ws: Workspace, *, user: User, view: View) -> Json:
    return {
        "type": "view_closed",
        "team": team_ref(ws),
        "user": user_ref(ws, user),
        "api_app_id": ws.app_id,
        "token": VERIFICATION_TOKEN,
        "view": view.to_api(),
        "is_cleared": False,
        "is_enterprise_install": False,
        "enterprise": None,
    }


def slash_command(
    ws: Workspace,
    *,
    user: User,
    channel: Channel,
    command: str,
    text: str,
    response_url: str,
    trigger_id: str,
) -> dict[str, str]:
    """The form fields of a slash command request, in Slack's order."""
    return {
        "token": VERIFICATION_TOKEN,
        "team_id": ws.team_id,
        "team_domain": ws.team_domain,
        "channel_id": channel.id,
        "channel_name": channel.name if not channel.is_im else "directmessage",
        "user_id": user.id,
        "user_name": user.name,
        "command": command,
        "text": text,
        "api_app_id": ws.app_id,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id,
    }


def new_trigger_id() -> str:
    return f"{int(time.time())}.{secrets.randbelow(10**12):012d}.{secrets.token_hex(16)}"
