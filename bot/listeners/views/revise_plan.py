"""The Revise plan modal: what should change in the plan; empty is an inline error."""

from __future__ import annotations

import json
import logging
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.blocks import cut
from bot.services import Services
from jobs import decisions
from runs.record import Run

log = logging.getLogger(__name__)

CALLBACK_ID = "agents_revise_plan"
BLOCK_ID = "plan_feedback"
ACTION_ID = "plan_feedback_text"
MAX_FEEDBACK = 3000
EMPTY_ERROR = "Tell me what to change in the plan: this can't be empty."


def revise_modal(run: Run) -> dict[str, Any]:
    version = run.artifacts.plans[-1].get("version") if run.artifacts.plans else None
    return {
        "type": "modal",
        "callback_id": CALLBACK_ID,
        "private_metadata": json.dumps({"run": run.id, "version": version}),
        "title": {"type": "plain_text", "text": cut(f"Revise plan {run.label}", 24)},
        "submit": {"type": "plain_text", "text": "Revise"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {
                "type": "input",
                "block_id": BLOCK_ID,
                "label": {"type": "plain_text", "text": f"What should change in plan v{version}?"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": ACTION_ID,
                    "multiline": True,
                    "max_length": MAX_FEEDBACK,
                },
            },
        ],
    }


def handle_revision(
    ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient, services: Services
) -> str:
    value = view["state"]["values"].get(BLOCK_ID, {}).get(ACTION_ID, {}).get("value")
    feedback = (value or "").strip()
    if not feedback:
        ack(response_action="errors", errors={BLOCK_ID: EMPTY_ERROR})
        return "empty"
    ack()
    user = body["user"]["id"]
    try:
        meta = json.loads(view["private_metadata"])
        run_id, version = int(meta["run"]), meta.get("version")
    except (ValueError, KeyError, TypeError):
        client.chat_postEphemeral(
            channel=user, user=user, text="That form is not one of mine; nothing was changed."
        )
        return "missing"
    outcome = decisions.revise_plan(
        services.queue,
        run_id,
        user,
        feedback,
        approvers=services.settings.approvers,
        version=None if version is None else int(version),
    )
    run = outcome.run
    if not outcome.done or run is None:
        client.chat_postEphemeral(
            channel=(run.channel if run else None) or user,
            user=user,
            thread_ts=run.thread_ts if run else None,
            text=outcome.text,
        )
        return outcome.kind
    return "revising"


def register(app: App, services: Services) -> None:
    @app.view(CALLBACK_ID)
    def on_submit(ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient) -> None:
        handle_revision(ack, body, view, client, services)
