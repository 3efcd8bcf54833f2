"""Approve, Rework and Cancel buttons.

Only the requester and the configured approvers may press them; anyone else, and anyone
pressing a stale button, gets an ephemeral explanation and nothing changes. A double
click has one effect: every change below is an atomic transition or a unique job.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.blocks import ACTION_APPROVE, ACTION_CANCEL, ACTION_REWORK
from bot.listeners.views.rework import rework_modal
from bot.requests import may_decide
from bot.services import Services
from process.exceptions import InvalidTransition, RunNotFound
from runs.record import Run, RunStatus, approval_in_progress

log = logging.getLogger(__name__)

_ALREADY = {
    RunStatus.APPROVED: "already approved",
    RunStatus.CANCELLED: "already cancelled",
    RunStatus.FAILED: "already finished (it failed)",
    RunStatus.REWORK: "already being reworked",
    RunStatus.RUNNING: "still working",
    RunStatus.QUEUED: "still queued",
}


def ephemeral(client: WebClient, body: dict[str, Any], text: str) -> None:
    channel = (body.get("channel") or {}).get("id") or body.get("container", {}).get("channel_id")
    message = body.get("message") or {}
    client.chat_postEphemeral(
        channel=channel,
        user=body["user"]["id"],
        text=text,
        thread_ts=message.get("thread_ts") or message.get("ts"),
    )


def _load(body: dict[str, Any], services: Services) -> tuple[Run | None, str]:
    action = body["actions"][0]
    try:
        run_id = int(json.loads(action["value"])["run"])
        return services.store.get(run_id), ""
    except RunNotFound:
        return None, "That run no longer exists (its record has expired)."
    except (ValueError, KeyError, TypeError):
        return None, "That button is not one of mine."


def _decidable(
    body: dict[str, Any], client: WebClient, services: Services, verb: str
) -> tuple[Run | None, str]:
    """The run a button acts on, if the clicker may ``verb`` it; else why not (told)."""
    run, problem = _load(body, services)
    if run is None:
        ephemeral(client, body, problem)
        return None, "missing"
    if not may_decide(body["user"]["id"], run.requester, services.settings):
        ephemeral(
            client,
            body,
            f"Only <@{run.requester}> (who asked) or an approver can {verb} {run.label}. "
            "Nothing was changed.",
        )
        return None, "refused"
    return run, ""


def _stale(run: Run, body: dict[str, Any], client: WebClient) -> str:
    text = f"{run.label} is {_ALREADY.get(run.status, run.status.value)}."
    if run.status.is_final:
        text += (
            " Its buttons do nothing now. To ask for something new, mention me in a new message."
        )
    ephemeral(client, body, text)
    return "stale"


def _older_iteration(run: Run, body: dict[str, Any], client: WebClient) -> bool:
    """A button drawn for an earlier iteration must not decide about a later one."""
    try:
        drawn_for = int(json.loads(body["actions"][0]["value"]).get("iteration", run.iteration))
    except (ValueError, TypeError, AttributeError):
        return False
    if drawn_for == run.iteration:
        return False
    ephemeral(
        client,
        body,
        f"That button is from iteration {drawn_for}; {run.label} is on iteration "
        f"{run.iteration} now. Use the buttons on its latest message. Nothing was changed.",
    )
    return True


def _awaiting(
    body: dict[str, Any], client: WebClient, services: Services, verb: str
) -> tuple[Run | None, str]:
    """The run an Approve or Rework button decides, if the clicker may and the run is
    waiting for a decision on the iteration the button was drawn for; else why not."""
    run, outcome = _decidable(body, client, services, verb)
    if run is None:
        return None, outcome
    if run.status is not RunStatus.AWAITING_DECISION:
        return None, _stale(run, body, client)
    if _older_iteration(run, body, client):
        return None, "older"
    return run, ""


def handle_approve(body: dict[str, Any], client: WebClient, services: Services) -> str:
    """Returns what happened, for logs."""
    run, outcome = _awaiting(body, client, services, "approve")
    if run is None:
        return outcome
    if services.queue.request_approval(run, by=body["user"]["id"]) is None:
        ephemeral(client, body, f"{run.label} is already being approved.")
        return "duplicate"
    return "approving"


def handle_rework(body: dict[str, Any], client: WebClient, services: Services) -> str:
    run, outcome = _awaiting(body, client, services, "rework")
    if run is None:
        return outcome
    if approval_in_progress(run):
        ephemeral(client, body, f"{run.label} is being approved; it can't be reworked now.")
        return "approving"
    client.views_open(trigger_id=body["trigger_id"], view=rework_modal(run))
    return "modal"


def handle_cancel(body: dict[str, Any], client: WebClient, services: Services) -> str:
    run, outcome = _decidable(body, client, services, "cancel")
    if run is None:
        return outcome
    if run.status.is_final:
        return _stale(run, body, client)
    try:
        services.queue.cancel(run.id, by=body["user"]["id"])
    except InvalidTransition:
        current = services.store.get(run.id)
        if approval_in_progress(current):
            ephemeral(client, body, f"{run.label} is being approved; it can't be cancelled now.")
            return "approving"
        return _stale(current, body, client)
    return "cancelled"


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
