"""The Slack emulator: Web API, signed deliveries to the bot, response URLs, a web page.

    with SlackEmulator(bot_url="http://127.0.0.1:3000/slack/events") as emu:
        client = WebClient(token=emu.bot_token, base_url=emu.api_url)
        ts, delivery = emu.mention("U_ALICE", "C_GENERAL", "@agents in acme/api: fix it")
        emu.wait_for(lambda: emu.thread("C_GENERAL", ts)[1:])

One HTTP server on 127.0.0.1 serves ``/api/<method>`` (point ``WebClient(base_url=...)``
at :attr:`SlackEmulator.api_url`), ``/response/<id>`` (response URLs), and the web page
at ``/`` with its JSON endpoints under ``/ui/``.
"""

from __future__ import annotations

import contextlib
import copy
import json
import secrets
import socket
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit

from fakes.slack import payloads, validate
from fakes.slack.delivery import Deliverer, Delivery
from fakes.slack.state import (
    Channel,
    Edit,
    Ephemeral,
    Message,
    ResponseTarget,
    Trigger,
    User,
    View,
    Workspace,
    new_client_msg_id,
    random_block_id,
)
from fakes.slack.text import client_format, link_names, mentioned_users, rich_text_blocks
from fakes.slack.webapi import ApiCall, ApiResult, WebApi, ensure_ids

Json = dict[str, Any]
T = TypeVar("T")

FORM = "application/x-www-form-urlencoded"
WEB_DIR = Path(__file__).with_name("web")
STATIC_FILES = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
}
DEFAULT_SUBSCRIPTIONS = frozenset(
    {"app_mention", "message.channels", "message.groups", "message.im"}
)
REQUIRED_FIELD = "Please complete this required field."
TROUBLE = "We had some trouble connecting. Try again?"
MAX_BODY = 10 * 1024 * 1024


