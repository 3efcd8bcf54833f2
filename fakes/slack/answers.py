"""What Slack does with the bot's answers: modal responses, command answers, response URLs.

The bot answers a ``view_submission`` with a ``response_action`` (errors, update, push,
clear), a slash command with an immediate message, and later posts to ``response_url``
(reply, replace or delete the original). Slack applies these, or shows "We had some
trouble connecting" when the answer is late or malformed; this module does the same, and
adds a warning for what Slack would silently ignore.
"""

from __future__ import annotations

import copy
import time
from typing import Any

from fakes.slack import validate
from fakes.slack.args import ensure_ids
from fakes.slack.base import EmulatorBase
from fakes.slack.delivery import Delivery
from fakes.slack.forms import input_blocks
from fakes.slack.objects import (
    Channel,
    Edit,
    Ephemeral,
    Message,
    ResponseTarget,
    User,
    View,
    view_hash,
)

Json = dict[str, Any]

TROUBLE = "We had some trouble connecting. Try again?"
#: How long a response URL stays usable, and how many times (Slack: 30 min, 5 uses).
RESPONSE_URL_LIFETIME = 30 * 60
RESPONSE_URL_USES = 5


class Answers(EmulatorBase):
    """Applies the bot's answers to the workspace."""

    def _apply_view_answer(self, view: View, delivery: Delivery) -> None:
        """What Slack does with the bot's answer to a view_submission."""
        ws = self.ws
        with ws.lock:
            if not delivery.ok or delivery.elapsed > self.ack_timeout:
                view.general_error = TROUBLE
                ws.touch()
                return
            answer = delivery.json
            if answer is None:
                if delivery.response_body.strip():
                    ws.warn(f"view_submission: non-JSON answer {delivery.response_body!r}")
                self._close_views(view.user, [view.id], "submitted")
                return
            action = answer.get("response_action")
            if action == "errors":
                errors = answer.get("errors")
                inputs = {b.get("block_id") for b in input_blocks(view)}
                if not isinstance(errors, dict) or not errors:
                    ws.warn("view_submission: response_action errors without an errors object")
                    view.general_error = TROUBLE
                else:
                    unknown = sorted(set(errors) - inputs)
                    if unknown:
                        ws.warn(
                            f"view_submission: errors name {unknown}, which are not input "
                            "block_ids of the view; Slack shows nothing for them"
                        )
                    view.errors = {str(k): str(v) for k, v in errors.items() if k in inputs}
                ws.touch()
            elif action in ("update", "push"):
                new = answer.get("view")
                problems = validate.validate_view(new, expected_type="modal")
                if problems:
                    ws.warn(f"view_submission: response_action {action}: " + "; ".join(problems))
                    view.general_error = TROUBLE
                    ws.touch()
                    return
                assert isinstance(new, dict)
                new = {**new, "blocks": ensure_ids(new.get("blocks", []))}
                if action == "update":
                    view.definition = new
                    view.hash = view_hash()
                    view.values = {}
                    ws.touch()
                else:
                    stack = ws.modal_stacks.setdefault(view.user, [])
                    if len(stack) >= 3:
                        ws.warn("view_submission: push beyond 3 views; Slack refuses")
                        view.general_error = TROUBLE
                        ws.touch()
                        return
                    pushed = ws.new_view(view.user, new, root=view.root_view_id, previous=view.id)
                    stack.append(pushed.id)
                    ws.touch()
            elif action == "clear":
                self._close_views(view.user, list(ws.modal_stacks.get(view.user, [])), "cleared")
            else:
                if action is not None:
                    ws.warn(f"view_submission: unknown response_action {action!r}")
                self._close_views(view.user, [view.id], "submitted")

    def _apply_command_answer(
        self, user: User, channel: Channel, command: str, text: str, delivery: Delivery
    ) -> None:
        """What Slack does with the bot's immediate answer to a slash command."""
        ws = self.ws
        with ws.lock:
            failure = None
            if delivery.error or delivery.elapsed > self.ack_timeout:
                failure = "operation_timeout"
            elif not delivery.ok:
                server_error = (delivery.status or 0) >= 500
                failure = "http_service_error" if server_error else "dispatch_failed"
            body = delivery.response_body.strip()
            if failure is None and body:
                answer = delivery.json
                if answer is None:
                    answer = {"text": body}
                if answer.get("response_type") == "in_channel":
                    # Slack shows the invocation too when the answer is in_channel.
                    ws.add_message(
                        Message(
                            channel=channel.id,
                            ts=ws.next_ts(),
                            user=user.id,
                            text=f"{command} {text}".strip(),
                        )
                    )
                failure = self._show_response(answer, user.id, channel.id, None, "command_response")
                if failure:
                    ws.warn(f"slash_command: the bot's answer failed: {failure}")
            if failure:
                self._slackbot(user.id, channel.id, f'{command} failed with the error "{failure}"')
            ws.touch()

    def _show_response(
        self,
        answer: Json,
        user: str,
        channel: str,
        thread_ts: str | None,
        source: str,
    ) -> str | None:
        """Post a command answer or a response_url message; the error code, if any."""
        ws = self.ws
        text = answer.get("text")
        blocks = answer.get("blocks")
        if blocks is not None:
            if validate.validate_message_blocks(blocks):
                return "invalid_blocks"
            blocks = ensure_ids(blocks)
        if not (isinstance(text, str) and text.strip()) and not blocks:
            return "no_text"
        if blocks and not (isinstance(text, str) and text.strip()):
            ws.warn(f"{source}: blocks without a top-level text fallback")
        thread_ts = answer.get("thread_ts") or thread_ts
        if answer.get("response_type") == "in_channel":
            ws.add_message(
                Message(
                    channel=channel,
                    ts=ws.next_ts(),
                    user=ws.bot_user_id,
                    text=text or "",
                    blocks=blocks,
                    thread_ts=thread_ts,
                    bot_id=ws.bot_id,
                    app_id=ws.app_id,
                )
            )
        else:
            ws.ephemerals.append(
                Ephemeral(
                    channel=channel,
                    user=user,
                    ts=ws.next_ts(),
                    text=text or "",
                    blocks=blocks,
                    thread_ts=thread_ts,
                    source=source,
                )
            )
        ws.touch()
        return None

    def _slackbot(self, user: str, channel: str, text: str) -> None:
        ws = self.ws
        ws.ephemerals.append(
            Ephemeral(
                channel=channel,
                user=user,
                ts=ws.next_ts(),
                text=text,
                sender="slackbot",
                source="emulator",
            )
        )
        ws.touch()

    def _response_url(self, target_id: str, data: Json) -> tuple[int, str]:
        """``POST /response/<id>``: what Slack's response URLs do."""
        ws = self.ws
        with ws.lock:
            target = ws.response_targets.get(target_id)
            if target is None or time.monotonic() - target.created > RESPONSE_URL_LIFETIME:
                return 404, "expired_url"
            if target.uses >= RESPONSE_URL_USES:
                ws.warn("response_url: used more than 5 times")
                return 404, "used_url"
            target.uses += 1
            if _truthy(data.get("delete_original")):
                return self._delete_original(target)
            if _truthy(data.get("replace_original")):
                return self._replace_original(target, data)
            failure = self._show_response(
                data, target.user, target.channel, target.thread_ts, "response_url"
            )
            if failure:
                ws.warn(f"response_url: {failure}")
                return 400, failure
            return 200, "ok"

    def _delete_original(self, target: ResponseTarget) -> tuple[int, str]:
        ws = self.ws
        if target.message_ts:
            message = ws.find_message(target.channel, target.message_ts)
            if message is not None:
                ws.delete_message(message)
                return 200, "ok"
        if target.ephemeral_ts:
            ws.ephemerals = [e for e in ws.ephemerals if e.ts != target.ephemeral_ts]
            ws.touch()
            return 200, "ok"
        return 404, "message_not_found"

    def _replace_original(self, target: ResponseTarget, data: Json) -> tuple[int, str]:
        ws = self.ws
        text = data.get("text")
        blocks = data.get("blocks")
        if blocks is not None:
            if validate.validate_message_blocks(blocks):
                ws.warn("response_url: replace_original with invalid_blocks")
                return 400, "invalid_blocks"
            blocks = ensure_ids(blocks)
        if not (isinstance(text, str) and text.strip()) and not blocks:
            return 400, "no_text"
        if target.message_ts:
            message = ws.find_message(target.channel, target.message_ts)
            if message is None:
                return 404, "message_not_found"
            message.edits.append(Edit(ws.next_ts(), message.text, copy.deepcopy(message.blocks)))
            message.text = text or ""
            message.blocks = blocks
            message.edited = {"user": ws.bot_user_id, "ts": message.edits[-1].edited_ts}
            ws.touch()
            return 200, "ok"
        if target.ephemeral_ts:
            for e in ws.ephemerals:
                if e.ts == target.ephemeral_ts:
                    e.text = text or ""
                    e.blocks = blocks
            ws.touch()
            return 200, "ok"
        # A slash command's response URL has no original: Slack posts a new message.
        failure = self._show_response(data, target.user, target.channel, None, "response_url")
        return (400, failure) if failure else (200, "ok")


def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")
