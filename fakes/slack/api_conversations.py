"""Web API methods that read: ``conversations.*``, ``users.*`` and ``team.info``.

Paging and the ``oldest``/``latest`` window work as Slack's do (``conversations.history``
newest first, ``conversations.replies`` the parent first), so a bot that reads a thread
back sees what it would see in Slack. Functions as in :mod:`fakes.slack.api_chat`.
"""

from __future__ import annotations

from typing import Any

from fakes.slack.api_chat import Method
from fakes.slack.args import ApiError, Args, channel_arg
from fakes.slack.objects import Message
from fakes.slack.state import Workspace

Json = dict[str, Any]


def page(ws: Workspace, a: Args, messages: list[Message], default_limit: int) -> Json:
    limit = max(1, min(a.get_int("limit", default_limit), 1000))
    cursor = a.get_str("cursor")
    start = int(cursor) if cursor and cursor.isdigit() else 0
    page = messages[start : start + limit]
    more = start + limit < len(messages)
    return {
        "messages": [ws.message_json(m) for m in page],
        "has_more": more,
        "response_metadata": {"next_cursor": str(start + limit) if more else ""},
    }


def window(a: Args, messages: list[Message]) -> list[Message]:
    try:
        oldest = float(a.get_str("oldest") or 0)
    except ValueError:
        raise ApiError("invalid_ts_oldest") from None
    try:
        latest = float(a.get_str("latest") or "inf")
    except ValueError:
        raise ApiError("invalid_ts_latest") from None
    inclusive = a.get_bool("inclusive")

    def inside(m: Message) -> bool:
        ts = float(m.ts)
        low = ts >= oldest if inclusive else ts > oldest
        high = ts <= latest if inclusive else ts < latest
        return low and high

    return [m for m in messages if inside(m)]


def conversations_replies(ws: Workspace, a: Args, warnings: list[str]) -> Json:
    channel = channel_arg(ws, a)
    ts = a.get_str("ts")
    message = ws.find_message(channel.id, ts) if ts else None
    if message is None:
        raise ApiError("thread_not_found")
    root = ws.find_message(channel.id, message.root_ts)
    if root is None:
        raise ApiError("thread_not_found")
    thread = [root, *ws.replies(channel.id, root.ts)]
    return page(ws, a, window(a, thread), 1000)


def conversations_history(ws: Workspace, a: Args, warnings: list[str]) -> Json:
    channel = channel_arg(ws, a)
    top = [m for m in ws.messages.get(channel.id, []) if m.thread_ts is None or m.reply_broadcast]
    newest_first = list(reversed(window(a, top)))
    return {**page(ws, a, newest_first, 100), "pin_count": 0}


def conversations_info(ws: Workspace, a: Args, warnings: list[str]) -> Json:
    channel = channel_arg(ws, a)
    return {"channel": channel.to_api(ws.member_count(channel))}


def conversations_open(ws: Workspace, a: Args, warnings: list[str]) -> Json:
    users = [u for u in (a.get_str("users") or "").split(",") if u]
    if a.get_str("channel"):
        channel = channel_arg(ws, a)
    elif len(users) == 1 and users[0] in ws.users:
        channel = ws.open_im(users[0])
    elif not users:
        raise ApiError("users_list_not_supplied")
    else:
        raise ApiError("user_not_found")
    return {"channel": {"id": channel.id}}


def conversations_members(ws: Workspace, a: Args, warnings: list[str]) -> Json:
    channel = channel_arg(ws, a)
    members = [u for u in ws.users if channel.has_member(u) or u == ws.bot_user_id]
    return {"members": members, "response_metadata": {"next_cursor": ""}}


def conversations_list(ws: Workspace, a: Args, warnings: list[str]) -> Json:
    types = set((a.get_str("types") or "public_channel").split(","))
    out = []
    for channel in ws.channels.values():
        kind = "im" if channel.is_im else "private_channel" if channel.is_private else None
        if (kind or "public_channel") in types:
            out.append(channel.to_api(ws.member_count(channel)))
    return {"channels": out, "response_metadata": {"next_cursor": ""}}


def users_info(ws: Workspace, a: Args, warnings: list[str]) -> Json:
    user = ws.users.get(a.get_str("user") or "")
    if user is None:
        raise ApiError("user_not_found")
    return {"user": user.to_api(ws.team_id)}


def users_list(ws: Workspace, a: Args, warnings: list[str]) -> Json:
    members = [u.to_api(ws.team_id) for u in ws.users.values()]
    return {"members": members, "response_metadata": {"next_cursor": ""}}


def team_info(ws: Workspace, a: Args, warnings: list[str]) -> Json:
    return {"team": {"id": ws.team_id, "name": ws.team_name, "domain": ws.team_domain}}


METHODS: dict[str, Method] = {
    "conversations.replies": conversations_replies,
    "conversations.history": conversations_history,
    "conversations.info": conversations_info,
    "conversations.open": conversations_open,
    "conversations.members": conversations_members,
    "conversations.list": conversations_list,
    "users.info": users_info,
    "users.list": users_list,
    "team.info": team_info,
}
