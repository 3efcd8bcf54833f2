"""HTTP mode: ``/slack/events`` for Slack, ``/github/events`` for GitHub's webhooks
(:mod:`bot.github_webhooks`, when ``GITHUB_WEBHOOK_SECRET`` is set), then ``/healthz`` and
``/metrics`` (:mod:`process.endpoints`) on the same port."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler

from bot.github_webhooks import PATH as GITHUB_PATH
from process.endpoints import Health, StartResponse, Wsgi, ops_app
from process.endpoints import serve as serve


def wsgi_app(
    app: App, healthy: Health, metrics: Wsgi | None = None, github: Wsgi | None = None
) -> Wsgi:
    """Slack's requests go to bolt, GitHub's to ``github`` (if webhooks are on),
    everything else to :func:`process.endpoints.ops_app`."""
    slack = SlackRequestHandler(app)
    ops = ops_app(healthy, metrics)

    def route(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/slack/events":
            return slack(environ, start_response)
        if path == GITHUB_PATH and github is not None:
            return github(environ, start_response)
        return ops(environ, start_response)

    return route
