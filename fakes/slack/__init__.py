"""A local Slack for tests and the demo: Web API, signed deliveries, a web page.

One :class:`SlackEmulator` is one workspace with one app (the bot)::

    with SlackEmulator(bot_url="http://127.0.0.1:3000/slack/events") as emu:
        # the bot: WebClient(token=emu.bot_token, base_url=emu.api_url), emu.signing_secret
        ts, delivery = emu.mention("U_ALICE", "C_GENERAL", "@agents in acme/api: fix it")
        reply = emu.wait_for(lambda: emu.thread("C_GENERAL", ts)[1:])[0]
        emu.click("U_ALICE", "C_GENERAL", reply["ts"], "agents_approve")

People act with ``post``, ``mention``, ``click``, ``submit_view``, ``close_view``,
``slash``, ``app_home_opened``, ``send_event`` and ``redeliver`` (Slack's retries).
Tests look with ``messages``, ``thread``, ``message``, ``edits``, ``reactions``,
``ephemerals``, ``views``/``view``/``modal``/``home``, ``calls``, ``deliveries`` and
``warnings``, and wait with ``wait_for`` / ``wait_for_message``. ``fail_next`` and
``rate_limit`` make the Web API fail like Slack under load. The page is at ``emu.url``;
``python -m fakes.slack --bot-url URL`` runs it on its own.

The modules, one concern each: ``server`` (the emulator, assembled), ``people`` (what
people do), ``answers`` (what Slack does with the bot's answers), ``looks`` (what tests
look at), ``forms`` (modal inputs), ``routes`` (HTTP) and ``ui`` (the page's endpoints);
``webapi`` (auth, faults, dispatch) with ``args`` and the methods in ``api_chat``,
``api_conversations`` and ``api_views``; ``state`` and ``objects`` (the workspace);
``payloads`` (request bodies), ``delivery`` (signing), ``validate`` (Block Kit) and
``text`` (what a client does to typed text).
"""

from fakes.slack.delivery import Delivery, sign
from fakes.slack.forms import ViewInputError
from fakes.slack.server import SlackEmulator
from fakes.slack.webapi import ApiCall

__all__ = ["ApiCall", "Delivery", "SlackEmulator", "ViewInputError", "sign"]
