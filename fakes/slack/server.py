"""The Slack emulator: Web API, signed deliveries to the bot, response URLs, a web page.

    with SlackEmulator(bot_url="http://127.0.0.1:3000/slack/events") as emu:
        client = WebClient(token=emu.bot_token, base_url=emu.api_url)
        ts, delivery = emu.mention("U_ALICE", "C_GENERAL", "@agents in acme/api: fix it")
        emu.wait_for(lambda: emu.thread("C_GENERAL", ts)[1:])

One HTTP server on 127.0.0.1 (:mod:`fakes.slack.routes`) serves ``/api/<method>``
(point ``WebClient(base_url=...)`` at :attr:`SlackEmulator.api_url`), ``/response/<id>``
(response URLs), and the web page at ``/`` with its JSON endpoints under ``/ui/``.
This module assembles the emulator from its parts and owns its lifecycle and its
workspace's people and channels.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterable
from typing import Any

from fakes.slack import ui
from fakes.slack.delivery import Deliverer, Delivery
from fakes.slack.looks import Looks
from fakes.slack.objects import Channel, User
from fakes.slack.people import People
from fakes.slack.routes import Server
from fakes.slack.state import Workspace
from fakes.slack.webapi import WebApi

Json = dict[str, Any]

DEFAULT_SUBSCRIPTIONS = frozenset(
    {"app_mention", "message.channels", "message.groups", "message.im"}
)


class SlackEmulator(People, Looks):
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
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        if seed:
            self.add_user("U_ALICE", "alice", real_name="Alice Example")
            self.add_user("U_BOB", "bob", real_name="Bob Example")
            self.add_channel("C_GENERAL", "general", topic="Ask @agents for a change")

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> SlackEmulator:
        if self._server is not None:
            return self
        self._server = Server((self._host, self._port), self)
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

    # -- the web page -----------------------------------------------------------------

    def ui_state(self, user: str | None, since: int | None = None) -> Json:
        """What the web page shows ``user`` (see :func:`fakes.slack.ui.state`)."""
        return ui.state(self, user, since)
