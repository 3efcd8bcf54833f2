"""The Revise plan modal: what should change in the plan; empty is an inline error."""

from __future__ import annotations

import json
import logging
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.blocks import cut
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

CALLBACK_ID = "agents_revise_plan"
BLOCK_ID = "plan_feedback"
ACTION_ID = "plan_feedback_text"
EMPTY_ERROR = "Tell me what to change in the plan: this can't be empty."


def revise_modal(run: Run) -> dict[str, Any]:
    version = run.artifacts.latest_plan or None
    return {
        "type": "modal",
        "callback_id": CALLBACK_ID,
        "private_metadata": json.dumps({"run": run.id, "version": version}),
        "title": {"type": "plain_text", "text": cut(f"Revise plan {run.label}", 24)},
        "submit": {"type": "plain_text", "text": "Revise"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            feedback_field(BLOCK_ID, ACTION_ID, f"What should change in plan v{version}?"),
        ],
    }


def handle_revision(
    ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient, services: Services
) -> str:
    feedback = field_text(view, BLOCK_ID, ACTION_ID)
    if not feedback:
        ack(response_action="errors", errors={BLOCK_ID: EMPTY_ERROR})
        return "empty"
    ack()
    user = body["user"]["id"]
    target = submitted_for(view, "version")
    if target is None:
        client.chat_postEphemeral(channel=user, user=user, text=FORM_NOT_MINE)
        return "missing"
    run_id, version = target
    outcome = decisions.revise_plan(
        services.queue,
        run_id,
        user,
        feedback,
        approvers=services.settings.approvers,
        version=version,
    )
    if not outcome.done or outcome.run is None:
        tell_privately(client, user, outcome)
        return outcome.kind
    return "revising"


def register(app: App, services: Services) -> None:
    @app.view(CALLBACK_ID)
    def on_submit(ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient) -> None:
        handle_revision(ack, body, view, client, services)
