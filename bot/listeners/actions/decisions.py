"""Approve, Rework and Cancel buttons: each asks :mod:`jobs.decisions` and shows the
answer to the clicker only (an ephemeral message); the thread changes through the run.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.blocks import ACTION_APPROVE, ACTION_CANCEL, ACTION_REWORK
from bot.listeners.views.rework import rework_modal
from bot.services import Services
from jobs import decisions
from jobs.decisions import Outcome

log = logging.getLogger(__name__)

NOT_MINE = "That button is not one of mine."


def ephemeral(client: WebClient, body: dict[str, Any], text: str) -> None:
    channel = (body.get("channel") or {}).get("id") or body.get("container", {}).get("channel_id")
    message = body.get("message") or {}
    client.chat_postEphemeral(
        channel=channel,
        user=body["user"]["id"],
        text=text,
        thread_ts=message.get("thread_ts") or message.get("ts"),
    )


def drawn_for(body: dict[str, Any]) -> tuple[int, int | None] | None:
    """The run id and the iteration a button was drawn for; None if it isn't ours."""
    try:
        value = json.loads(body["actions"][0]["value"])
        run_id = int(value["run"])
        iteration = value.get("iteration")
        return run_id, None if iteration is None else int(iteration)
    except (ValueError, KeyError, TypeError, AttributeError, IndexError):
        return None


def _tell(client: WebClient, body: dict[str, Any], outcome: Outcome) -> str:
    """Tell the clicker what happened unless it was what they asked for; for logs."""
    if not outcome.done:
        ephemeral(client, body, outcome.text)
    return outcome.kind


def handle_approve(body: dict[str, Any], client: WebClient, services: Services) -> str:
    """Returns what happened, for logs."""
    drawn = drawn_for(body)
    if drawn is None:
        ephemeral(client, body, NOT_MINE)
        return "missing"
    outcome = decisions.request_approval(
        services.queue,
        drawn[0],
        body["user"]["id"],
        approvers=services.settings.approvers,
        iteration=drawn[1],
    )
    return _tell(client, body, outcome)


def handle_rework(body: dict[str, Any], client: WebClient, services: Services) -> str:
    drawn = drawn_for(body)
    if drawn is None:
        ephemeral(client, body, NOT_MINE)
        return "missing"
    outcome = decisions.may_rework(
        services.store,
        drawn[0],
        body["user"]["id"],
        approvers=services.settings.approvers,
        iteration=drawn[1],
    )
    if not outcome.done or outcome.run is None:
        return _tell(client, body, outcome)
    client.views_open(trigger_id=body["trigger_id"], view=rework_modal(outcome.run))
    return "modal"


def handle_cancel(body: dict[str, Any], client: WebClient, services: Services) -> str:
    drawn = drawn_for(body)
    if drawn is None:
        ephemeral(client, body, NOT_MINE)
        return "missing"
    outcome = decisions.cancel(
        services.queue, drawn[0], body["user"]["id"], approvers=services.settings.approvers
    )
    return _tell(client, body, outcome)


def register(app: App, services: Services) -> None:
    @app.action(ACTION_APPROVE)
    def on_approve(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        handle_approve(body, client, services)

    @app.action(ACTION_REWORK)
    def on_rework(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        handle_rework(body, client, services)

    @app.action(ACTION_CANCEL)
    def on_cancel(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        handle_cancel(body, client, services)
