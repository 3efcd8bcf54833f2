"""The App Home tab shows the same status view as ``/agents status``."""

from __future__ import annotations

from typing import Any

from rq import Queue
from slack_bolt import App
from slack_sdk import WebClient

from bot.blocks import status_blocks
from bot.services import Services
from jobs.status import collect


def home_view(services: Services) -> dict[str, Any]:
    queue = Queue(services.settings.queue, connection=services.connection)
    _fallback, blocks = status_blocks(collect(services.store, queue))
    return {"type": "home", "blocks": blocks}


def register(app: App, services: Services) -> None:
    @app.event("app_home_opened")
    def on_home(event: dict[str, Any], client: WebClient) -> None:
        if event.get("tab", "home") == "home":
            client.views_publish(user_id=event["user"], view=home_view(services))
