"""The App Home tab shows the same status view as ``/agents status``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rq import Queue
from slack_bolt import App
from slack_sdk import WebClient

from bot.blocks import status_blocks
from bot.services import Services
from jobs.status import collect
from runs.record import Run


def home_view(services: Services, visible: Callable[[Run], bool] | None = None) -> dict[str, Any]:
    """The status view; runs ``visible`` rejects (private to others) are shown by label."""
    queue = Queue(services.settings.queue, connection=services.connection)
    _fallback, blocks = status_blocks(collect(services.store, queue), visible)
    return {"type": "home", "blocks": blocks}


def register(app: App, services: Services) -> None:
    @app.event("app_home_opened")
    def on_home(event: dict[str, Any], client: WebClient) -> None:
        if event.get("tab", "home") == "home":
            user = event["user"]
            view = home_view(services, services.visibility(client, user))
            client.views_publish(user_id=user, view=view)