class ViewInputError(ValueError):
    """A modal submission Slack's client would refuse (a required field left empty, ...)."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(f"the modal shows errors: {errors}")
        self.errors = errors


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], emulator: SlackEmulator) -> None:
        self.emulator = emulator
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"
    server_version = "SlackEmulator/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        self.server.emulator._serve(self, "GET")

    def do_POST(self) -> None:
        self.server.emulator._serve(self, "POST")


class SlackEmulator:
    """A local Slack: one workspace, one app (the bot), and the people who use it.

    Pass ``seed=False`` for an empty workspace; by default it has ``alice``
    (``U_ALICE``), ``bob`` (``U_BOB``) and ``#general`` (``C_GENERAL``).
    """

    def __init__(
        self,
        *,
        bot_url: str | None = None,
        port: int = 0,
        host: str = "127.0.0.1",
        signing_secret: str | None = None,
        bot_token: str | None = None,
        team_id: str = "T_EMULATOR",
        team_name: str = "Agents Emulator",
        team_domain: str = "agents-emulator",
        bot_user_id: str = "U_BOT",
        bot_id: str = "B_AGENTS",
        app_id: str = "A_AGENTS",
        bot_name: str = "agents",
        slash_commands: Iterable[str] = ("/agents",),
        subscriptions: Iterable[str] = DEFAULT_SUBSCRIPTIONS,
        trigger_ttl: float = 3.0,
        ack_timeout: float = 3.0,
        delivery_timeout: float = 10.0,
        seed: bool = True,
    ) -> None:
        self.bot_url = bot_url
        self.interactivity_url: str | None = None  # defaults to bot_url
        self.commands_url: str | None = None  # defaults to bot_url
        self.signing_secret = signing_secret or secrets.token_hex(16)
        self.bot_token = bot_token or f"xoxb-emulator-{secrets.token_hex(8)}"
        self.slash_commands = set(slash_commands)
        self.subscriptions = set(subscriptions)
        self.ack_timeout = ack_timeout
        self.ws = Workspace(
            team_id=team_id,
            team_name=team_name,
            team_domain=team_domain,
            bot_user_id=bot_user_id,
            bot_id=bot_id,
            app_id=app_id,
            bot_name=bot_name,
        )
        self.api = WebApi(self.ws, bot_token=self.bot_token)
        self.api.trigger_ttl = trigger_ttl
        self.deliveries: list[Delivery] = []
        self._deliverer = Deliverer(timeout=delivery_timeout)
        self._events: dict[str, str] = {}  # event_id -> body, for redelivery
        self._host = host
        self._port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        if seed:
            self.add_user("U_ALICE", "alice", real_name="Alice Example")
            self.add_user("U_BOB", "bob", real_name="Bob Example")
            self.add_channel("C_GENERAL", "general", topic="Ask @agents for a change")

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> SlackEmulator:
        if self._server is not None:
            return self
        self._server = _Server((self._host, self._port), self)
        self._port = self._server.server_address[1]
        self.api.base_url = self.url
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name=f"slack-emulator:{self._port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> SlackEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def trigger_ttl(self) -> float:
        """Seconds a ``trigger_id`` stays valid for ``views.open`` (Slack: 3)."""
        return self.api.trigger_ttl

    @trigger_ttl.setter
    def trigger_ttl(self, seconds: float) -> None:
        self.api.trigger_ttl = seconds

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``: the web page."""
        return f"http://{self._host}:{self._port}"

    @property
    def api_url(self) -> str:
        """The Web API base URL for ``WebClient(base_url=...)``; ends in ``/api/``."""
        return f"{self.url}/api/"

    def env(self) -> dict[str, str]:
        """The settings the bot needs to talk to this emulator."""
        return {
            "SLACK_API_URL": self.api_url,
            "SLACK_BOT_TOKEN": self.bot_token,
            "SLACK_SIGNING_SECRET": self.signing_secret,
        }

    # -- workspace -------------------------------------------------------------------

    @property
    def team_id(self) -> str:
        return self.ws.team_id

    @property
    def bot_user_id(self) -> str:
        return self.ws.bot_user_id

    def add_user(
        self,
        user_id: str,
        name: str,
        *,
        real_name: str | None = None,
        email: str | None = None,
        is_bot: bool = False,
    ) -> User:
        user = self.ws.add_user(user_id, name, real_name=real_name, email=email, is_bot=is_bot)
        if not is_bot:
            self.ws.open_im(user_id)  # everyone can DM the app (its Messages tab)
        return user

    def add_channel(
        self,
        channel_id: str,
        name: str,
        *,
        private: bool = False,
        members: Iterable[str] | None = None,
        bot_member: bool = True,
        topic: str = "",
    ) -> Channel:
        """A channel; ``members=None`` means everyone, now and later."""
        return self.ws.add_channel(
            channel_id,
            name,
            private=private,
            members=set(members) if members is not None else None,
            bot_member=bot_member,
            topic=topic,
        )

    def dm(self, user_id: str) -> str:
        """The id of the bot's DM with ``user_id`` (created on first use)."""
        self._user(user_id)
        return self.ws.open_im(user_id).id

    # -- what people do --------------------------------------------------------------

    def post(
        self, user: str, channel: str, text: str, thread_ts: str | None = None
    ) -> tuple[str, list[Delivery]]:
        """``user`` posts ``text`` (Slack wire format; ``@name`` is linked) and the bot
        gets the events it subscribed to: ``app_mention`` when mentioned, ``message``.
        Without a ``bot_url`` the message is only stored."""
        with self.ws.lock:
            text = link_names(text, self._user_names(), self._channel_names())
            message, events = self._add_person_message(user, channel, text, thread_ts)
        if not self.bot_url:
            return message.ts, []  # no bot connected: the message is only stored
        deliveries = [self.send_event(event, channel_id=message.channel) for event in events]
        return message.ts, deliveries

    def mention(
        self, user: str, channel: str, text: str, thread_ts: str | None = None
    ) -> tuple[str, Delivery]:
        """``user`` mentions the bot: the message is posted and a signed ``app_mention``
        is delivered (and ``message``, if subscribed). Prepends ``<@BOT>`` if ``text``
        has no mention of the bot. Returns the message ts and the ``app_mention``
        delivery."""
        if not self.bot_url:
            raise RuntimeError("set emu.bot_url (the bot's /slack/events URL) first")
        with self.ws.lock:
            if self._channel(channel).is_im:
                raise ValueError("Slack sends no app_mention in DMs; use emu.post()")
            text = link_names(text, self._user_names(), self._channel_names())
            if self.ws.bot_user_id not in mentioned_users(text):
                text = f"<@{self.ws.bot_user_id}> {text}"
            if "app_mention" not in self.subscriptions:
                raise ValueError("the app is not subscribed to app_mention")
        ts, deliveries = self.post(user, channel, text, thread_ts)
        mention = next(d for d in deliveries if d.event_type == "app_mention")
        return ts, mention

    def send_event(self, event: Json, *, channel_id: str = "") -> Delivery:
        """Deliver any Events API ``event`` (wrapped in an ``event_callback``)."""
        eid = payloads.event_id()
        with self.ws.lock:
            envelope = payloads.event_envelope(self.ws, event, eid=eid, channel_id=channel_id)
            body = json.dumps(envelope)
            self._events[eid] = body
        return self._deliver(
            "event_callback",
            envelope,
            body=body,
            content_type="application/json",
            url=self.bot_url,
            event_id=eid,
        )

    def redeliver(
        self, event_id: str, retry_num: int = 1, reason: str = "http_timeout"
    ) -> Delivery:
        """Deliver event ``event_id`` again, as Slack's retries do: the same body, with
        ``X-Slack-Retry-Num`` and ``X-Slack-Retry-Reason``."""
        body = self._events.get(event_id)
        if body is None:
            raise LookupError(f"no event {event_id} was delivered")
        return self._deliver(
            "event_callback",
            json.loads(body),
            body=body,
            content_type="application/json",
            url=self.bot_url,
            event_id=event_id,
            retry_num=retry_num,
            retry_reason=reason,
        )

    def app_home_opened(self, user: str) -> Delivery:
        """``user`` opens the app's Home tab."""
        with self.ws.lock:
            self._user(user)
            channel = self.ws.open_im(user)
            event: Json = {
                "type": "app_home_opened",
                "user": user,
                "channel": channel.id,
                "tab": "home",
                "event_ts": payloads.action_ts(),
            }
            home = self.ws.views.get(self.ws.home_views.get(user, ""))
            if home is not None:
                event["view"] = home.to_api()
        return self.send_event(event, channel_id=channel.id)

    def click(
        self,
        user: str,
        channel: str,
        message_ts: str,
        action_id: str,
        *,
        block_id: str | None = None,
    ) -> Delivery:
        """``user`` clicks the button ``action_id`` of a message (or of an ephemeral
        message shown to them): a ``block_actions`` with the button's value, a
        ``trigger_id`` and a ``response_url``."""
        with self.ws.lock:
            person = self._user(user)
            chan = self._channel(channel)
            message = self.ws.find_message(chan.id, message_ts)
            ephemeral = None
            if message is None:
                ephemeral = next(
                    (
                        e
                        for e in self.ws.ephemerals
                        if e.channel == chan.id and e.ts == message_ts and e.user == user
                    ),
                    None,
                )
                if ephemeral is None:
                    raise LookupError(f"no message {message_ts} in {chan.id} that {user} sees")
            blocks = (message.blocks if message else ephemeral.blocks if ephemeral else None) or []
            block, element = _find_element(blocks, action_id, block_id)
            if element.get("type") != "button":
                raise ValueError(f"{action_id} is a {element.get('type')}; click() clicks buttons")
            action: Json = {
                "action_id": action_id,
                "block_id": block.get("block_id"),
                "text": copy.deepcopy(element.get("text")),
                "type": "button",
                "action_ts": payloads.action_ts(),
            }
            if "value" in element:
                action["value"] = element["value"]
            if "style" in element:
                action["style"] = element["style"]
            thread_ts = message.thread_ts if message else ephemeral.thread_ts if ephemeral else None
            payload = payloads.block_actions(
                self.ws,
                user=person,
                channel=chan,
                action=action,
                trigger_id=self._new_trigger(user),
                response_url=self._new_response_url(
                    user,
                    chan.id,
                    "block_actions",
                    message_ts=message.ts if message else None,
                    ephemeral_ts=ephemeral.ts if ephemeral else None,
                    thread_ts=thread_ts,
                ),
                message=message,
                ephemeral_ts=ephemeral.ts if ephemeral else None,
                thread_ts=thread_ts,
            )
        return self._deliver_form(
            "block_actions", payload, {"payload": json.dumps(payload)}, self.interactivity_url
        )

    def submit_view(
        self, user: str, view_id: str, values: dict[str, Any] | None = None
    ) -> Delivery:
        """``user`` submits modal ``view_id``. ``values`` maps a block_id to
        ``{action_id: value}``, or a block_id or action_id straight to a value.
        Returns the delivery; ``.json`` is the bot's answer (``response_action``...).
        Raises :class:`ViewInputError` for what Slack's client itself refuses."""
        with self.ws.lock:
            person = self._user(user)
            view = self._open_view(user, view_id)
            state, errors = _view_state(view, values or {})
            if errors:
                view.errors = errors
                self.ws.touch()
                raise ViewInputError(errors)
            view.values = state
            view.errors = {}
            view.general_error = None
            payload = payloads.view_submission(
                self.ws, user=person, view=view, trigger_id=self._new_trigger(user)
            )
        delivery = self._deliver_form(
            "view_submission", payload, {"payload": json.dumps(payload)}, self.interactivity_url
        )
        self._apply_view_answer(view, delivery)
        return delivery

    def close_view(self, user: str, view_id: str) -> Delivery | None:
        """``user`` closes modal ``view_id``; the bot hears of it with ``notify_on_close``."""
        with self.ws.lock:
            person = self._user(user)
            view = self._open_view(user, view_id)
            self._close_views(user, [view.id], "closed")
            if not view.definition.get("notify_on_close"):
                return None
            payload = payloads.view_closed(self.ws, user=person, view=view)
        return self._deliver_form(
            "view_closed", payload, {"payload": json.dumps(payload)}, self.interactivity_url
        )

    def slash(self, user: str, channel: str, command: str, text: str = "") -> Delivery:
        """``user`` types ``command text`` in ``channel``. The bot's immediate answer is
        shown (ephemeral unless ``response_type: in_channel``), as in Slack."""
        with self.ws.lock:
            person = self._user(user)
            chan = self._channel(channel)
            if command not in self.slash_commands:
                raise ValueError(f"{command} is not a command of this app")
            form = payloads.slash_command(
                self.ws,
                user=person,
                channel=chan,
                command=command,
                text=text,
                response_url=self._new_response_url(user, chan.id, "command"),
                trigger_id=self._new_trigger(user),
            )
        delivery = self._deliver_form("slash_command", dict(form), form, self.commands_url)
        self._apply_command_answer(person, chan, command, text, delivery)
        return delivery

    # -- what tests look at ----------------------------------------------------------

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

    # -- internals: people's messages --------------------------------------------------

    def _user(self, user_id: str) -> User:
        user = self.ws.users.get(user_id)
        if user is None:
            raise LookupError(f"no user {user_id}")
        return user

    def _channel(self, ref: str) -> Channel:
        channel = self.ws.resolve_channel(ref)
        if channel is None:
            raise LookupError(f"no channel {ref}")
        return channel

    def _user_names(self) -> dict[str, str]:
        return {u.name: u.id for u in self.ws.users.values()}

    def _channel_names(self) -> dict[str, str]:
        return {c.name: c.id for c in self.ws.channels.values() if not c.is_im}

    def _add_person_message(
        self, user: str, channel: str, text: str, thread_ts: str | None
    ) -> tuple[Message, list[Json]]:
        ws = self.ws
        self._user(user)
        chan = self._channel(channel)
        if not chan.has_member(user):
            raise ValueError(f"{user} is not in {chan.id}")
        if thread_ts is not None:
            parent = ws.find_message(chan.id, thread_ts)
            if parent is None:
                raise LookupError(f"no message {thread_ts} in {chan.id} to reply to")
            thread_ts = parent.root_ts
        message = ws.add_message(
            Message(
                channel=chan.id,
                ts=ws.next_ts(),
                user=user,
                text=text,
                blocks=rich_text_blocks(text, random_block_id()),
                thread_ts=thread_ts,
                client_msg_id=new_client_msg_id(),
            )
        )
        events: list[Json] = []
        if chan.is_im:
            if "message.im" in self.subscriptions:
                events.append(payloads.message_event(ws, message, chan, "message"))
        elif chan.bot_member:
            if ws.bot_user_id in mentioned_users(text) and "app_mention" in self.subscriptions:
                events.append(payloads.message_event(ws, message, chan, "app_mention"))
            topic = "message.groups" if chan.is_private else "message.channels"
            if topic in self.subscriptions:
                events.append(payloads.message_event(ws, message, chan, "message"))
        return message, events

    # -- internals: deliveries -------------------------------------------------------

    def _new_trigger(self, user: str) -> str:
        trigger_id = payloads.new_trigger_id()
        self.ws.triggers[trigger_id] = Trigger(trigger_id, user, time.monotonic())
        return trigger_id

    def _new_response_url(
        self,
        user: str,
        channel: str,
        kind: str,
        *,
        message_ts: str | None = None,
        ephemeral_ts: str | None = None,
        thread_ts: str | None = None,
    ) -> str:
        target_id = secrets.token_urlsafe(18)
        self.ws.response_targets[target_id] = ResponseTarget(
            id=target_id,
            user=user,
            channel=channel,
            kind=kind,
            message_ts=message_ts,
            ephemeral_ts=ephemeral_ts,
            thread_ts=thread_ts,
        )
        return f"{self.url}/response/{target_id}"

    def _deliver_form(
        self, kind: str, payload: Json, form: dict[str, str], url: str | None
    ) -> Delivery:
        return self._deliver(
            kind, payload, body=urlencode(form), content_type=FORM, url=url or self.bot_url
        )

    def _deliver(
        self,
        kind: str,
        payload: Json,
        *,
        body: str,
        content_type: str,
        url: str | None,
        event_id: str | None = None,
        retry_num: int = 0,
        retry_reason: str | None = None,
    ) -> Delivery:
        if not url:
            raise RuntimeError("set emu.bot_url (the bot's /slack/events URL) first")
        delivery = self._deliverer.send(
            kind=kind,
            url=url,
            body=body,
            content_type=content_type,
            signing_secret=self.signing_secret,
            payload=payload,
            event_id=event_id,
            retry_num=retry_num,
            retry_reason=retry_reason,
        )
        label = kind + (f" {delivery.event_type} {event_id}" if event_id else "")
        if delivery.error:
            self.ws.warn(f"{label}: could not reach the bot at {url}: {delivery.error}")
        elif not delivery.ok:
            self.ws.warn(
                f"{label}: the bot answered HTTP {delivery.status}; "
                "Slack treats that as a failure (and retries events)"
            )
        if delivery.elapsed > self.ack_timeout:
            self.ws.warn(
                f"{label}: the bot took {delivery.elapsed:.1f} s to answer; Slack gives up "
                f"after 3 s (and retries events with X-Slack-Retry-Reason: http_timeout)"
            )
        with self.ws.lock:
            self.deliveries.append(delivery)
            self.ws.touch()
        return delivery

    def _open_view(self, user: str, view_id: str) -> View:
        view = self.ws.views.get(view_id)
        if view is None:
            raise LookupError(f"no view {view_id}")
        if view.user != user or not view.is_open or view.type != "modal":
            raise ValueError(f"view {view_id} is not a modal open for {user}")
        return view

    def _close_views(self, user: str, view_ids: list[str], how: str) -> None:
        stack = self.ws.modal_stacks.get(user, [])
        for view_id in view_ids:
            view = self.ws.views[view_id]
            view.is_open = False
            view.closed_by = how
            if view_id in stack:
                stack.remove(view_id)
        self.ws.touch()

    def _apply_view_answer(self, view: View, delivery: Delivery) -> None:
        """What Slack does with the bot's answer to a view_submission."""
        ws = self.ws
        with ws.lock:
            if not delivery.ok or delivery.elapsed > self.ack_timeout:
                view.general_error = TROUBLE
                ws.touch()
                return
            answer = delivery.json
            if answer is None:
                if delivery.response_body.strip():
                    ws.warn(f"view_submission: non-JSON answer {delivery.response_body!r}")
                self._close_views(view.user, [view.id], "submitted")
                return
            action = answer.get("response_action")
            if action == "errors":
                errors = answer.get("errors")
                inputs = {b.get("block_id") for b in _input_blocks(view)}
                if not isinstance(errors, dict) or not errors:
                    ws.warn("view_submission: response_action errors without an errors object")
                    view.general_error = TROUBLE
                else:
                    unknown = sorted(set(errors) - inputs)
                    if unknown:
                        ws.warn(
                            f"view_submission: errors name {unknown}, which are not input "
                            "block_ids of the view; Slack shows nothing for them"
                        )
                    view.errors = {str(k): str(v) for k, v in errors.items() if k in inputs}
                ws.touch()
            elif action in ("update", "push"):
                new = answer.get("view")
                problems = validate.validate_view(new, expected_type="modal")
                if problems:
                    ws.warn(f"view_submission: response_action {action}: " + "; ".join(problems))
                    view.general_error = TROUBLE
                    ws.touch()
                    return
                assert isinstance(new, dict)
                new = {**new, "blocks": ensure_ids(new.get("blocks", []))}
                if action == "update":
                    view.definition = new
                    view.hash = f"{int(time.time())}.{secrets.token_hex(4)}"
                    view.values = {}
                    ws.touch()
                else:
                    stack = ws.modal_stacks.setdefault(view.user, [])
                    if len(stack) >= 3:
                        ws.warn("view_submission: push beyond 3 views; Slack refuses")
                        view.general_error = TROUBLE
                        ws.touch()
                        return
                    pushed = self.api._new_view(
                        view.user, new, root=view.root_view_id, previous=view.id
                    )
                    stack.append(pushed.id)
                    ws.touch()
            elif action == "clear":
                self._close_views(view.user, list(ws.modal_stacks.get(view.user, [])), "cleared")
            else:
                if action is not None:
                    ws.warn(f"view_submission: unknown response_action {action!r}")
                self._close_views(view.user, [view.id], "submitted")

    def _apply_command_answer(
        self, user: User, channel: Channel, command: str, text: str, delivery: Delivery
    ) -> None:
        """What Slack does with the bot's immediate answer to a slash command."""
        ws = self.ws
        with ws.lock:
            failure = None
            if delivery.error or delivery.elapsed > self.ack_timeout:
                failure = "operation_timeout"
            elif not delivery.ok:
                server_error = (delivery.status or 0) >= 500
                failure = "http_service_error" if server_error else "dispatch_failed"
            body = delivery.response_body.strip()
            if failure is None and body:
                answer = delivery.json
                if answer is None:
                    answer = {"text": body}
                if answer.get("response_type") == "in_channel":
                    # Slack shows the invocation too when the answer is in_channel.
                    ws.add_message(
                        Message(
                            channel=channel.id,
                            ts=ws.next_ts(),
                            user=user.id,
                            text=f"{command} {text}".strip(),
                        )
                    )
                failure = self._show_response(answer, user.id, channel.id, None, "command_response")
                if failure:
                    ws.warn(f"slash_command: the bot's answer failed: {failure}")
            if failure:
                self._slackbot(user.id, channel.id, f'{command} failed with the error "{failure}"')
            ws.touch()

    def _show_response(
        self,
        answer: Json,
        user: str,
        channel: str,
        thread_ts: str | None,
        source: str,
    ) -> str | None:
        """Post a command answer or a response_url message; the error code, if any."""
        ws = self.ws
        text = answer.get("text")
        blocks = answer.get("blocks")
        if blocks is not None:
            if validate.validate_message_blocks(blocks):
                return "invalid_blocks"
            blocks = ensure_ids(blocks)
        if not (isinstance(text, str) and text.strip()) and not blocks:
            return "no_text"
        if blocks and not (isinstance(text, str) and text.strip()):
            ws.warn(f"{source}: blocks without a top-level text fallback")
        thread_ts = answer.get("thread_ts") or thread_ts
        if answer.get("response_type") == "in_channel":
            ws.add_message(
                Message(
                    channel=channel,
                    ts=ws.next_ts(),
                    user=ws.bot_user_id,
                    text=text or "",
                    blocks=blocks,
                    thread_ts=thread_ts,
                    bot_id=ws.bot_id,
                    app_id=ws.app_id,
                )
            )
        else:
            ws.ephemerals.append(
                Ephemeral(
                    channel=channel,
                    user=user,
                    ts=ws.next_ts(),
                    text=text or "",
                    blocks=blocks,
                    thread_ts=thread_ts,
                    source=source,
                )
            )
        ws.touch()
        return None

    def _slackbot(self, user: str, channel: str, text: str) -> None:
        ws = self.ws
        ws.ephemerals.append(
            Ephemeral(
                channel=channel,
                user=user,
                ts=ws.next_ts(),
                text=text,
                sender="slackbot",
                source="emulator",
            )
        )
        ws.touch()

    def _response_url(self, target_id: str, data: Json) -> tuple[int, str]:
        """``POST /response/<id>``: what Slack's response URLs do."""
        ws = self.ws
        with ws.lock:
            target = ws.response_targets.get(target_id)
            if target is None or time.monotonic() - target.created > 30 * 60:
                return 404, "expired_url"
            if target.uses >= 5:
                ws.warn("response_url: used more than 5 times")
                return 404, "used_url"
            target.uses += 1
            if _truthy(data.get("delete_original")):
                return self._delete_original(target)
            if _truthy(data.get("replace_original")):
                return self._replace_original(target, data)
            failure = self._show_response(
                data, target.user, target.channel, target.thread_ts, "response_url"
            )
            if failure:
                ws.warn(f"response_url: {failure}")
                return 400, failure
            return 200, "ok"

    def _delete_original(self, target: ResponseTarget) -> tuple[int, str]:
        ws = self.ws
        if target.message_ts:
            message = ws.find_message(target.channel, target.message_ts)
            if message is not None:
                ws.delete_message(message)
                return 200, "ok"
        if target.ephemeral_ts:
            ws.ephemerals = [e for e in ws.ephemerals if e.ts != target.ephemeral_ts]
            ws.touch()
            return 200, "ok"
        return 404, "message_not_found"

    def _replace_original(self, target: ResponseTarget, data: Json) -> tuple[int, str]:
        ws = self.ws
        text = data.get("text")
        blocks = data.get("blocks")
        if blocks is not None:
            if validate.validate_message_blocks(blocks):
                ws.warn("response_url: replace_original with invalid_blocks")
                return 400, "invalid_blocks"
            blocks = ensure_ids(blocks)
        if not (isinstance(text, str) and text.strip()) and not blocks:
            return 400, "no_text"
        if target.message_ts:
            message = ws.find_message(target.channel, target.message_ts)
            if message is None:
                return 404, "message_not_found"
            message.edits.append(Edit(ws.next_ts(), message.text, copy.deepcopy(message.blocks)))
            message.text = text or ""
            message.blocks = blocks
            message.edited = {"user": ws.bot_user_id, "ts": message.edits[-1].edited_ts}
            ws.touch()
            return 200, "ok"
        if target.ephemeral_ts:
            for e in ws.ephemerals:
                if e.ts == target.ephemeral_ts:
                    e.text = text or ""
                    e.blocks = blocks
            ws.touch()
            return 200, "ok"
        # A slash command's response URL has no original: Slack posts a new message.
        failure = self._show_response(data, target.user, target.channel, None, "response_url")
        return (400, failure) if failure else (200, "ok")

    # -- the web page ----------------------------------------------------------------

    def ui_state(self, user: str | None, since: int | None = None) -> Json:
        ws = self.ws
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
                "ephemerals": self.ephemerals(me),
                "modal": modal,
                "home": home.to_api() if home else None,
                "slash_commands": sorted(self.slash_commands),
                "bot_connected": bool(self.bot_url),
                "warnings": list(ws.warnings),
            }

    def _ui_post(self, data: Json) -> Json:
        user = str(data.get("user", ""))
        channel = str(data.get("channel", ""))
        typed = str(data.get("text", ""))
        thread_ts = data.get("thread_ts") or None
        if not typed.strip():
            return {"ok": False, "error": "empty message"}
        if typed.lstrip().startswith("/"):
            command, _, rest = typed.strip().partition(" ")
            if command not in self.slash_commands:
                with self.ws.lock:
                    self._slackbot(
                        user,
                        self._channel(channel).id,
                        f"{command} is not a valid command. In Slack, all messages that start "
                        'with the "/" character are interpreted as commands.',
                    )
                return {"ok": False, "error": "unknown_command"}
            delivery = self.slash(user, channel, command, rest.strip())
            return {"ok": delivery.ok, "status": delivery.status}
        with self.ws.lock:
            text = client_format(typed, self._user_names(), self._channel_names())
            message, events = self._add_person_message(user, channel, text, thread_ts)
        if not self.bot_url:
            return {"ok": True, "ts": message.ts, "delivered": 0}
        deliveries = [self.send_event(e, channel_id=message.channel) for e in events]
        return {"ok": True, "ts": message.ts, "delivered": len(deliveries)}

    def _ui_submit(self, data: Json) -> Json:
        user = str(data.get("user", ""))
        values = data.get("values") or {}
        try:
            delivery = self.submit_view(user, str(data.get("view_id", "")), values)
        except ViewInputError as exc:
            return {"ok": False, "errors": exc.errors}
        return {"ok": delivery.ok, "answer": delivery.json}

    def _ui(self, path: str, data: Json) -> Json:
        user = str(data.get("user", ""))
        if path == "/ui/post":
            return self._ui_post(data)
        if path == "/ui/click":
            delivery = self.click(
                user,
                str(data.get("channel", "")),
                str(data.get("ts", "")),
                str(data.get("action_id", "")),
                block_id=data.get("block_id") or None,
            )
            return {"ok": delivery.ok, "status": delivery.status}
        if path == "/ui/submit":
            return self._ui_submit(data)
        if path == "/ui/close":
            self.close_view(user, str(data.get("view_id", "")))
            return {"ok": True}
        if path == "/ui/home":
            if not self.bot_url:
                return {"ok": True, "delivered": 0}
            return {"ok": self.app_home_opened(user).ok}
        raise LookupError(f"no UI endpoint {path}")

    # -- HTTP --------------------------------------------------------------------------

    def _serve(self, handler: _Handler, verb: str) -> None:
        try:
            self._route(handler, verb)
        except (BrokenPipeError, ConnectionResetError):
            return
        except Exception:
            self.ws.warn(f"emulator bug serving {verb} {handler.path}\n{traceback.format_exc()}")
            _send(handler, 500, {"ok": False, "error": "internal_error"})

    def _route(self, handler: _Handler, verb: str) -> None:
        parts = urlsplit(handler.path)
        path = parts.path
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        body = _read_body(handler) if verb == "POST" else b""
        content_type = (handler.headers.get("Content-Type") or "").split(";")[0].strip().lower()

        if path in ("/api/ui/state", "/ui/state") and verb == "GET":
            since = query.get("since", "")
            _send(handler, 200, self.ui_state(query.get("user"), int(since) if since else None))
        elif path.startswith("/api/"):
            self._serve_api(handler, path[len("/api/") :], verb, query, body, content_type)
        elif path.startswith("/response/") and verb == "POST":
            try:
                data = _parse_body(body, content_type)
                if isinstance(data.get("payload"), str):
                    data = json.loads(data["payload"])
            except ValueError:
                _send_text(handler, 400, "invalid_payload", "text/html")
                return
            status, text = self._response_url(path[len("/response/") :], data)
            _send_text(handler, status, text, "text/html")
        elif path.startswith("/ui/") and verb == "POST":
            try:
                answer = self._ui(path, _parse_body(body, content_type))
            except (LookupError, ValueError, RuntimeError) as exc:
                _send(handler, 400, {"ok": False, "error": str(exc)})
                return
            _send(handler, 200, answer)
        elif path.startswith("/archives/") and verb == "GET":
            segments = path.split("/")
            channel = segments[2] if len(segments) > 2 else ""
            target = f"/?channel={channel}"
            if len(segments) > 3 and segments[3].startswith("p"):
                digits = segments[3][1:]
                target += f"&ts={digits[:-6]}.{digits[-6:]}"
            handler.send_response(HTTPStatus.FOUND)
            handler.send_header("Location", target)
            handler.send_header("Content-Length", "0")
            handler.end_headers()
        elif verb == "GET" and path in ("/", "/index.html", "/static/app.js", "/static/app.css"):
            name = "index.html" if path in ("/", "/index.html") else path.rsplit("/", 1)[1]
            content = (WEB_DIR / name).read_bytes()
            _send_bytes(handler, 200, content, STATIC_FILES[name], cache=False)
        elif path == "/favicon.ico":
            handler.send_response(HTTPStatus.NO_CONTENT)
            handler.send_header("Content-Length", "0")
            handler.end_headers()
        elif path == "/healthz":
            _send(handler, 200, {"ok": True})
        else:
            _send(handler, 404, {"ok": False, "error": "not_found"})

    def _serve_api(
        self,
        handler: _Handler,
        method: str,
        verb: str,
        query: dict[str, str],
        body: bytes,
        content_type: str,
    ) -> None:
        data: Json = dict(query)
        try:
            data.update(_parse_body(body, content_type))
        except ValueError:
            _send(handler, 200, {"ok": False, "error": "invalid_json"})
            return
        auth = handler.headers.get("Authorization") or ""
        token = auth[len("Bearer ") :].strip() if auth.startswith("Bearer ") else None
        result: ApiResult = self.api.handle(method, data, token=token, http_method=verb)
        if result.drop or result.body is None:
            handler.close_connection = True
            with contextlib.suppress(OSError):
                handler.connection.shutdown(socket.SHUT_RDWR)
            return
        _send(handler, result.status, result.body, result.headers)


