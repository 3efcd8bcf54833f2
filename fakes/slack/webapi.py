"""The Web API methods the bot uses, answering like Slack does, errors included.

Each call is recorded (:class:`ApiCall`) with a monotonic timestamp, so tests can
check what the bot sent and how often. :meth:`WebApi.fail_next` injects failures
(429 with ``Retry-After``, 5xx, an error code, or a dropped connection) and
:meth:`WebApi.rate_limit` turns on a per-method, per-channel rate limit;
:meth:`WebApi.hold_next` holds a call until the test releases it.
"""

from __future__ import annotations

import copy
import json
import math
import secrets
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fakes.slack import validate
from fakes.slack.state import (
    Channel,
    Edit,
    Ephemeral,
    Message,
    View,
    Workspace,
    random_block_id,
    random_id,
)

Json = dict[str, Any]

MISSING_TEXT = "missing_text_or_fallback_or_attachments"
SCOPES = (
    "app_mentions:read,channels:history,channels:read,chat:write,commands,groups:history,"
    "im:history,im:write,reactions:read,reactions:write,users:read"
)


class ApiError(Exception):
    """A method's ``{"ok": false, "error": ...}`` answer."""

    def __init__(
        self,
        error: str,
        *,
        status: int = 200,
        extra: Json | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(error)
        self.error = error
        self.status = status
        self.extra = extra or {}
        self.headers = headers or {}


@dataclass
class ApiCall:
    """One Web API request the bot made, and how the emulator answered it."""

    method: str
    args: Json
    at: float  # time.monotonic() when it arrived
    http_method: str = "POST"
    status: int = 200
    ok: bool = False
    error: str | None = None
    response: Json | None = None
    injected: bool = False  # answered by fail_next / rate_limit, not by the method
    warnings: list[str] = field(default_factory=list)


@dataclass
class ApiResult:
    status: int
    body: Json | None  # None with drop=True: close the connection without answering
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False


@dataclass
class _Failure:
    method: str
    remaining: int
    status: int
    error: str
    retry_after: float | None
    drop: bool


@dataclass
class Hold:
    """A call held by :meth:`WebApi.hold_next`: ``arrived`` is set when it comes in, and
    it is answered only once :meth:`release` is called (or after ``timeout``)."""

    method: str
    timeout: float
    arrived: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)

    def release(self) -> None:
        self.released.set()


@dataclass
class _RateLimit:
    interval: float
    burst: int
    by_channel: bool
    buckets: dict[str, tuple[float, float]] = field(default_factory=dict)  # key -> tokens, at


class Args:
    """Arguments from a query string, a form body or a JSON body, read leniently like Slack."""

    def __init__(self, data: Json) -> None:
        self.data = data

    def get_str(self, name: str, *, required: bool = False, error: str = "") -> str | None:
        value = self.data.get(name)
        if value is None or value == "":
            if required:
                raise ApiError(error or "invalid_arguments", extra=_missing(name))
            return None
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return repr(value) if isinstance(value, float) else str(value)
        if not isinstance(value, str):
            raise ApiError("invalid_arguments", extra=_messages([f"{name} must be a string"]))
        return value

    def get_bool(self, name: str, default: bool = False) -> bool:
        value = self.data.get(name)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        return str(value).lower() in ("1", "true", "yes")

    def get_int(self, name: str, default: int) -> int:
        value = self.data.get(name)
        if value is None or value == "":
            return default
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ApiError(
                "invalid_arguments", extra=_messages([f"{name} must be an integer"])
            ) from None

    def get_json(self, name: str, *, error: str) -> Any:
        """A structured argument: JSON in a JSON body, a JSON-encoded string in a form."""
        value = self.data.get(name)
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                raise ApiError(error, extra=_messages([f"{name} is not valid JSON"])) from None
        return value


def _messages(messages: list[str]) -> Json:
    return {"response_metadata": {"messages": [f"[ERROR] {m}" for m in messages]}}


def _missing(name: str) -> Json:
    return _messages([f"missing required field: {name}"])


def _view_hash() -> str:
    return f"{int(time.time())}.{secrets.token_hex(4)}"


