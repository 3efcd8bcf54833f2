"""The repository picker's two halves: the options Slack loads as the user types, and
the pick, which starts the run the mention asked for. Only the asker may pick; the
pending request is taken in one step, so two picks start one run."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.listeners.events.mentions import start_run
from bot.repo_picker import ACTION_PICK_REPO, picked_blocks, repo_options, token_of
from bot.requests import Ask, parse
from bot.services import Services
from runs.record import Run

log = logging.getLogger(__name__)

#: Recent runs whose repositories the picker offers.
RECENT_RUNS = 50


def options_for(services: Services, typed: str) -> list[dict[str, Any]]:
    known = services.channel_repos.known() + [
        run.repo for run in services.store.list_recent(RECENT_RUNS)
    ]
    return repo_options(typed, allowed=services.settings.allowed_repos, known=known)


def handle_pick(body: dict[str, Any], client: WebClient, services: Services) -> Run | None:
    """Start the pending request on the picked repository, if the picker is its asker's."""
    action = (body.get("actions") or [{}])[0]
    user = str((body.get("user") or {}).get("id", ""))
    channel = str((body.get("channel") or {}).get("id", ""))
    message_ts = str((body.get("container") or {}).get("message_ts", ""))
    token = token_of(str(action.get("block_id") or ""))
    repo = str((action.get("selected_option") or {}).get("value", ""))
    pending = services.pending_asks.peek(token) if token else None

    def tell(text: str) -> None:
        thread = str((body.get("container") or {}).get("thread_ts") or message_ts)
        client.chat_postEphemeral(channel=channel, user=user, thread_ts=thread, text=text)

    if pending is None or token is None:
        tell("That request was already started, or it expired. Mention me again to ask.")
        return None
    if user != pending.user:
        tell(
            f"Only <@{pending.user}> (who asked) can pick the repository for this request. "
            "Nothing was changed."
        )
        return None
    parsed = parse(f"in {repo}: {pending.text}", channel=channel, settings=services.settings)
    if not isinstance(parsed, Ask):
        tell(getattr(parsed, "message", "That is not a repository I can work on."))
        return None
    if services.pending_asks.take(token) is None:
        return None  # another pick of the same menu took it first
    # Said in the thread, not drawn over the picker: listeners never edit messages (the
    # reporter is the one writer); a later pick in the same menu is told it started.
    fallback, blocks = picked_blocks(parsed.repo, user)
    try:
        client.chat_postMessage(
            channel=channel, thread_ts=pending.thread_ts, text=fallback, blocks=blocks
        )
    except SlackApiError as exc:
        log.warning("could not say which repository was picked in %s: %s", channel, exc)
    return start_run(client, services, pending, parsed.repo)


def register(app: App, services: Services) -> None:
    @app.options(ACTION_PICK_REPO)
    def on_options(ack: Ack, payload: dict[str, Any]) -> None:
        ack(options=options_for(services, str(payload.get("value") or "")[:200]))

    @app.action(ACTION_PICK_REPO)
    def on_pick(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        handle_pick(body, client, services)
