"""Fixtures: a running emulator, a recording bot and a tiny bolt bot wired to it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from slack_bolt import App

from fakes.slack import SlackEmulator
from tests.fakes.slack.tinybot import BoltServer, RecordingBot, TinyBotLog, tiny_bolt_app


@pytest.fixture
def emu() -> Iterator[SlackEmulator]:
    with SlackEmulator() as emulator:
        yield emulator


@pytest.fixture
def recorder(emu: SlackEmulator) -> Iterator[RecordingBot]:
    bot = RecordingBot(emu.signing_secret)
    emu.bot_url = bot.url
    yield bot
    bot.close()


@dataclass
class TinyBot:
    app: App
    log: TinyBotLog
    server: BoltServer


@pytest.fixture
def tinybot(emu: SlackEmulator) -> Iterator[TinyBot]:
    app, log = tiny_bolt_app(emu.api_url, emu.bot_token, emu.signing_secret)
    server = BoltServer(app)
    emu.bot_url = server.url
    yield TinyBot(app, log, server)
    server.close()
    assert log.errors == []