def ensure_ids(blocks: list[Json]) -> list[Json]:
    """What Slack stores: every block gets a ``block_id``, every interactive element an
    ``action_id``, generated when the sender left them out."""
    out = copy.deepcopy(blocks)
    for block in out:
        if not isinstance(block, dict):
            continue
        block.setdefault("block_id", random_block_id())
        elements: list[Any] = []
        if isinstance(block.get("elements"), list) and block.get("type") == "actions":
            elements = block["elements"]
        for key in ("accessory", "element"):
            if isinstance(block.get(key), dict):
                elements.append(block[key])
        for element in elements:
            if isinstance(element, dict) and element.get("type") != "image":
                element.setdefault("action_id", random_block_id())
    return out


class WebApi:
    """Serves ``/api/<method>`` against a :class:`Workspace`."""

    def __init__(self, ws: Workspace, *, bot_token: str) -> None:
        self.ws = ws
        self.bot_token = bot_token
        self.base_url = "http://127.0.0.1"  # set by the server once it listens
        self.trigger_ttl = 3.0
        self.calls: list[ApiCall] = []
        self._failures: list[_Failure] = []
        self._holds: list[Hold] = []
        self._limits: dict[str, _RateLimit] = {}
        self._lock = threading.Lock()
        self.new_response_url: Callable[..., str] = lambda **_: ""
        self._methods: dict[str, Callable[[Args, list[str]], Json]] = {
            "api.test": self.api_test,
            "auth.test": self.auth_test,
            "chat.postMessage": self.chat_post_message,
            "chat.update": self.chat_update,
            "chat.delete": self.chat_delete,
            "chat.postEphemeral": self.chat_post_ephemeral,
            "chat.getPermalink": self.chat_get_permalink,
            "reactions.add": self.reactions_add,
            "reactions.remove": self.reactions_remove,
            "reactions.get": self.reactions_get,
            "conversations.replies": self.conversations_replies,
            "conversations.history": self.conversations_history,
            "conversations.info": self.conversations_info,
            "conversations.open": self.conversations_open,
            "conversations.members": self.conversations_members,
            "conversations.list": self.conversations_list,
            "users.info": self.users_info,
            "users.list": self.users_list,
            "team.info": self.team_info,
            "views.open": self.views_open,
            "views.push": self.views_push,
            "views.update": self.views_update,
            "views.publish": self.views_publish,
        }

    @property
    def methods(self) -> list[str]:
        return sorted(self._methods)

    # -- failure injection -----------------------------------------------------------

    def fail_next(
        self,
        method: str,
        *,
        error: str | None = None,
        status: int | None = None,
        retry_after: float | None = None,
        count: int = 1,
        drop: bool = False,
    ) -> None:
        if status is None:
            status = 429 if retry_after is not None else 200
        if error is None:
            error = {429: "ratelimited"}.get(status, "internal_error" if status >= 500 else "")
            if not error and not drop:
                raise ValueError("fail_next: give an error, a non-200 status, or drop=True")
        if status == 429 and retry_after is None:
            retry_after = 1
        with self._lock:
            self._failures.append(_Failure(method, count, status, error, retry_after, drop))

    def hold_next(self, method: str, *, timeout: float = 10.0) -> Hold:
        """Hold the next call of ``method`` that is not answered by :meth:`fail_next`,
        before it is served, until released: stops a client mid-call deterministically."""
        hold = Hold(method, timeout)
        with self._lock:
            self._holds.append(hold)
        return hold

    def _wait_if_held(self, method: str) -> None:
        with self._lock:
            hold = next((h for h in self._holds if h.method == method), None)
            if hold is not None:
                self._holds.remove(hold)
        if hold is not None:
            hold.arrived.set()
            self.ws.touch()
            hold.released.wait(hold.timeout)

    def rate_limit(
        self, method: str, *, per_seconds: float = 1.0, burst: int = 1, by_channel: bool = True
    ) -> None:
        """Answer 429 with ``Retry-After`` when ``method`` is called more than ``burst``
        times per ``per_seconds`` (per channel, unless ``by_channel=False``)."""
        with self._lock:
            self._limits[method] = _RateLimit(per_seconds, burst, by_channel)

    def _take_failure(self, method: str) -> _Failure | None:
        with self._lock:
            for failure in self._failures:
                if failure.remaining > 0 and failure.method in (method, "*"):
                    failure.remaining -= 1
                    return failure
            return None

    def _rate_limited(self, method: str, args: Json) -> float | None:
        with self._lock:
            limit = self._limits.get(method)
            if limit is None:
                return None
            key = str(args.get("channel", "")) if limit.by_channel else ""
            now = time.monotonic()
            tokens, at = limit.buckets.get(key, (float(limit.burst), now))
            tokens = min(float(limit.burst), tokens + (now - at) * limit.burst / limit.interval)
            if tokens >= 1.0:
                limit.buckets[key] = (tokens - 1.0, now)
                return None
            limit.buckets[key] = (tokens, now)
            return (1.0 - tokens) * limit.interval / limit.burst

    # -- dispatch --------------------------------------------------------------------

    def handle(self, method: str, data: Json, *, token: str | None, http_method: str) -> ApiResult:
        at = time.monotonic()
        data = dict(data)
        token = token or _str_or_none(data.pop("token", None))
        call = ApiCall(method=method, args=_decoded(data), at=at, http_method=http_method)
        result = self._dispatch(method, data, token, call)
        call.status = result.status
        call.response = result.body
        if result.body is not None:
            call.ok = bool(result.body.get("ok"))
            call.error = result.body.get("error")
        else:
            call.error = "connection dropped"
        with self.ws.lock:
            self.calls.append(call)
            self.ws.touch()
        return result

    def _dispatch(self, method: str, data: Json, token: str | None, call: ApiCall) -> ApiResult:
        failure = self._take_failure(method)
        if failure is not None:
            call.injected = True
            if failure.drop:
                return ApiResult(status=0, body=None, drop=True)
            headers = {}
            if failure.retry_after is not None:
                headers["Retry-After"] = str(math.ceil(failure.retry_after))
            return ApiResult(failure.status, {"ok": False, "error": failure.error}, headers)
        self._wait_if_held(method)
        if not token:
            return ApiResult(200, {"ok": False, "error": "not_authed"})
        if token != self.bot_token:
            return ApiResult(200, {"ok": False, "error": "invalid_auth"})
        handler = self._methods.get(method)
        if handler is None:
            self.ws.warn(f"{method}: the emulator does not serve this method (unknown_method)")
            return ApiResult(200, {"ok": False, "error": "unknown_method", "req_method": method})
        wait = self._rate_limited(method, data)
        if wait is not None:
            call.injected = True
            retry = str(max(1, math.ceil(wait)))
            return ApiResult(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": retry})
        headers = {"X-OAuth-Scopes": SCOPES, "X-Accepted-OAuth-Scopes": ""}
        try:
            with self.ws.lock:
                body: Json = {"ok": True}
                body.update(handler(Args(data), call.warnings))
                self.ws.touch()
        except ApiError as exc:
            return ApiResult(
                exc.status, {"ok": False, "error": exc.error, **exc.extra}, headers | exc.headers
            )
        except Exception:
            self.ws.warn(f"{method}: emulator bug\n{traceback.format_exc()}")
            return ApiResult(500, {"ok": False, "error": "internal_error"})
        if call.warnings:
            body["warning"] = ",".join(call.warnings)
            body["response_metadata"] = {"warnings": list(call.warnings)}
        return ApiResult(200, body, headers)

    # -- helpers ---------------------------------------------------------------------

    def _channel(self, a: Args, name: str = "channel") -> Channel:
        ref = a.get_str(name)
        channel = self.ws.resolve_channel(ref) if ref else None
        if channel is None:
            raise ApiError("channel_not_found")
        return channel

    def _message(self, channel: Channel, ts: str | None) -> Message:
        message = self.ws.find_message(channel.id, ts) if ts else None
        if message is None:
            raise ApiError("message_not_found")
        return message

    def _content(
        self, a: Args, method: str, warnings: list[str], *, required: bool = True
    ) -> tuple[str | None, list[Json] | None, list[Json] | None]:
        """``text``, ``blocks`` and ``attachments``, validated like Slack does."""
        text = a.get_str("text")
        blocks = None
        if a.data.get("blocks") is not None:
            raw = a.get_json("blocks", error="invalid_blocks_format")
            if not isinstance(raw, list):
                raise ApiError(
                    "invalid_blocks_format", extra=_messages(["blocks must be an array"])
                )
            errors = validate.validate_message_blocks(raw)
            if errors:
                self.ws.warn(f"{method}: invalid_blocks: " + "; ".join(errors))
                raise ApiError(
                    "invalid_blocks",
                    extra={"errors": errors, **_messages(errors)},
                )
            blocks = ensure_ids(raw)
        attachments = None
        if a.data.get("attachments") is not None:
            raw = a.get_json("attachments", error="invalid_attachments")
            if not isinstance(raw, list):
                raise ApiError("invalid_attachments")
            attachments = raw
        if text is not None and len(text) > validate.MAX_MESSAGE_TEXT:
            raise ApiError("msg_too_long")
        has_text = text is not None and text.strip() != ""
        if required and not has_text and not blocks and not attachments:
            raise ApiError("no_text")
        if not has_text and (blocks or attachments):
            warnings.append(MISSING_TEXT)
            self.ws.warn(
                f"{method}: blocks without a top-level text fallback ({MISSING_TEXT}); "
                "notifications and screen readers show nothing"
            )
        return text, blocks, attachments

    def _ephemeral_json(self, e: Ephemeral) -> Json:
        return e.to_api(self.ws.bot_user_id, self.ws.bot_id, self.ws.app_id)

    # -- methods ---------------------------------------------------------------------

    def api_test(self, a: Args, warnings: list[str]) -> Json:
        return {"args": _decoded(a.data)}

    def auth_test(self, a: Args, warnings: list[str]) -> Json:
        ws = self.ws
        return {
            "url": f"{self.base_url}/",
            "team": ws.team_name,
            "user": ws.bot_name,
            "team_id": ws.team_id,
            "user_id": ws.bot_user_id,
            "bot_id": ws.bot_id,
            "is_enterprise_install": False,
        }

    def chat_post_message(self, a: Args, warnings: list[str]) -> Json:
        ws = self.ws
        channel = self._channel(a)
        if not channel.is_im and not channel.bot_member:
            raise ApiError("not_in_channel")
        text, blocks, attachments = self._content(a, "chat.postMessage", warnings)
        thread_ts = a.get_str("thread_ts")
        if thread_ts is not None:
            if not isinstance(a.data.get("thread_ts"), str):
                ws.warn(f"chat.postMessage: thread_ts {thread_ts} is not a string")
            parent = ws.find_message(channel.id, thread_ts)
            if parent is None:
                ws.warn(
                    f"chat.postMessage: thread_ts {thread_ts} is no message in {channel.id}; "
                    "Slack answers ok and the reply is never seen"
                )
            elif parent.thread_ts:
                ws.warn(
                    f"chat.postMessage: thread_ts {thread_ts} is a reply, not a thread's "
                    f"parent; use {parent.thread_ts}"
                )
                thread_ts = parent.thread_ts
        metadata = a.get_json("metadata", error="invalid_metadata")
        message = Message(
            channel=channel.id,
            ts=ws.next_ts(),
            user=ws.bot_user_id,
            text=text or "",
            blocks=blocks,
            attachments=attachments,
            thread_ts=thread_ts,
            bot_id=ws.bot_id,
            app_id=ws.app_id,
            reply_broadcast=a.get_bool("reply_broadcast") and thread_ts is not None,
            metadata=metadata if isinstance(metadata, dict) else None,
        )
        ws.add_message(message)
        return {"channel": channel.id, "ts": message.ts, "message": ws.message_json(message)}

    def chat_update(self, a: Args, warnings: list[str]) -> Json:
        ws = self.ws
        channel = self._channel(a)
        message = self._message(channel, a.get_str("ts"))
        if message.user != ws.bot_user_id:
            raise ApiError("cant_update_message")
        has_blocks = a.data.get("blocks") is not None
        required = not has_blocks and not message.blocks
        text, blocks, attachments = self._content(a, "chat.update", warnings, required=required)
        if text is None and not has_blocks and a.data.get("attachments") is None:
            raise ApiError("no_text")
        message.edits.append(Edit(ws.next_ts(), message.text, copy.deepcopy(message.blocks)))
        message.text = text or ""
        if has_blocks:
            message.blocks = blocks if blocks else None
        if attachments is not None:
            message.attachments = attachments or None
        message.edited = {"user": ws.bot_user_id, "ts": message.edits[-1].edited_ts}
        return {
            "channel": channel.id,
            "ts": message.ts,
            "text": message.text,
            "message": ws.message_json(message),
        }

    def chat_delete(self, a: Args, warnings: list[str]) -> Json:
        channel = self._channel(a)
        message = self._message(channel, a.get_str("ts"))
        if message.user != self.ws.bot_user_id:
            raise ApiError("cant_delete_message")
        self.ws.delete_message(message)
        return {"channel": channel.id, "ts": message.ts}

    def chat_post_ephemeral(self, a: Args, warnings: list[str]) -> Json:
        ws = self.ws
        channel = self._channel(a)
        user_id = a.get_str("user")
        if not user_id or user_id not in ws.users:
            raise ApiError("user_not_found")
        if not channel.has_member(user_id):
            raise ApiError("user_not_in_channel")
        if not channel.is_im and not channel.bot_member:
            raise ApiError("not_in_channel")
        text, blocks, _ = self._content(a, "chat.postEphemeral", warnings)
        thread_ts = a.get_str("thread_ts")
        if thread_ts and ws.find_message(channel.id, thread_ts) is None:
            ws.warn(f"chat.postEphemeral: thread_ts {thread_ts} is no message in {channel.id}")
        ephemeral = Ephemeral(
            channel=channel.id,
            user=user_id,
            ts=ws.next_ts(),
            text=text or "",
            blocks=blocks,
            thread_ts=thread_ts,
        )
        ws.ephemerals.append(ephemeral)
        return {"message_ts": ephemeral.ts}

    def chat_get_permalink(self, a: Args, warnings: list[str]) -> Json:
        channel = self._channel(a)
        message = self._message(channel, a.get_str("message_ts"))
        link = f"{self.base_url}/archives/{channel.id}/p{message.ts.replace('.', '')}"
        if message.thread_ts:
            link += f"?thread_ts={message.thread_ts}&cid={channel.id}"
        return {"channel": channel.id, "permalink": link}

    def _reaction_target(self, a: Args) -> tuple[Message, str]:
        channel = self._channel(a)
        message = self._message(channel, a.get_str("timestamp"))
        name = a.get_str("name")
        if not name:
            raise ApiError("invalid_name")
        if ":" in name.strip(":") or name.startswith(":") or any(c.isspace() for c in name):
            raise ApiError("invalid_name")
        return message, name

    def reactions_add(self, a: Args, warnings: list[str]) -> Json:
        message, name = self._reaction_target(a)
        users = message.reactions.setdefault(name, [])
        if self.ws.bot_user_id in users:
            raise ApiError("already_reacted")
        users.append(self.ws.bot_user_id)
        return {}

    def reactions_remove(self, a: Args, warnings: list[str]) -> Json:
        message, name = self._reaction_target(a)
        users = message.reactions.get(name, [])
        if self.ws.bot_user_id not in users:
            raise ApiError("no_reaction")
        users.remove(self.ws.bot_user_id)
        if not users:
            del message.reactions[name]
        return {}

    def reactions_get(self, a: Args, warnings: list[str]) -> Json:
        channel = self._channel(a)
        message = self._message(channel, a.get_str("timestamp"))
        return {
            "type": "message",
            "channel": channel.id,
            "message": self.ws.message_json(message),
        }

    def _page(self, a: Args, messages: list[Message], default_limit: int) -> Json:
        limit = max(1, min(a.get_int("limit", default_limit), 1000))
        cursor = a.get_str("cursor")
        start = int(cursor) if cursor and cursor.isdigit() else 0
        page = messages[start : start + limit]
        more = start + limit < len(messages)
        return {
            "messages": [self.ws.message_json(m) for m in page],
            "has_more": more,
            "response_metadata": {"next_cursor": str(start + limit) if more else ""},
        }

    def _window(self, a: Args, messages: list[Message]) -> list[Message]:
        try:
            oldest = float(a.get_str("oldest") or 0)
        except ValueError:
            raise ApiError("invalid_ts_oldest") from None
        try:
            latest = float(a.get_str("latest") or "inf")
        except ValueError:
            raise ApiError("invalid_ts_latest") from None
        inclusive = a.get_bool("inclusive")

        def inside(m: Message) -> bool:
            ts = float(m.ts)
            low = ts >= oldest if inclusive else ts > oldest
            high = ts <= latest if inclusive else ts < latest
            return low and high

        return [m for m in messages if inside(m)]

    def conversations_replies(self, a: Args, warnings: list[str]) -> Json:
        channel = self._channel(a)
        ts = a.get_str("ts")
        message = self.ws.find_message(channel.id, ts) if ts else None
        if message is None:
            raise ApiError("thread_not_found")
        root = self.ws.find_message(channel.id, message.root_ts)
        if root is None:
            raise ApiError("thread_not_found")
        thread = [root, *self.ws.replies(channel.id, root.ts)]
        return self._page(a, self._window(a, thread), 1000)

    def conversations_history(self, a: Args, warnings: list[str]) -> Json:
        channel = self._channel(a)
        top = [
            m
            for m in self.ws.messages.get(channel.id, [])
            if m.thread_ts is None or m.reply_broadcast
        ]
        newest_first = list(reversed(self._window(a, top)))
        return {**self._page(a, newest_first, 100), "pin_count": 0}

    def conversations_info(self, a: Args, warnings: list[str]) -> Json:
        channel = self._channel(a)
        return {"channel": channel.to_api(self.ws.member_count(channel))}

    def conversations_open(self, a: Args, warnings: list[str]) -> Json:
        users = [u for u in (a.get_str("users") or "").split(",") if u]
        if a.get_str("channel"):
            channel = self._channel(a)
        elif len(users) == 1 and users[0] in self.ws.users:
            channel = self.ws.open_im(users[0])
        elif not users:
            raise ApiError("users_list_not_supplied")
        else:
            raise ApiError("user_not_found")
        return {"channel": {"id": channel.id}}

    def conversations_members(self, a: Args, warnings: list[str]) -> Json:
        channel = self._channel(a)
        members = [u for u in self.ws.users if channel.has_member(u) or u == self.ws.bot_user_id]
        return {"members": members, "response_metadata": {"next_cursor": ""}}

    def conversations_list(self, a: Args, warnings: list[str]) -> Json:
        types = set((a.get_str("types") or "public_channel").split(","))
        out = []
        for channel in self.ws.channels.values():
            kind = "im" if channel.is_im else "private_channel" if channel.is_private else None
            if (kind or "public_channel") in types:
                out.append(channel.to_api(self.ws.member_count(channel)))
        return {"channels": out, "response_metadata": {"next_cursor": ""}}

    def users_info(self, a: Args, warnings: list[str]) -> Json:
        user = self.ws.users.get(a.get_str("user") or "")
        if user is None:
            raise ApiError("user_not_found")
        return {"user": user.to_api(self.ws.team_id)}

    def users_list(self, a: Args, warnings: list[str]) -> Json:
        members = [u.to_api(self.ws.team_id) for u in self.ws.users.values()]
        return {"members": members, "response_metadata": {"next_cursor": ""}}

    def team_info(self, a: Args, warnings: list[str]) -> Json:
        ws = self.ws
        return {"team": {"id": ws.team_id, "name": ws.team_name, "domain": ws.team_domain}}

    # -- views -----------------------------------------------------------------------

    def _view_arg(self, a: Args, expected_type: str | None) -> Json:
        view = a.get_json("view", error="invalid_arguments")
        if view is None:
            raise ApiError("invalid_arguments", extra=_missing("view"))
        errors = validate.validate_view(view, expected_type=expected_type)
        if errors:
            self.ws.warn("views: invalid_arguments: " + "; ".join(errors))
            raise ApiError("invalid_arguments", extra=_messages(errors))
        assert isinstance(view, dict)
        view = dict(view)
        view["blocks"] = ensure_ids(view.get("blocks", []))
        return view

    def _trigger(self, a: Args) -> str:
        trigger_id = a.get_str("trigger_id")
        if not trigger_id:
            raise ApiError("invalid_arguments", extra=_missing("trigger_id"))
        trigger = self.ws.triggers.get(trigger_id)
        if trigger is None:
            raise ApiError("invalid_trigger_id")
        if trigger.used:
            raise ApiError("exchanged_trigger_id")
        trigger.used = True
        age = time.monotonic() - trigger.issued
        if age > self.trigger_ttl:
            self.ws.warn(f"views: trigger_id used after {age:.1f} s (Slack allows 3 s)")
            raise ApiError("expired_trigger_id")
        return trigger.user

    def _new_view(
        self, user: str, definition: Json, root: str | None = None, previous: str | None = None
    ) -> View:
        ws = self.ws
        view_id = random_id("V", 10)
        view = View(
            id=view_id,
            user=user,
            definition=definition,
            hash=_view_hash(),
            team_id=ws.team_id,
            app_id=ws.app_id,
            bot_id=ws.bot_id,
            root_view_id=root or view_id,
            previous_view_id=previous,
        )
        ws.views[view_id] = view
        return view

    def views_open(self, a: Args, warnings: list[str]) -> Json:
        definition = self._view_arg(a, "modal")
        user = self._trigger(a)
        for old in self.ws.modal_stacks.get(user, []):
            self.ws.views[old].is_open = False
            self.ws.views[old].closed_by = "replaced"
        view = self._new_view(user, definition)
        self.ws.modal_stacks[user] = [view.id]
        return {"view": view.to_api()}

    def views_push(self, a: Args, warnings: list[str]) -> Json:
        definition = self._view_arg(a, "modal")
        user = self._trigger(a)
        stack = self.ws.modal_stacks.get(user, [])
        if not stack:
            raise ApiError("not_found")
        if len(stack) >= 3:
            raise ApiError("push_limit_reached")
        top = self.ws.views[stack[-1]]
        view = self._new_view(user, definition, root=top.root_view_id, previous=top.id)
        stack.append(view.id)
        return {"view": view.to_api()}

    def views_update(self, a: Args, warnings: list[str]) -> Json:
        view_id = a.get_str("view_id")
        external_id = a.get_str("external_id")
        if not view_id and not external_id:
            raise ApiError("invalid_arguments", extra=_missing("view_id"))
        view: View | None = None
        for candidate in self.ws.views.values():
            if (view_id and candidate.id == view_id) or (
                external_id and candidate.definition.get("external_id") == external_id
            ):
                view = candidate
        if view is None:
            raise ApiError("not_found")
        definition = self._view_arg(a, view.type)
        expected = a.get_str("hash")
        if expected is not None and expected != view.hash:
            raise ApiError("hash_conflict")
        if not view.is_open and view.type == "modal":
            self.ws.warn(f"views.update: view {view.id} is closed; the user sees nothing")
        view.definition = definition
        view.hash = _view_hash()
        view.errors = {}
        return {"view": view.to_api()}

    def views_publish(self, a: Args, warnings: list[str]) -> Json:
        user_id = a.get_str("user_id")
        if not user_id or user_id not in self.ws.users:
            raise ApiError("user_not_found")
        definition = self._view_arg(a, "home")
        existing = self.ws.views.get(self.ws.home_views.get(user_id, ""))
        expected = a.get_str("hash")
        if existing is not None:
            if expected is not None and expected != existing.hash:
                raise ApiError("hash_conflict")
            existing.definition = definition
            existing.hash = _view_hash()
            return {"view": existing.to_api()}
        view = self._new_view(user_id, definition)
        self.ws.home_views[user_id] = view.id
        return {"view": view.to_api()}


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _decoded(data: Json) -> Json:
    """Arguments as the bot meant them: JSON-encoded form fields decoded."""
    out: Json = {}
    for key, value in data.items():
        if key in ("blocks", "attachments", "view", "metadata") and isinstance(value, str):
            try:
                out[key] = json.loads(value)
                continue
            except ValueError:
                pass
        out[key] = value
    return out
