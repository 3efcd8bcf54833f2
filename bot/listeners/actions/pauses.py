"""Approve plan, Revise plan, Extend and Stop here: each asks :mod:`jobs.decisions` and
shows a refusal to the clicker only; the thread changes through the run (the reporter
posts what was decided, with who decided it)."""

from __future__ import annotations

import json
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.blocks import ACTION_APPROVE_PLAN, ACTION_EXTEND, ACTION_REVISE_PLAN, ACTION_STOP
from bot.listeners.actions.decisions import NOT_MINE, ephemeral
from bot.listeners.views.revise_plan import revise_modal
from bot.services import Services
from jobs import decisions
from jobs.decisions import Outcome


def _value(body: dict[str, Any]) -> dict[str, Any] | None:
    try:
        value = json.loads(body["actions"][0]["value"])
        int(value["run"])
    except (ValueError, KeyError, TypeError, AttributeError, IndexError):
        return None
    return value if isinstance(value, dict) else None


def _answer(
    body: dict[str, Any],
    client: WebClient,
    services: Services,
    decide: Any,
    **extra: Any,
) -> str:
    """Ask ``decide`` with the button's run and the clicker; tell them a refusal."""
    value = _value(body)
    if value is None:
        ephemeral(client, body, NOT_MINE)
        return "missing"
    outcome: Outcome = decide(
        services.queue,
        int(value["run"]),
        body["user"]["id"],
        approvers=services.settings.approvers,
        **{key: value.get(field) for key, field in extra.items()},
    )
    if not outcome.done:
        ephemeral(client, body, outcome.text)
    return outcome.kind


def handle_approve_plan(body: dict[str, Any], client: WebClient, services: Services) -> str:
    return _answer(body, client, services, decisions.approve_plan, version="version")


def handle_revise_plan(body: dict[str, Any], client: WebClient, services: Services) -> str:
    value = _value(body)
    if value is None:
        ephemeral(client, body, NOT_MINE)
        return "missing"
    version = value.get("version")
    outcome = decisions.may_revise_plan(
        services.store,
        int(value["run"]),
        body["user"]["id"],
        approvers=services.settings.approvers,
        version=None if version is None else int(version),
    )
    if not outcome.done or outcome.run is None:
        ephemeral(client, body, outcome.text)
        return outcome.kind
    client.views_open(trigger_id=body["trigger_id"], view=revise_modal(outcome.run))
    return "modal"


def handle_extend(body: dict[str, Any], client: WebClient, services: Services) -> str:
    return _answer(body, client, services, decisions.extend_budget, asked_at="ask")


def handle_stop(body: dict[str, Any], client: WebClient, services: Services) -> str:
    return _answer(body, client, services, decisions.stop_at_budget, asked_at="ask")


def register(app: App, services: Services) -> None:
    @app.action(ACTION_APPROVE_PLAN)
    def on_approve_plan(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        handle_approve_plan(body, client, services)

    @app.action(ACTION_REVISE_PLAN)
    def on_revise_plan(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        handle_revise_plan(body, client, services)

    @app.action(ACTION_EXTEND)
    def on_extend(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        handle_extend(body, client, services)

    @app.action(ACTION_STOP)
    def on_stop(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        handle_stop(body, client, services)
