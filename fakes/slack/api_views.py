"""Web API methods for views: ``views.open``, ``push``, ``update`` and ``publish``.

Modals need a fresh, unused ``trigger_id`` (valid for :attr:`Workspace.trigger_ttl`
seconds, as in Slack), stack at most three deep, and honour ``hash`` for optimistic
updates; every view is checked by :func:`fakes.slack.validate.validate_view` first.
Functions as in :mod:`fakes.slack.api_chat`.
"""

from __future__ import annotations

import time
from typing import Any

from fakes.slack import validate
from fakes.slack.api_chat import Method
from fakes.slack.args import ApiError, Args, ensure_ids, error_messages, missing
from fakes.slack.objects import View, view_hash
from fakes.slack.state import Workspace

Json = dict[str, Any]


def view_arg(ws: Workspace, a: Args, expected_type: str | None) -> Json:
    view = a.get_json("view", error="invalid_arguments")
    if view is None:
        raise ApiError("invalid_arguments", extra=missing("view"))
    errors = validate.validate_view(view, expected_type=expected_type)
    if errors:
        ws.warn("views: invalid_arguments: " + "; ".join(errors))
        raise ApiError("invalid_arguments", extra=error_messages(errors))
    assert isinstance(view, dict)
    view = dict(view)
    view["blocks"] = ensure_ids(view.get("blocks", []))
    return view


def trigger_user(ws: Workspace, a: Args) -> str:
    trigger_id = a.get_str("trigger_id")
    if not trigger_id:
        raise ApiError("invalid_arguments", extra=missing("trigger_id"))
    trigger = ws.triggers.get(trigger_id)
    if trigger is None:
        raise ApiError("invalid_trigger_id")
    if trigger.used:
        raise ApiError("exchanged_trigger_id")
    trigger.used = True
    age = time.monotonic() - trigger.issued
    if age > ws.trigger_ttl:
        ws.warn(f"views: trigger_id used after {age:.1f} s (Slack allows 3 s)")
        raise ApiError("expired_trigger_id")
    return trigger.user


def views_open(ws: Workspace, a: Args, warnings: list[str]) -> Json:
    definition = view_arg(ws, a, "modal")
    user = trigger_user(ws, a)
    for old in ws.modal_stacks.get(user, []):
        ws.views[old].is_open = False
        ws.views[old].closed_by = "replaced"
    view = ws.new_view(user, definition)
    ws.modal_stacks[user] = [view.id]
    return {"view": view.to_api()}


def views_push(ws: Workspace, a: Args, warnings: list[str]) -> Json:
    definition = view_arg(ws, a, "modal")
    user = trigger_user(ws, a)
    stack = ws.modal_stacks.get(user, [])
    if not stack:
        raise ApiError("not_found")
    if len(stack) >= 3:
        raise ApiError("push_limit_reached")
    top = ws.views[stack[-1]]
    view = ws.new_view(user, definition, root=top.root_view_id, previous=top.id)
    stack.append(view.id)
    return {"view": view.to_api()}


def views_update(ws: Workspace, a: Args, warnings: list[str]) -> Json:
    view_id = a.get_str("view_id")
    external_id = a.get_str("external_id")
    if not view_id and not external_id:
        raise ApiError("invalid_arguments", extra=missing("view_id"))
    view: View | None = None
    for candidate in ws.views.values():
        if (view_id and candidate.id == view_id) or (
            external_id and candidate.definition.get("external_id") == external_id
        ):
            view = candidate
    if view is None:
        raise ApiError("not_found")
    definition = view_arg(ws, a, view.type)
    expected = a.get_str("hash")
    if expected is not None and expected != view.hash:
        raise ApiError("hash_conflict")
    if not view.is_open and view.type == "modal":
        ws.warn(f"views.update: view {view.id} is closed; the user sees nothing")
    view.definition = definition
    view.hash = view_hash()
    view.errors = {}
    return {"view": view.to_api()}


def views_publish(ws: Workspace, a: Args, warnings: list[str]) -> Json:
    user_id = a.get_str("user_id")
    if not user_id or user_id not in ws.users:
        raise ApiError("user_not_found")
    definition = view_arg(ws, a, "home")
    existing = ws.views.get(ws.home_views.get(user_id, ""))
    expected = a.get_str("hash")
    if existing is not None:
        if expected is not None and expected != existing.hash:
            raise ApiError("hash_conflict")
        existing.definition = definition
        existing.hash = view_hash()
        return {"view": existing.to_api()}
    view = ws.new_view(user_id, definition)
    ws.home_views[user_id] = view.id
    return {"view": view.to_api()}


METHODS: dict[str, Method] = {
    "views.open": views_open,
    "views.push": views_push,
    "views.update": views_update,
    "views.publish": views_publish,
}
