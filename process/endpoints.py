"""``/healthz`` and ``/metrics`` for operators, and the threaded WSGI server.

No Slack and no RQ here, so both roles may use it: a worker (``AGENTS_METRICS_PORT``)
serves these without loading bolt, and HTTP mode adds ``/slack/events`` in front of them
(:mod:`bot.http`). The ``/metrics`` app is :func:`jobs.metrics.metrics_app`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

log = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
Wsgi = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
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


class ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)


def serve(app: Wsgi, host: str, port: int) -> ThreadingServer:
    """A threaded WSGI server, not yet serving: call ``serve_forever`` on it."""
    server = make_server(host, port, app, server_class=ThreadingServer, handler_class=_QuietHandler)
    return server


def serve_in_background(app: Wsgi, host: str, port: int) -> ThreadingServer:
    """Serve ``app`` from a daemon thread; stop with ``shutdown()`` then ``server_close()``."""
    server = serve(app, host, port)
    threading.Thread(target=server.serve_forever, name="ops-http", daemon=True).start()
    return server
