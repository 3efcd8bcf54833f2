"""Two small bots to test the emulator with, independent of the real one in ``bot/``.

* :class:`RecordingBot` records every request, checks its signature with slack_sdk's
  ``SignatureVerifier`` and answers what the test tells it to.
* :func:`tiny_bolt_app` is a real slack-bolt app (listeners for a mention, two buttons,
  a modal and ``/agents``), served over HTTP by :class:`BoltServer`, that calls the
  emulator back through the real ``WebClient``. If bolt routes the emulator's
  payloads to these listeners, they are shaped like Slack's.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from slack_bolt import Ack, App, BoltRequest, Respond, Say
from slack_sdk import WebClient
from slack_sdk.signature import SignatureVerifier

Json = dict[str, Any]


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: str
    signature_ok: bool


@dataclass
class Answer:
    status: int = 200
    body: str = ""
    content_type: str = "application/json"


class _Http(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: Any


class _Handler(BaseHTTPRequestHandler):
    server: _Http

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode()
        answer: Answer = self.server.owner.handle(self.path, dict(self.headers.items()), body)
        data = answer.body.encode()
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _Served:
    """An HTTP server on 127.0.0.1 in a thread; subclasses implement ``handle``."""

    def __init__(self) -> None:
        self._http = _Http(("127.0.0.1", 0), _Handler)
        self._http.owner = self
        self._thread = threading.Thread(
            target=self._http.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._http.server_address[1]}/slack/events"

    def handle(self, path: str, headers: dict[str, str], body: str) -> Answer:
        raise NotImplementedError

    def close(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._thread.join(timeout=5)


class RecordingBot(_Served):
    """Records requests; answers with ``respond(received)`` (default: 200, empty)."""

    def __init__(self, signing_secret: str) -> None:
        self.verifier = SignatureVerifier(signing_secret)
        self.received: list[Received] = []
        self.respond: Callable[[Received], Answer] = lambda _: Answer()
        self._lock = threading.Lock()
        super().__init__()

    def handle(self, path: str, headers: dict[str, str], body: str) -> Answer:
        ok = self.verifier.is_valid_request(body, headers)
        received = Received(path, headers, body, ok)
        with self._lock:
            self.received.append(received)
        return self.respond(received)

    def payloads(self) -> list[Json]:
        """Bodies as JSON: events as sent, interactions from their ``payload`` field."""
        out: list[Json] = []
        for r in self.received:
            if r.body.startswith("{"):
                out.append(json.loads(r.body))
            elif r.body.startswith("payload="):
                out.append(json.loads(parse_qs(r.body)["payload"][0]))
            else:
                out.append({k: v[0] for k, v in parse_qs(r.body).items()})
        return out


class BoltServer(_Served):
    """Serves a bolt ``App`` over HTTP, like ``App.start()`` but stoppable."""

    def __init__(self, app: App) -> None:
        self.app = app
        super().__init__()

    def handle(self, path: str, headers: dict[str, str], body: str) -> Answer:
        request = BoltRequest(
            body=body,
            query=urlsplit(path).query,
            headers={k.lower(): [v] for k, v in headers.items()},
        )
        response = self.app.dispatch(request)
        content_type = (response.headers.get("content-type") or ["text/plain"])[0]
        return Answer(response.status, response.body, content_type)


@dataclass
class TinyBotLog:
    """What the tiny bolt app's listeners saw."""

    mentions: list[Json] = field(default_factory=list)
    messages: list[Json] = field(default_factory=list)
    actions: list[Json] = field(default_factory=list)
    submissions: list[Json] = field(default_factory=list)
    commands: list[Json] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def run_blocks(status: str, *, buttons: bool) -> list[Json]:
    blocks: list[Json] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*#1* · `acme/api` · {status}"}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "iteration 1"}]},
        {"type": "divider"},
    ]
    if buttons:
        blocks.append(
            {
                "type": "actions",
                "block_id": "run_actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "Approve"},
                        "action_id": "approve",
                        "value": '{"run": 1}',
                        "style": "primary",
                    },
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "Rework"},
                        "action_id": "rework",
                        "value": '{"run": 1}',
                    },
                ],
            }
        )
    return blocks


REWORK_MODAL: Json = {
    "type": "modal",
    "callback_id": "rework_modal",
    "private_metadata": "",
    "title": {"type": "plain_text", "text": "Rework #1"},
    "submit": {"type": "plain_text", "text": "Send"},
    "close": {"type": "plain_text", "text": "Cancel"},
    "blocks": [
        {
            "type": "input",
            "block_id": "feedback",
            "label": {"type": "plain_text", "text": "What should change?"},
            "element": {"type": "plain_text_input", "action_id": "text", "multiline": True},
        }
    ],
}


def tiny_bolt_app(api_url: str, token: str, signing_secret: str) -> tuple[App, TinyBotLog]:
    """A bolt app doing what the real bot does, in miniature."""
    client = WebClient(token=token, base_url=api_url)
    app = App(client=client, signing_secret=signing_secret)
    log = TinyBotLog()

    @app.event("app_mention")
    def on_mention(event: Json, say: Say, client: WebClient) -> None:
        log.mentions.append(event)
        client.reactions_add(channel=event["channel"], timestamp=event["ts"], name="eyes")
        say(
            text="#1 acme/api: awaiting your decision",
            blocks=run_blocks("awaiting your decision", buttons=True),
            thread_ts=event.get("thread_ts") or event["ts"],
        )

    @app.event("message")
    def on_message(event: Json) -> None:
        log.messages.append(event)

    @app.action("approve")
    def on_approve(ack: Ack, body: Json, client: WebClient, respond: Respond) -> None:
        ack()
        log.actions.append(body)
        client.chat_update(
            channel=body["channel"]["id"],
            ts=body["message"]["ts"],
            text="#1 acme/api: approved",
            blocks=run_blocks("approved", buttons=False),
        )
        respond(text="You approved #1.", response_type="ephemeral", replace_original=False)

    @app.action("rework")
    def on_rework(ack: Ack, body: Json, client: WebClient) -> None:
        ack()
        log.actions.append(body)
        modal = dict(REWORK_MODAL, private_metadata=json.dumps(body["container"]))
        client.views_open(trigger_id=body["trigger_id"], view=modal)

    @app.view("rework_modal")
    def on_rework_submit(ack: Ack, body: Json, view: Json, client: WebClient) -> None:
        log.submissions.append(body)
        text = view["state"]["values"]["feedback"]["text"]["value"] or ""
        if len(text.strip()) < 5:
            ack(response_action="errors", errors={"feedback": "Say a little more (5+ characters)."})
            return
        ack()
        container = json.loads(view["private_metadata"])
        client.chat_postMessage(
            channel=container["channel_id"],
            thread_ts=container.get("thread_ts") or container["message_ts"],
            text=f"Rework requested: {text}",
        )

    @app.command("/agents")
    def on_command(ack: Ack, command: Json, respond: Respond) -> None:
        log.commands.append(command)
        if command["text"] == "status":
            ack(text="1 running, 0 queued")
        else:
            ack()
            respond(text=f"Unknown subcommand {command['text']!r}")

    @app.error
    def on_error(error: Exception) -> None:
        log.errors.append(repr(error))

    return app, log
