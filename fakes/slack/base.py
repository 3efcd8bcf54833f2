"""What every part of the emulator shares: its settings, and how it reaches the bot.

:class:`SlackEmulator` (:mod:`fakes.slack.server`) is assembled from parts, one concern
each: what people do (:mod:`fakes.slack.people`), what Slack does with the bot's answers
(:mod:`fakes.slack.answers`) and what tests look at (:mod:`fakes.slack.looks`). They
share this base: the workspace, the Web API, the bot's URLs and secret, and the one
place that signs and sends a request to the bot and records it (:meth:`_deliver`).
"""

from __future__ import annotations

import secrets
import time
from typing import Any
from urllib.parse import urlencode

from fakes.slack import payloads
from fakes.slack.delivery import Deliverer, Delivery
from fakes.slack.objects import Channel, ResponseTarget, Trigger, User, View
from fakes.slack.state import Workspace
from fakes.slack.webapi import WebApi

Json = dict[str, Any]

FORM = "application/x-www-form-urlencoded"


class EmulatorBase:
    """The state the emulator's parts share; :class:`fakes.slack.SlackEmulator` sets it."""

    bot_url: str | None
    #: Where interactions and slash commands go; ``None``: to :attr:`bot_url`.
    interactivity_url: str | None
    commands_url: str | None
    signing_secret: str
    bot_token: str
    slash_commands: set[str]
    subscriptions: set[str]
    #: Seconds Slack waits for the bot's HTTP answer before it gives up (3).
    ack_timeout: float
    ws: Workspace
    api: WebApi
    deliveries: list[Delivery]
    _deliverer: Deliverer
    _events: dict[str, str]  # event_id -> body, for redelivery

    # -- looking things up -------------------------------------------------------------

    def _user(self, user_id: str) -> User:
        user = self.ws.users.get(user_id)
        if user is None:
            raise LookupError(f"no user {user_id}")
        return user

    def _channel(self, ref: str) -> Channel:
        channel = self.ws.resolve_channel(ref)
        if channel is None:
            raise LookupError(f"no channel {ref}")
        return channel

    def _user_names(self) -> dict[str, str]:
        return {u.name: u.id for u in self.ws.users.values()}

    def _channel_names(self) -> dict[str, str]:
        return {c.name: c.id for c in self.ws.channels.values() if not c.is_im}

    def _new_trigger(self, user: str) -> str:
        trigger_id = payloads.new_trigger_id()
        self.ws.triggers[trigger_id] = Trigger(trigger_id, user, time.monotonic())
        return trigger_id

    def _new_response_url(
        self,
        user: str,
        channel: str,
        kind: str,
        *,
        message_ts: str | None = None,
        ephemeral_ts: str | None = None,
        thread_ts: str | None = None,
    ) -> str:
        target_id = secrets.token_urlsafe(18)
        self.ws.response_targets[target_id] = ResponseTarget(
            id=target_id,
            user=user,
            channel=channel,
            kind=kind,
            message_ts=message_ts,
            ephemeral_ts=ephemeral_ts,
            thread_ts=thread_ts,
        )
        return f"{self.ws.url}/response/{target_id}"

    def _deliver_form(
        self, kind: str, payload: Json, form: dict[str, str], url: str | None
    ) -> Delivery:
        return self._deliver(
            kind, payload, body=urlencode(form), content_type=FORM, url=url or self.bot_url
        )

    def _deliver(
        self,
        kind: str,
        payload: Json,
        *,
        body: str,
        content_type: str,
        url: str | None,
        event_id: str | None = None,
        retry_num: int = 0,
        retry_reason: str | None = None,
    ) -> Delivery:
        if not url:
            raise RuntimeError("set emu.bot_url (the bot's /slack/events URL) first")
        delivery = self._deliverer.send(
            kind=kind,
            url=url,
            body=body,
            content_type=content_type,
            signing_secret=self.signing_secret,
            payload=payload,
            event_id=event_id,
            retry_num=retry_num,
            retry_reason=retry_reason,
        )
        label = kind + (f" {delivery.event_type} {event_id}" if event_id else "")
        if delivery.error:
            self.ws.warn(f"{label}: could not reach the bot at {url}: {delivery.error}")
        elif not delivery.ok:
            self.ws.warn(
                f"{label}: the bot answered HTTP {delivery.status}; "
                "Slack treats that as a failure (and retries events)"
            )
        if delivery.elapsed > self.ack_timeout:
            self.ws.warn(
                f"{label}: the bot took {delivery.elapsed:.1f} s to answer; Slack gives up "
                f"after 3 s (and retries events with X-Slack-Retry-Reason: http_timeout)"
            )
        with self.ws.lock:
            self.deliveries.append(delivery)
            self.ws.touch()
        return delivery

    def _open_view(self, user: str, view_id: str) -> View:
        view = self.ws.views.get(view_id)
        if view is None:
            raise LookupError(f"no view {view_id}")
        if view.user != user or not view.is_open or view.type != "modal":
            raise ValueError(f"view {view_id} is not a modal open for {user}")
        return view

    def _close_views(self, user: str, view_ids: list[str], how: str) -> None:
        stack = self.ws.modal_stacks.get(user, [])
        for view_id in view_ids:
            view = self.ws.views[view_id]
            view.is_open = False
            view.closed_by = how
            if view_id in stack:
                stack.remove(view_id)
        self.ws.touch()
