"""The web page's JSON endpoints: ``GET /ui/state`` and ``POST /ui/<action>``.

The page (``fakes/slack/web/``) is a small Slack client: it polls :func:`state` for
what the chosen person sees, and posts what they type or click, which goes through the
same actions as a test's (:mod:`fakes.slack.people`), so the page and the tests cannot
drift apart. Typed text is converted as a Slack client would
(:func:`fakes.slack.text.client_format`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fakes.slack.forms import ViewInputError
from fakes.slack.text import client_format

if TYPE_CHECKING:
    from fakes.slack.server import SlackEmulator

Json = dict[str, Any]


def state(emu: SlackEmulator, user: str | None, since: int | None = None) -> Json:
    ws = emu.ws
    with ws.lock:
        if since is not None and since == ws.version:
            return {"version": ws.version, "unchanged": True}
        me = (
            user
            if user in ws.users
            else next((u.id for u in ws.users.values() if not u.is_bot), ws.bot_user_id)
        )
        channels = []
        messages: dict[str, list[Json]] = {}
        for chan in ws.channels.values():
            if chan.is_im and chan.im_user != me:
                continue
            channels.append(
                {
                    "id": chan.id,
                    "name": chan.name,
                    "is_im": chan.is_im,
                    "is_private": chan.is_private,
                    "topic": chan.topic,
                    "label": (f"{ws.bot_name}" if chan.is_im else f"#{chan.name}"),
                }
            )
            tops: list[Json] = []
            for m in ws.messages[chan.id]:
                if m.thread_ts is not None:
                    continue
                entry = ws.message_json(m)
                entry["replies"] = [ws.message_json(r) for r in ws.replies(chan.id, m.ts)]
                tops.append(entry)
            messages[chan.id] = tops
        modal = None
        stack = ws.modal_stacks.get(me, [])
        if stack:
            top = ws.views[stack[-1]]
            modal = {
                "view": top.to_api(),
                "errors": dict(top.errors),
                "general_error": top.general_error,
                "stack": len(stack),
            }
        home = ws.views.get(ws.home_views.get(me, ""))
        return {
            "version": ws.version,
            "team": {"id": ws.team_id, "name": ws.team_name, "domain": ws.team_domain},
            "bot": {"user_id": ws.bot_user_id, "name": ws.bot_name, "bot_id": ws.bot_id},
            "me": me,
            "users": [
                {
                    "id": u.id,
                    "name": u.name,
                    "real_name": u.real_name,
                    "is_bot": u.is_bot,
                    "color": u.color,
                }
                for u in ws.users.values()
            ],
            "channels": channels,
            "messages": messages,
            "ephemerals": emu.ephemerals(me),
            "modal": modal,
            "home": home.to_api() if home else None,
            "slash_commands": sorted(emu.slash_commands),
            "bot_connected": bool(emu.bot_url),
            "warnings": list(ws.warnings),
        }


def post(emu: SlackEmulator, data: Json) -> Json:
    user = str(data.get("user", ""))
    channel = str(data.get("channel", ""))
    typed = str(data.get("text", ""))
    thread_ts = data.get("thread_ts") or None
    if not typed.strip():
        return {"ok": False, "error": "empty message"}
    if typed.lstrip().startswith("/"):
        command, _, rest = typed.strip().partition(" ")
        if command not in emu.slash_commands:
            with emu.ws.lock:
                emu._slackbot(
                    user,
                    emu._channel(channel).id,
                    f"{command} is not a valid command. In Slack, all messages that start "
                    'with the "/" character are interpreted as commands.',
                )
            return {"ok": False, "error": "unknown_command"}
        delivery = emu.slash(user, channel, command, rest.strip())
        return {"ok": delivery.ok, "status": delivery.status}
    with emu.ws.lock:
        text = client_format(typed, emu._user_names(), emu._channel_names())
        message, events = emu._add_person_message(user, channel, text, thread_ts)
    if not emu.bot_url:
        return {"ok": True, "ts": message.ts, "delivered": 0}
    deliveries = [emu.send_event(e, channel_id=message.channel) for e in events]
    return {"ok": True, "ts": message.ts, "delivered": len(deliveries)}


def submit(emu: SlackEmulator, data: Json) -> Json:
    user = str(data.get("user", ""))
    values = data.get("values") or {}
    try:
        delivery = emu.submit_view(user, str(data.get("view_id", "")), values)
    except ViewInputError as exc:
        return {"ok": False, "errors": exc.errors}
    return {"ok": delivery.ok, "answer": delivery.json}


def handle(emu: SlackEmulator, path: str, data: Json) -> Json:
    user = str(data.get("user", ""))
    if path == "/ui/post":
        return post(emu, data)
    if path == "/ui/click":
        delivery = emu.click(
            user,
            str(data.get("channel", "")),
            str(data.get("ts", "")),
            str(data.get("action_id", "")),
            block_id=data.get("block_id") or None,
        )
        return {"ok": delivery.ok, "status": delivery.status}
    if path == "/ui/submit":
        return submit(emu, data)
    if path == "/ui/close":
        emu.close_view(user, str(data.get("view_id", "")))
        return {"ok": True}
    if path == "/ui/home":
        if not emu.bot_url:
            return {"ok": True, "delivered": 0}
        return {"ok": emu.app_home_opened(user).ok}
    raise LookupError(f"no UI endpoint {path}")
