"""``agents bot``: the Slack surface."""

from __future__ import annotations

import argparse

from core import settings
from core.exceptions import NotBuiltYet


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "bot",
        help="run the Slack bot (Socket Mode with SLACK_APP_TOKEN, else HTTP mode)",
        description="Run the Slack bot. Needs SLACK_BOT_TOKEN and either SLACK_APP_TOKEN "
        "(Socket Mode) or SLACK_SIGNING_SECRET (HTTP mode).",
    )
    parser.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    settings.load(settings.BotSettings)
    raise NotBuiltYet("the Slack surface (mentions, threads, buttons, /agents) is not built yet")
