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
from core.exceptions import InvalidTransition, RunNotFound
from core.run import Run, RunStatus

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


def _refusal(run: Run, user: str, services: Services, verb: str) -> str | None:
    if not may_decide(user, run.requester, services.settings):
        return (
            f"Only <@{run.requester}> (who asked) or an approver can {verb} {run.label}. "
            "Nothing was changed."
        )
    return None


def handle_approve(body: dict[str, Any], client: WebClient, services: Services) -> str:
    """Returns what happened, for tests and logs."""
    run, problem = _load(body, services)
    user = body["user"]["id"]
    if run is None:
        ephemeral(client, body, problem)
        return "missing"
    refusal = _refusal(run, user, services, "approve")
    if refusal:
        ephemeral(client, body, refusal)
        return "refused"
    if run.status is not RunStatus.AWAITING_DECISION:
        ephemeral(client, body, f"{run.label} is {_ALREADY.get(run.status, run.status.value)}.")
        return "stale"
    if services.queue.request_approval(run, by=user) is None:
        ephemeral(client, body, f"{run.label} is already being approved.")
        return "duplicate"
    return "approving"


def handle_rework(body: dict[str, Any], client: WebClient, services: Services) -> str:
    run, problem = _load(body, services)
    user = body["user"]["id"]
    if run is None:
        ephemeral(client, body, problem)
        return "missing"
    refusal = _refusal(run, user, services, "rework")
    if refusal:
        ephemeral(client, body, refusal)
        return "refused"
    if run.status is not RunStatus.AWAITING_DECISION:
        ephemeral(client, body, f"{run.label} is {_ALREADY.get(run.status, run.status.value)}.")
        return "stale"
    client.views_open(trigger_id=body["trigger_id"], view=rework_modal(run))
    return "modal"


def handle_cancel(body: dict[str, Any], client: WebClient, services: Services) -> str:
    run, problem = _load(body, services)
    user = body["user"]["id"]
    if run is None:
        ephemeral(client, body, problem)
        return "missing"
    refusal = _refusal(run, user, services, "cancel")
    if refusal:
        ephemeral(client, body, refusal)
        return "refused"
    if run.status.is_final:
        ephemeral(client, body, f"{run.label} is {_ALREADY[run.status]}.")
        return "stale"
    try:
        services.queue.cancel(run.id, by=user)
    except InvalidTransition:
        current = services.store.get(run.id).status
        ephemeral(client, body, f"{run.label} is {_ALREADY.get(current, current.value)}.")
        return "stale"
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
