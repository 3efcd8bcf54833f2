"""What the bot's feedback modals share: the text field, the run a submission is for,
and the private answer when a decision refuses it."""

from __future__ import annotations

import json
from typing import Any

from slack_sdk import WebClient

from jobs.decisions import Outcome

#: Slack's limit for a plain-text input.
MAX_FEEDBACK = 3000
FORM_NOT_MINE = "That form is not one of mine; nothing was changed."


def feedback_field(block_id: str, action_id: str, label: str) -> dict[str, Any]:
    """The multi-line input a modal asks its feedback in."""
    return {
        "type": "input",
        "block_id": block_id,
        "label": {"type": "plain_text", "text": label},
        "element": {
            "type": "plain_text_input",
            "action_id": action_id,
            "multiline": True,
            "max_length": MAX_FEEDBACK,
        },
    }


def field_text(view: dict[str, Any], block_id: str, action_id: str) -> str:
    value = view["state"]["values"].get(block_id, {}).get(action_id, {}).get("value")
    return (value or "").strip()


def submitted_for(view: dict[str, Any], key: str) -> tuple[int, int | None] | None:
    """The run id and the ``key`` number (iteration, plan version) the modal was drawn
    for; None when its metadata is not the bot's (a forged or stale form)."""
    try:
        meta = json.loads(view["private_metadata"])
        number = meta.get(key)
        return int(meta["run"]), None if number is None else int(number)
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def tell_privately(client: WebClient, user: str, outcome: Outcome) -> None:
    """A refusal, to the one who submitted: in the run's thread, or a DM without one."""
    run = outcome.run
    client.chat_postEphemeral(
        channel=(run.channel if run else None) or user,
        user=user,
        thread_ts=run.thread_ts if run else None,
        text=outcome.text,
    )
