"""Web API methods that write: ``chat.*`` and ``reactions.*`` (and ``auth.test``).

Each method is a function of the workspace and its arguments that returns the fields of
a successful answer, or raises :class:`fakes.slack.args.ApiError` with Slack's error
code. They run under the workspace's lock (taken by :class:`fakes.slack.webapi.WebApi`).
Where Slack answers ``ok`` but a reviewer should know better (a reply to a reply, a
thread that does not exist), they add a workspace warning.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from fakes.slack.args import (
    ApiError,
    Args,
    channel_arg,
    content,
    decoded,
    message_arg,
)
from fakes.slack.objects import Edit, Ephemeral, Message
from fakes.slack.state import Workspace

Json = dict[str, Any]
Method = Callable[[Workspace, Args, list[str]], Json]


def api_test(ws: Workspace, a: Args, warnings: list[str]) -> Json:
    return {"args": decoded(a.data)}


def auth_test(ws: Workspace, a: Args, warnings: list[str]) -> Json:
    return {
        "url": f"{ws.url}/",
        "team": ws.team_name,
        "user": ws.bot_name,
        "team_id": ws.team_id,
        "user_id": ws.bot_user_id,
        "bot_id": ws.bot_id,
        "is_enterprise_install": False,
    }


def chat_post_message(ws: Workspace, a: Args, warnings: list[str]) -> Json:
    channel = channel_arg(ws, a)
    if not channel.is_im and not channel.bot_member:
        raise ApiError("not_in_channel")
    text, blocks, attachments = content(ws, a, "chat.postMessage", warnings)
    thread_ts = a.get_str("thread_ts")
    if thread_ts is not None:
        if not isinstance(a.data.get("thread_ts"), str):
            ws.warn(f"chat.postMessage: thread_ts {thread_ts} is not a string")
        parent = ws.find_message(channel.id, thread_ts)
        if parent is None:
            ws.warn(
                f"chat.postMessage: thread_ts {thread_ts} is no message in {channel.id}; "
                "Slack answers ok and the reply is never seen"
            )
        elif parent.thread_ts:
            ws.warn(
                f"chat.postMessage: thread_ts {thread_ts} is a reply, not a thread's "
                f"parent; use {parent.thread_ts}"
            )
            thread_ts = parent.thread_ts
    metadata = a.get_json("metadata", error="invalid_metadata")
    message = Message(
        channel=channel.id,
        ts=ws.next_ts(),
        user=ws.bot_user_id,
        text=text or "",
        blocks=blocks,
        attachments=attachments,
        thread_ts=thread_ts,
        bot_id=ws.bot_id,
        app_id=ws.app_id,
        reply_broadcast=a.get_bool("reply_broadcast") and thread_ts is not None,
        metadata=metadata if isinstance(metadata, dict) else None,
    )
    ws.add_message(message)
    return {"channel": channel.id, "ts": message.ts, "message": ws.message_json(message)}


def chat_update(ws: Workspace, a: Args, warnings: list[str]) -> Json:
    channel = channel_arg(ws, a)
    message = message_arg(ws, channel, a.get_str("ts"))
    if message.user != ws.bot_user_id:
        raise ApiError("cant_update_message")
    has_blocks = a.data.get("blocks") is not None
    required = not has_blocks and not message.blocks
    text, blocks, attachments = content(ws, a, "chat.update", warnings, required=required)
    if text is None and not has_blocks and a.data.get("attachments") is None:
        raise ApiError("no_text")
    message.edits.append(Edit(ws.next_ts(), message.text, copy.deepcopy(message.blocks)))
    message.text = text or ""
    if has_blocks:
        message.blocks = blocks if blocks else None
    if attachments is not None:
        message.attachments = attachments or None
    message.edited = {"user": ws.bot_user_id, "ts": message.edits[-1].edited_ts}
    return {
        "channel": channel.id,
        "ts": message.ts,
        "text": message.text,
        "message": ws.message_json(message),
    }


def chat_delete(ws: Workspace, a: Args, warnings: list[str]) -> Json:
    channel = channel_arg(ws, a)
    message = message_arg(ws, channel, a.get_str("ts"))
    if message.user != ws.bot_user_id:
        raise ApiError("cant_delete_message")
    ws.delete_message(message)
    return {"channel": channel.id, "ts": message.ts}


def chat_post_ephemeral(ws: Workspace, a: Args, warnings: list[str]) -> Json:
    channel = channel_arg(ws, a)
    user_id = a.get_str("user")
    if not user_id or user_id not in ws.users:
        raise ApiError("user_not_found")
    if not channel.has_member(user_id):
        raise ApiError("user_not_in_channel")
    if not channel.is_im and not channel.bot_member:
        raise ApiError("not_in_channel")
    text, blocks, _ = content(ws, a, "chat.postEphemeral", warnings)
    thread_ts = a.get_str("thread_ts")
    if thread_ts and ws.find_message(channel.id, thread_ts) is None:
        ws.warn(f"chat.postEphemeral: thread_ts {thread_ts} is no message in {channel.id}")
    ephemeral = Ephemeral(
        channel=channel.id,
        user=user_id,
        ts=ws.next_ts(),
        text=text or "",
        blocks=blocks,
        thread_ts=thread_ts,
    )
    ws.ephemerals.append(ephemeral)
    return {"message_ts": ephemeral.ts}


def chat_get_permalink(ws: Workspace, a: Args, warnings: list[str]) -> Json:
    channel = channel_arg(ws, a)
    message = message_arg(ws, channel, a.get_str("message_ts"))
    link = f"{ws.url}/archives/{channel.id}/p{message.ts.replace('.', '')}"
    if message.thread_ts:
        link += f"?thread_ts={message.thread_ts}&cid={channel.id}"
    return {"channel": channel.id, "permalink": link}


def reaction_target(ws: Workspace, a: Args) -> tuple[Message, str]:
    channel = channel_arg(ws, a)
    message = message_arg(ws, channel, a.get_str("timestamp"))
    name = a.get_str("name")
    if not name:
        raise ApiError("invalid_name")
    if ":" in name.strip(":") or name.startswith(":") or any(c.isspace() for c in name):
        raise ApiError("invalid_name")
    return message, name


def reactions_add(ws: Workspace, a: Args, warnings: list[str]) -> Json:
    message, name = reaction_target(ws, a)
    users = message.reactions.setdefault(name, [])
    if ws.bot_user_id in users:
        raise ApiError("already_reacted")
    users.append(ws.bot_user_id)
    return {}


def reactions_remove(ws: Workspace, a: Args, warnings: list[str]) -> Json:
    message, name = reaction_target(ws, a)
    users = message.reactions.get(name, [])
    if ws.bot_user_id not in users:
        raise ApiError("no_reaction")
    users.remove(ws.bot_user_id)
    if not users:
        del message.reactions[name]
    return {}


def reactions_get(ws: Workspace, a: Args, warnings: list[str]) -> Json:
    channel = channel_arg(ws, a)
    message = message_arg(ws, channel, a.get_str("timestamp"))
    return {
        "type": "message",
        "channel": channel.id,
        "message": ws.message_json(message),
    }


METHODS: dict[str, Method] = {
    "api.test": api_test,
    "auth.test": auth_test,
    "chat.postMessage": chat_post_message,
    "chat.update": chat_update,
    "chat.delete": chat_delete,
    "chat.postEphemeral": chat_post_ephemeral,
    "chat.getPermalink": chat_get_permalink,
    "reactions.add": reactions_add,
    "reactions.remove": reactions_remove,
    "reactions.get": reactions_get,
}