# -- helpers -------------------------------------------------------------------------------


def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _read_body(handler: _Handler) -> bytes:
    length = int(handler.headers.get("Content-Length") or 0)
    if length > MAX_BODY:
        raise ValueError("request body too large")
    return handler.rfile.read(length) if length else b""


def _parse_body(body: bytes, content_type: str) -> Json:
    """A JSON or form body as a dict (``{}`` if empty); ValueError for malformed JSON."""
    if not body:
        return {}
    text = body.decode("utf-8", "replace")
    if content_type == "application/json" or (not content_type and text.lstrip().startswith("{")):
        try:
            parsed = json.loads(text)
        except ValueError:
            raise ValueError("invalid JSON body") from None
        if not isinstance(parsed, dict):
            raise ValueError("the JSON body is not an object")
        return parsed
    return dict(parse_qsl(text, keep_blank_values=True))


def _send(
    handler: _Handler, status: int, body: Json, headers: dict[str, str] | None = None
) -> None:
    _send_bytes(
        handler, status, json.dumps(body).encode(), "application/json; charset=utf-8", headers
    )


def _send_text(handler: _Handler, status: int, text: str, content_type: str) -> None:
    _send_bytes(handler, status, text.encode(), f"{content_type}; charset=utf-8")


def _send_bytes(
    handler: _Handler,
    status: int,
    content: bytes,
    content_type: str,
    headers: dict[str, str] | None = None,
    *,
    cache: bool = False,
) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(content)))
    if not cache:
        handler.send_header("Cache-Control", "no-store")
    for key, value in (headers or {}).items():
        handler.send_header(key, value)
    handler.end_headers()
    handler.wfile.write(content)


