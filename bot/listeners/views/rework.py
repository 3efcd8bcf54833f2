"""The Rework modal: a multi-line feedback field; empty feedback is an inline error."""

from __future__ import annotations

import json
import logging
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.blocks import cut, escape
from bot.listeners.events.mentions import reply
from bot.requests import may_decide
from bot.services import Services
from process.exceptions import InvalidTransition, RunNotFound
from runs.record import Run, approval_in_progress

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
        run_id = int(json.loads(view["private_metadata"])["run"])
        run = services.store.get(run_id)
    except (ValueError, KeyError, TypeError, RunNotFound):
        log.warning("rework submitted for an unknown run: %r", view.get("private_metadata"))
        client.chat_postEphemeral(
            channel=user,
            user=user,
            text="That run no longer exists (its record has expired); your feedback was not used.",
        )
        return "missing"
    if not may_decide(user, run.requester, services.settings):
        client.chat_postEphemeral(
            channel=run.channel or user,
            user=user,
            thread_ts=run.thread_ts,
            text=f"Only <@{run.requester}> (who asked) or an approver can rework {run.label}. "
            "Your feedback was not used; nothing was changed.",
        )
        return "refused"
    try:
        reworked = services.queue.request_rework(run.id, by=user, feedback=feedback)
    except InvalidTransition:
        client.chat_postEphemeral(
            channel=run.channel or user,
            user=user,
            thread_ts=run.thread_ts,
            text=_not_reworked(services.store.get(run.id)),
        )
        return "stale"
    reply(
        client,
        run.channel or "",
        run.thread_ts or "",
        f"<@{user}> asked for rework: “{escape(feedback[:500])}”. Starting iteration "
        f"{reworked.iteration} on the same branch.",
    )
    return "reworking"


def _not_reworked(run: Run) -> str:
    if approval_in_progress(run):
        return f"{run.label} is being approved; your feedback was not used."
    return (
        f"{run.label} is no longer awaiting a decision (it is "
        f"{run.status.value.replace('_', ' ')}); your feedback was not used."
    )


def register(app: App, services: Services) -> None:
    @app.view(CALLBACK_ID)
    def on_submit(ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient) -> None:
        handle_submission(ack, body, view, client, services)
