"""A running bolt app (HTTP mode) talking to the Slack emulator, on real Redis."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import redis
from slack_sdk import WebClient

from bot.app import create_app
from bot.github_webhooks import GitHubWebhooks, github_endpoint
from bot.http import asgi_app
from bot.reporter import Reporter
from bot.services import Services
from bot.slack_client import web_client
from fakes.slack.delivery import sign
from fakes.slack.server import SlackEmulator
from process.http import HttpLimits, HttpServer
from process.settings import BotSettings

ALICE, BOB, CAROL = "U_ALICE", "U_BOB", "U_CAROL"
GENERAL = "C_GENERAL"


@dataclass
class Harness:
    emu: SlackEmulator
    services: Services
    client: WebClient
    executor: ThreadPoolExecutor

    def settle(self) -> None:
        """Wait until every delivery so far has been handled (listeners run in order)."""
        self.executor.submit(lambda: None).result(timeout=60)

    def wait(self, predicate: Any, what: str, timeout: float = 30.0) -> Any:
        return self.emu.wait_for(predicate, timeout=timeout, what=what)


def bot_settings(emu: SlackEmulator, **overrides: Any) -> BotSettings:
    values: dict[str, Any] = {
        "slack_bot_token": emu.bot_token,
        "slack_signing_secret": emu.signing_secret,
        "slack_api_url": emu.api_url,
        "channel_repos": {GENERAL: "acme/api"},
        "approvers": [CAROL],
        "queue": "bot-tests",
    }
    values.update(overrides)
    return BotSettings(_env_file=None, **values)  # type: ignore[call-arg]


@contextmanager
def open_harness(
    connection: redis.Redis, *, limits: HttpLimits | None = None, **overrides: Any
) -> Iterator[Harness]:
    """The bolt app served over HTTP on a free port, the emulator delivering to it
    (``limits``: the server's, the product's defaults unless given)."""
    emu = SlackEmulator().start()
    emu.add_user(CAROL, "carol")
    emu.subscriptions = {"app_mention", "message.im"}
    client = web_client(emu.bot_token, emu.api_url)
    services = Services.from_settings(bot_settings(emu, **overrides), connection, client)
    executor = ThreadPoolExecutor(max_workers=1)
    app = create_app(services, client, listener_executor=executor)
    github = None
    secret = services.settings.github_webhook_secret
    if secret is not None:  # GitHub's webhooks on the same server, as `agents bot` does
        github = github_endpoint(
            GitHubWebhooks(
                connection,
                services.store,
                secret=secret.get_secret_value(),
                queue=services.settings.queue,
                allowed_repos=services.settings.allowed_repos,
            )
        )
    served = asgi_app(app, emu.signing_secret, lambda: None, github=github, limits=limits)
    server = HttpServer(served, "127.0.0.1", 0, limits).start()
    emu.bot_url = f"http://127.0.0.1:{server.port}/slack/events"
    try:
        yield Harness(emu=emu, services=services, client=client, executor=executor)
    finally:
        server.stop()
        executor.shutdown(wait=True)
        emu.stop()


@pytest.fixture
def harness(real_redis_conn: redis.Redis, request: pytest.FixtureRequest) -> Iterator[Harness]:
    with open_harness(real_redis_conn, **getattr(request, "param", {})) as h:
        yield h


def post_raw(
    url: str,
    body: str,
    content_type: str,
    *,
    secret: str | None,
    timestamp: int,
    signed_body: str | None = None,
) -> int:
    """POST ``body``; signed with ``secret`` over ``signed_body`` (default: ``body``),
    or without any signature headers when ``secret`` is None. Returns the HTTP status."""
    headers = {"Content-Type": content_type}
    if secret is not None:
        headers["X-Slack-Request-Timestamp"] = str(timestamp)
        headers["X-Slack-Signature"] = sign(
            secret, str(timestamp), body if signed_body is None else signed_body
        )
    request = urllib.request.Request(  # noqa: S310 - a loopback URL we built
        url, data=body.encode(), method="POST", headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as err:
        status = int(err.code)
        err.close()
        return status


def drain(reporter: Reporter, limit: float = 60.0) -> None:
    """Poll until nothing is dirty (a bound against a hang, not a timing assertion)."""
    deadline = time.monotonic() + limit
    while reporter.poll(block_ms=100) and time.monotonic() < deadline:
        pass
    assert not reporter.dirty, (
        f"the reporter hung: runs {sorted(reporter.dirty)} not drawn after {limit:.0f} s"
    )
