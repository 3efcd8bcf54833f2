"""The bolt app, built by a factory: nothing Slack-shaped exists at import time."""

from __future__ import annotations

import logging
from concurrent.futures import Executor

from slack_bolt import App
from slack_sdk import WebClient

from bot.clean import clean_payload
from bot.listeners.actions import decisions, pauses, repo_picker
from bot.listeners.commands import agents
from bot.listeners.events import home, mentions
from bot.listeners.views import revise_plan, rework
from bot.services import Services

LISTENERS = (mentions, home, decisions, pauses, repo_picker, rework, revise_plan, agents)


def create_app(
    services: Services, client: WebClient, *, listener_executor: Executor | None = None
) -> App:
    """An app whose listeners all share ``services``; ``client`` talks to Slack.

    Listeners run after the ack, on ``listener_executor`` (bolt's pool by default).
    """
    settings = services.settings
    secret = settings.slack_signing_secret
    app = App(
        client=client,
        signing_secret=secret.get_secret_value() if secret else "",
        # Socket Mode has no HTTP requests to verify; HTTP mode always verifies.
        request_verification_enabled=secret is not None,
        token_verification_enabled=False,
        logger=logging.getLogger("bot.app"),
        listener_executor=listener_executor,
    )
    # Before any listener: every string of the payload made storable (bot.clean).
    app.use(clean_payload)
    for module in LISTENERS:
        module.register(app, services)
    return app
