"""The App Home tab shows the same status view as ``/agents status``, then the stats of
the repositories the user asked runs for (as ``/agents stats`` shows them)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rq import Queue
from slack_bolt import App
from slack_sdk import WebClient

from bot.blocks import section, status_blocks
from bot.listeners.commands.agents import DEFAULT_WINDOW
from bot.services import Services
from bot.stats_blocks import stats_blocks
from jobs.status import collect
from runs.outcomes import OutcomeStore
from runs.record import Run, utcnow
from runs.stats import parse_window, stats_report

#: Slack's limit on a Home tab's blocks.
MAX_HOME_BLOCKS = 100


def repo_stats(
    services: Services, user: str, where: Callable[[str, str | None], bool] | None
) -> list[dict[str, Any]]:
    """The figures of the repositories ``user`` asked runs for, over the default window."""
    outcomes = OutcomeStore(services.connection, prefix=services.store.prefix)
    known = outcomes.since(None)
    mine = {o.repo for o in known if o.requester == user}
    if not mine:
        return []
    visible = None if where is None else (lambda o: where(o.requester, o.channel))
    since = utcnow() - parse_window(DEFAULT_WINDOW)
    report = stats_report(known, since=since, visible=visible, repos=mine)
    _fallback, blocks = stats_blocks(report, DEFAULT_WINDOW, outcomes.refreshed_at())
    return [{"type": "divider"}, section("*Your repositories*"), *blocks]


def home_view(
    services: Services,
    visible: Callable[[Run], bool] | None = None,
    *,
    user: str | None = None,
    where: Callable[[str, str | None], bool] | None = None,
) -> dict[str, Any]:
    """The status view; runs ``visible`` rejects (private to others) are shown by label.
    With ``user``, the stats of their repositories follow."""
    queue = Queue(services.settings.queue, connection=services.connection)
    _fallback, blocks = status_blocks(collect(services.store, queue), visible)
    if user is not None:
        blocks = blocks + repo_stats(services, user, where)
    return {"type": "home", "blocks": blocks[:MAX_HOME_BLOCKS]}


def register(app: App, services: Services) -> None:
    @app.event("app_home_opened")
    def on_home(event: dict[str, Any], client: WebClient) -> None:
        if event.get("tab", "home") == "home":
            user = event["user"]
            view = home_view(
                services,
                services.visibility(client, user),
                user=user,
                where=services.visibility_where(client, user),
            )
            client.views_publish(user_id=user, view=view)
