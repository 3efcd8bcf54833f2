"""What people do in the workspace: post, mention the bot, click, submit, type commands.

Each action changes the workspace as Slack would (a message is stored, a modal closes)
and then delivers, signed, the request Slack would send the bot: an Events API
``event_callback``, a ``block_actions``, ``view_submission`` or ``view_closed``
payload, or a slash command form. The bot's answer is applied by
:class:`fakes.slack.answers.Answers`.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

from fakes.slack import payloads
from fakes.slack.answers import Answers
from fakes.slack.delivery import Delivery
from fakes.slack.forms import ViewInputError, find_element, view_state
from fakes.slack.objects import Message, new_client_msg_id, random_block_id
from fakes.slack.text import link_names, mentioned_users, rich_text_blocks

Json = dict[str, Any]


class People(Answers):
    """The actions of the workspace's people (see :class:`fakes.slack.SlackEmulator`)."""

    def post(
        self, user: str, channel: str, text: str, thread_ts: str | None = None
    ) -> tuple[str, list[Delivery]]:
        """``user`` posts ``text`` (Slack wire format; ``@name`` is linked) and the bot
        gets the events it subscribed to: ``app_mention`` when mentioned, ``message``.
        Without a ``bot_url`` the message is only stored."""
        with self.ws.lock:
            text = link_names(text, self._user_names(), self._channel_names())
            message, events = self._add_person_message(user, channel, text, thread_ts)
        if not self.bot_url:
            return message.ts, []  # no bot connected: the message is only stored
        deliveries = [self.send_event(event, channel_id=message.channel) for event in events]
        return message.ts, deliveries

    def mention(
        self, user: str, channel: str, text: str, thread_ts: str | None = None
    ) -> tuple[str, Delivery]:
        """``user`` mentions the bot: the message is posted and a signed ``app_mention``
        is delivered (and ``message``, if subscribed). Prepends ``<@BOT>`` if ``text``
        has no mention of the bot. Returns the message ts and the ``app_mention``
        delivery."""
        if not self.bot_url:
            raise RuntimeError("set emu.bot_url (the bot's /slack/events URL) first")
        with self.ws.lock:
            if self._channel(channel).is_im:
                raise ValueError("Slack sends no app_mention in DMs; use emu.post()")
            text = link_names(text, self._user_names(), self._channel_names())
            if self.ws.bot_user_id not in mentioned_users(text):
                text = f"<@{self.ws.bot_user_id}> {text}"
            if "app_mention" not in self.subscriptions:
                raise ValueError("the app is not subscribed to app_mention")
        ts, deliveries = self.post(user, channel, text, thread_ts)
        mention = next(d for d in deliveries if d.event_type == "app_mention")
        return ts, mention

    def send_event(self, event: Json, *, channel_id: str = "") -> Delivery:
        """Deliver any Events API ``event`` (wrapped in an ``event_callback``)."""
        eid = payloads.event_id()
        with self.ws.lock:
            envelope = payloads.event_envelope(self.ws, event, eid=eid, channel_id=channel_id)
            body = json.dumps(envelope)
            self._events[eid] = body
        return self._deliver(
            "event_callback",
            envelope,
            body=body,
            content_type="application/json",
            url=self.bot_url,
            event_id=eid,
        )

    def redeliver(
        self, event_id: str, retry_num: int = 1, reason: str = "http_timeout"
    ) -> Delivery:
        """Deliver event ``event_id`` again, as Slack's retries do: the same body, with
        ``X-Slack-Retry-Num`` and ``X-Slack-Retry-Reason``."""
        body = self._events.get(event_id)
        if body is None:
            raise LookupError(f"no event {event_id} was delivered")
        return self._deliver(
            "event_callback",
            json.loads(body),
            body=body,
            content_type="application/json",
            url=self.bot_url,
            event_id=event_id,
            retry_num=retry_num,
            retry_reason=reason,
        )

    def app_home_opened(self, user: str) -> Delivery:
        """``user`` opens the app's Home tab."""
        with self.ws.lock:
            self._user(user)
            channel = self.ws.open_im(user)
            event: Json = {
                "type": "app_home_opened",
                "user": user,
                "channel": channel.id,
                "tab": "home",
                "event_ts": payloads.action_ts(),
            }
            home = self.ws.views.get(self.ws.home_views.get(user, ""))
            if home is not None:
                event["view"] = home.to_api()
        return self.send_event(event, channel_id=channel.id)

    def click(
        self,
        user: str,
        channel: str,
        message_ts: str,
        action_id: str,
        *,
        block_id: str | None = None,
    ) -> Delivery:
        """``user`` clicks the button ``action_id`` of a message (or of an ephemeral
        message shown to them): a ``block_actions`` with the button's value, a
        ``trigger_id`` and a ``response_url``."""

        def button(element: Json) -> Json:
            if element.get("type") != "button":
                raise ValueError(f"{action_id} is a {element.get('type')}; click() clicks buttons")
            action: Json = {"text": copy.deepcopy(element.get("text")), "type": "button"}
            for key in ("value", "style"):
                if key in element:
                    action[key] = element[key]
            return action

        return self._act(user, channel, message_ts, action_id, block_id, button)

    def select_option(
        self,
        user: str,
        channel: str,
        message_ts: str,
        action_id: str,
        option: Json,
        *,
        block_id: str | None = None,
    ) -> Delivery:
        """``user`` picks ``option`` (``{"text": ..., "value": ...}``, as a select's
        options or an options load answered them) in the select menu ``action_id``."""

        def selected(element: Json) -> Json:
            kind = str(element.get("type", ""))
            if not kind.endswith("_select") or kind.startswith("multi_"):
                raise ValueError(f"{action_id} is a {kind}; select_option() picks in a select")
            return {"type": kind, "selected_option": copy.deepcopy(option)}

        return self._act(user, channel, message_ts, action_id, block_id, selected)

    def suggest(
        self,
        user: str,
        channel: str,
        message_ts: str,
        action_id: str,
        value: str = "",
        *,
        block_id: str | None = None,
    ) -> list[Json]:
        """``user`` opens (or types ``value`` into) the external select ``action_id``:
        Slack asks the app's options load URL with a ``block_suggestion`` and shows the
        ``options`` it answers, which this returns (Slack shows at most 100)."""
        with self.ws.lock:
            person = self._user(user)
            chan = self._channel(channel)
            message = self.ws.find_message(chan.id, message_ts)
            if message is None:
                raise LookupError(f"no message {message_ts} in {chan.id}")
            block, element = find_element(message.blocks or [], action_id, block_id)
            if element.get("type") not in ("external_select", "multi_external_select"):
                raise ValueError(f"{action_id} is a {element.get('type')}, not an external select")
            payload = payloads.block_suggestion(
                self.ws,
                user=person,
                channel=chan,
                message=message,
                action_id=action_id,
                block_id=str(block.get("block_id", "")),
                value=value,
            )
        delivery = self._deliver_form(
            "block_suggestion", payload, {"payload": json.dumps(payload)}, self.interactivity_url
        )
        answer = delivery.json or {}
        options = answer.get("options")
        if not isinstance(options, list):
            raise ValueError(f"the options load was answered without options: {answer!r}")
        return [o for o in options if isinstance(o, dict)][:100]

    def _act(
        self,
        user: str,
        channel: str,
        message_ts: str,
        action_id: str,
        block_id: str | None,
        make_action: Callable[[Json], Json],
    ) -> Delivery:
        """A ``block_actions`` for ``user``'s action on element ``action_id`` of a
        message (or of an ephemeral shown to them); ``make_action`` says what was done."""
        with self.ws.lock:
            person = self._user(user)
            chan = self._channel(channel)
            message = self.ws.find_message(chan.id, message_ts)
            ephemeral = None
            if message is None:
                ephemeral = next(
                    (
                        e
                        for e in self.ws.ephemerals
                        if e.channel == chan.id and e.ts == message_ts and e.user == user
                    ),
                    None,
                )
                if ephemeral is None:
                    raise LookupError(f"no message {message_ts} in {chan.id} that {user} sees")
            blocks = (message.blocks if message else ephemeral.blocks if ephemeral else None) or []
            block, element = find_element(blocks, action_id, block_id)
            action: Json = {"action_id": action_id, "block_id": block.get("block_id")}
            action.update(make_action(element))
            action["action_ts"] = payloads.action_ts()
            thread_ts = message.thread_ts if message else ephemeral.thread_ts if ephemeral else None
            payload = payloads.block_actions(
                self.ws,
                user=person,
                channel=chan,
                action=action,
                trigger_id=self._new_trigger(user),
                response_url=self._new_response_url(
                    user,
                    chan.id,
                    "block_actions",
                    message_ts=message.ts if message else None,
                    ephemeral_ts=ephemeral.ts if ephemeral else None,
                    thread_ts=thread_ts,
                ),
                message=message,
                ephemeral_ts=ephemeral.ts if ephemeral else None,
                thread_ts=thread_ts,
            )
        return self._deliver_form(
            "block_actions", payload, {"payload": json.dumps(payload)}, self.interactivity_url
        )

    def submit_view(
        self, user: str, view_id: str, values: dict[str, Any] | None = None
    ) -> Delivery:
        """``user`` submits modal ``view_id``. ``values`` maps a block_id to
        ``{action_id: value}``, or a block_id or action_id straight to a value.
        Returns the delivery; ``.json`` is the bot's answer (``response_action``...).
        Raises :class:`ViewInputError` for what Slack's client itself refuses."""
        with self.ws.lock:
            person = self._user(user)
            view = self._open_view(user, view_id)
            state, errors = view_state(view, values or {})
            if errors:
                view.errors = errors
                self.ws.touch()
                raise ViewInputError(errors)
            view.values = state
            view.errors = {}
            view.general_error = None
            payload = payloads.view_submission(
                self.ws, user=person, view=view, trigger_id=self._new_trigger(user)
            )
        delivery = self._deliver_form(
            "view_submission", payload, {"payload": json.dumps(payload)}, self.interactivity_url
        )
        self._apply_view_answer(view, delivery)
        return delivery

    def close_view(self, user: str, view_id: str) -> Delivery | None:
        """``user`` closes modal ``view_id``; the bot hears of it with ``notify_on_close``."""
        with self.ws.lock:
            person = self._user(user)
            view = self._open_view(user, view_id)
            self._close_views(user, [view.id], "closed")
            if not view.definition.get("notify_on_close"):
                return None
            payload = payloads.view_closed(self.ws, user=person, view=view)
        return self._deliver_form(
            "view_closed", payload, {"payload": json.dumps(payload)}, self.interactivity_url
        )

    def slash(self, user: str, channel: str, command: str, text: str = "") -> Delivery:
        """``user`` types ``command text`` in ``channel``. The bot's immediate answer is
        shown (ephemeral unless ``response_type: in_channel``), as in Slack."""
        with self.ws.lock:
            person = self._user(user)
            chan = self._channel(channel)
            if command not in self.slash_commands:
                raise ValueError(f"{command} is not a command of this app")
            form = payloads.slash_command(
                self.ws,
                user=person,
                channel=chan,
                command=command,
                text=text,
                response_url=self._new_response_url(user, chan.id, "command"),
                trigger_id=self._new_trigger(user),
            )
        delivery = self._deliver_form("slash_command", dict(form), form, self.commands_url)
        self._apply_command_answer(person, chan, command, text, delivery)
        return delivery

    def _add_person_message(
        self, user: str, channel: str, text: str, thread_ts: str | None
    ) -> tuple[Message, list[Json]]:
        ws = self.ws
        self._user(user)
        chan = self._channel(channel)
        if not chan.has_member(user):
            raise ValueError(f"{user} is not in {chan.id}")
        if thread_ts is not None:
            parent = ws.find_message(chan.id, thread_ts)
            if parent is None:
                raise LookupError(f"no message {thread_ts} in {chan.id} to reply to")
            thread_ts = parent.root_ts
        message = ws.add_message(
            Message(
                channel=chan.id,
                ts=ws.next_ts(),
                user=user,
                text=text,
                blocks=rich_text_blocks(text, random_block_id()),
                thread_ts=thread_ts,
                client_msg_id=new_client_msg_id(),
            )
        )
        events: list[Json] = []
        if chan.is_im:
            if "message.im" in self.subscriptions:
                events.append(payloads.message_event(ws, message, chan, "message"))
        elif chan.bot_member:
            if ws.bot_user_id in mentioned_users(text) and "app_mention" in self.subscriptions:
                events.append(payloads.message_event(ws, message, chan, "app_mention"))
            topic = "message.groups" if chan.is_private else "message.channels"
            if topic in self.subscriptions:
                events.append(payloads.message_event(ws, message, chan, "message"))
        return message, events
