"""HTTP mode: ``/slack/events`` for Slack, then ``/healthz`` and ``/metrics``
(:mod:`process.endpoints`) on the same port."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler

from process.endpoints import Health, StartResponse, Wsgi, ops_app
from process.endpoints import serve as serve


def wsgi_app(app: App, healthy: Health, metrics: Wsgi | None = None) -> Wsgi:
    """Slack's requests go to bolt, everything else to :func:`process.endpoints.ops_app`."""
    slack = SlackRequestHandler(app)
    ops = ops_app(healthy, metrics)

    def route(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "") == "/slack/events":
            return slack(environ, start_response)
        return ops(environ, start_response)

    return route
