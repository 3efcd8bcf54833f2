"""The Rework modal: a multi-line feedback field; empty feedback is an inline error."""

from __future__ import annotations

import json
import logging
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.blocks import cut, escape
from bot.listeners.events.mentions import reply
from bot.services import Services
from jobs import decisions
from runs.record import Run

log = logging.getLogger(__name__)

CALLBACK_ID = "agents_rework"
BLOCK_ID = "feedback"
ACTION_ID = "feedback_text"
MAX_FEEDBACK = 3000
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
            {
                "type": "input",
                "block_id": BLOCK_ID,
                "label": {"type": "plain_text", "text": "What should change?"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": ACTION_ID,
                    "multiline": True,
                    "max_length": MAX_FEEDBACK,
                },
            },
        ],
    }


def feedback_of(view: dict[str, Any]) -> str:
    value = view["state"]["values"].get(BLOCK_ID, {}).get(ACTION_ID, {}).get("value")
    return (value or "").strip()


def handle_submission(
    ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient, services: Services
) -> str:
    feedback = feedback_of(view)
    if not feedback:
        ack(response_action="errors", errors={BLOCK_ID: EMPTY_ERROR})
        return "empty"
    ack()
    user = body["user"]["id"]
    try:
        meta = json.loads(view["private_metadata"])
        run_id, iteration = int(meta["run"]), meta.get("iteration")
    except (ValueError, KeyError, TypeError):
        log.warning("rework submitted for an unknown run: %r", view.get("private_metadata"))
        client.chat_postEphemeral(
            channel=user, user=user, text="That form is not one of mine; nothing was changed."
        )
        return "missing"
    outcome = decisions.request_rework(
        services.queue,
        run_id,
        user,
        feedback,
        approvers=services.settings.approvers,
        iteration=None if iteration is None else int(iteration),
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
