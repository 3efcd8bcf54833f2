"""``/healthz`` and ``/metrics`` for operators.

No Slack and no RQ here, so both roles may use it: a worker (``AGENTS_METRICS_PORT``)
serves these without loading bolt, and HTTP mode adds ``/slack/events`` in front of them
(:mod:`bot.http`). The ``/metrics`` app is :func:`jobs.metrics.metrics_app`. They are
served by :class:`process.http.HttpServer`, whose limits every port shares.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from process.http import HttpServer, StartResponse, Wsgi, from_wsgi

log = logging.getLogger(__name__)

__all__ = ["Health", "StartResponse", "Wsgi", "ops_app", "serve_ops"]
#: Why the process is unhealthy, or None when it is healthy.
Health = Callable[[], str | None]


def ops_connection(url: str) -> redis.Redis:
    """A client for health checks and scrapes: bounded timeouts and no retries, so
    a Redis that is down or hung makes them answer within seconds, not hang."""
    return redis.Redis.from_url(
        url, socket_connect_timeout=3, socket_timeout=3, retry=Retry(NoBackoff(), 0)
    )


def redis_health(connection: redis.Redis) -> Health:
    """Healthy while Redis answers a PING: without it no run can be recorded, enqueued
    or worked. Pass an :func:`ops_connection`."""

    def check() -> str | None:
        try:
            connection.ping()
        except redis.RedisError as exc:
            return f"redis unreachable: {exc}"
        return None

    return check


def ops_app(healthy: Health, metrics: Wsgi | None = None) -> Wsgi:
    """``/healthz`` (200 ``ok``, or 503 with the reason) and, if given, ``/metrics``."""

    def route(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/healthz":
            problem = healthy()
            start_response(
                "200 OK" if problem is None else "503 Service Unavailable",
                [("Content-Type", "text/plain; charset=utf-8")],
            )
            return [("ok" if problem is None else problem).encode() + b"\n"]
        if path == "/metrics" and metrics is not None:
            return metrics(environ, start_response)
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found\n"]

    return route


def serve_ops(app: Wsgi, host: str, port: int) -> HttpServer:
    """Serve ``app`` (:func:`ops_app`) from a daemon thread; ``stop()`` ends it."""
    return HttpServer(from_wsgi(app), host, port).start()