def _find_element(blocks: list[Json], action_id: str, block_id: str | None) -> tuple[Json, Json]:
    for block in blocks:
        if block_id is not None and block.get("block_id") != block_id:
            continue
        candidates: list[Any] = []
        if block.get("type") == "actions":
            candidates = list(block.get("elements") or [])
        for key in ("accessory", "element"):
            if isinstance(block.get(key), dict):
                candidates.append(block[key])
        for element in candidates:
            if isinstance(element, dict) and element.get("action_id") == action_id:
                return block, element
    raise LookupError(f"no element with action_id {action_id!r} in the message")


def _input_blocks(view: View) -> list[Json]:
    return [
        b
        for b in view.definition.get("blocks", [])
        if isinstance(b, dict) and b.get("type") == "input"
    ]


_TEXT_INPUTS = ("plain_text_input", "email_text_input", "url_text_input", "number_input")


def _view_state(view: View, values: dict[str, Any]) -> tuple[Json, dict[str, str]]:
    """``state.values`` for a submission, and the errors Slack's client would show."""
    state: Json = {}
    errors: dict[str, str] = {}
    used: set[str] = set()
    for block in _input_blocks(view):
        block_id = str(block.get("block_id"))
        element = block.get("element") or {}
        action_id = str(element.get("action_id"))
        kind = str(element.get("type"))
        given: Any = None
        if isinstance(values.get(block_id), dict):
            given = values[block_id].get(action_id)
            used.add(block_id)
        elif block_id in values:
            given = values[block_id]
            used.add(block_id)
        elif action_id in values:
            given = values[action_id]
            used.add(action_id)
        elif kind in _TEXT_INPUTS:
            given = element.get("initial_value")
        if kind in _TEXT_INPUTS:
            value = None if given in (None, "") else str(given)
            entry: Json = {"type": kind, "value": value}
            if value is None and not block.get("optional"):
                errors[block_id] = REQUIRED_FIELD
            elif value is not None:
                if len(value) < int(element.get("min_length", 0)):
                    errors[block_id] = f"Must be at least {element['min_length']} characters."
                elif len(value) > int(element.get("max_length", 3000)):
                    errors[block_id] = f"Must be at most {element['max_length']} characters."
        elif isinstance(given, dict):
            entry = {"type": kind, **given}
        else:
            entry = {"type": kind}
            if given is None and not block.get("optional"):
                errors[block_id] = REQUIRED_FIELD
        state[block_id] = {action_id: entry}
    unknown = set(values) - used
    if unknown:
        raise ValueError(f"no input in view {view.id} for {sorted(unknown)}")
    return state, errors
