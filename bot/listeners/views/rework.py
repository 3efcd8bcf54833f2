"""The Rework modal: a multi-line feedback field; empty feedback is an inline error."""

from __future__ import annotations

import json
import logging
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.blocks import cut, escape
from bot.listeners.events.mentions import reply
from bot.listeners.views.forms import (
    FORM_NOT_MINE,
    feedback_field,
    field_text,
    submitted_for,
    tell_privately,
)
from bot.services import Services
from jobs import decisions
from runs.record import Run

log = logging.getLogger(__name__)

CALLBACK_ID = "agents_rework"
BLOCK_ID = "feedback"
ACTION_ID = "feedback_text"
EMPTY_ERROR = "Tell me what to change: this can't be empty."


def rework_modal(run: Run) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": CALLBACK_ID,
        "private_metadata": json.dumps({"run": run.id, "iteration": run.iteration}),
        "title": {"type": "plain_text", "text": cut(f"Rework {run.label}", 24)},
        "submit": {"type": "plain_text", "text": "Rework"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": cut(f"*{escape(run.request)}*", 3000)},
            },
            feedback_field(BLOCK_ID, ACTION_ID, "What should change?"),
        ],
    }


def feedback_of(view: dict[str, Any]) -> str:
    return field_text(view, BLOCK_ID, ACTION_ID)


def handle_submission(
    ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient, services: Services
) -> str:
    feedback = feedback_of(view)
    if not feedback:
        ack(response_action="errors", errors={BLOCK_ID: EMPTY_ERROR})
        return "empty"
    ack()
    user = body["user"]["id"]
    target = submitted_for(view, "iteration")
    if target is None:
        log.warning("rework submitted for an unknown run: %r", view.get("private_metadata"))
        client.chat_postEphemeral(channel=user, user=user, text=FORM_NOT_MINE)
        return "missing"
    run_id, iteration = target
    outcome = decisions.request_rework(
        services.queue,
        run_id,
        user,
        feedback,
        approvers=services.settings.approvers,
        iteration=iteration,
    )
    run = outcome.run
    if not outcome.done or run is None:
        tell_privately(client, user, outcome)
        return outcome.kind
    reply(
        client,
        run.channel or "",
        run.thread_ts or "",
        f"<@{user}> asked for rework: “{escape((outcome.quoted or '')[:500])}”. Starting "
        f"iteration {run.iteration} on the same branch.",
    )
    return "reworking"


def register(app: App, services: Services) -> None:
    @app.view(CALLBACK_ID)
    def on_submit(ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient) -> None:
        handle_submission(ack, body, view, client, services)
