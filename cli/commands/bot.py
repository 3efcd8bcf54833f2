"""``agents bot``: the Slack surface, in Socket Mode or HTTP mode, with its reporter."""

from __future__ import annotations

import argparse
import gc
import logging
import threading

import redis

from process import logs, settings
from runs.store import RunStore

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "bot",
        help="run the Slack bot (Socket Mode with SLACK_APP_TOKEN, else HTTP mode)",
        description="Run the Slack bot and its thread reporter. Needs SLACK_BOT_TOKEN and "
        "either SLACK_APP_TOKEN (Socket Mode) or SLACK_SIGNING_SECRET (HTTP mode: "
        "POST /slack/events, GET /healthz and /metrics on AGENTS_BOT_PORT). "
        "AGENTS_METRICS_PORT serves /healthz and /metrics on a port of their own.",
    )
    parser.add_argument(
        "--host",
        default="0.0.0.0",  # noqa: S104
        help="address the HTTP server(s) listen on",
    )
    parser.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    bot_settings = settings.load(settings.BotSettings)
    logs.setup(bot_settings)
    from bot.app import create_app
    from bot.http import asgi_app
    from bot.services import Services
    from bot.slack_client import web_client
    from jobs.metrics import metrics_app
    from process.endpoints import ops_app, ops_connection, redis_health, serve_ops
    from process.http import HttpServer

    connection = redis.Redis.from_url(bot_settings.redis_url, socket_connect_timeout=5)
    ops = ops_connection(bot_settings.redis_url)
    healthy = redis_health(ops)
    metrics = metrics_app(
        RunStore(ops, retention_seconds=bot_settings.run_retention_seconds),
        [bot_settings.queue],
    )
    client = web_client(bot_settings.slack_bot_token.get_secret_value(), bot_settings.slack_api_url)
    services = Services.from_settings(bot_settings, connection, client)
    app = create_app(services, client)
    github = None
    if bot_settings.github_webhook_secret is not None:
        from bot.github_webhooks import GitHubWebhooks, github_endpoint

        github = github_endpoint(
            GitHubWebhooks(
                connection,
                services.store,
                secret=bot_settings.github_webhook_secret.get_secret_value(),
                queue=bot_settings.queue,
                allowed_repos=bot_settings.allowed_repos,
            )
        )
    # Everything loaded so far lives as long as the process: keep it out of the full
    # garbage collections, whose pauses otherwise land on Slack requests (bench/status.py).
    gc.collect()
    gc.freeze()
    stop = threading.Event()
    reporter = threading.Thread(target=services.reporter.run_forever, args=(stop,), daemon=True)
    reporter.start()

    ops_server = None
    if bot_settings.metrics_port is not None:
        ops_host = bot_settings.metrics_host
        ops_server = serve_ops(ops_app(healthy, metrics), ops_host, bot_settings.metrics_port)
        log.info("bot: /healthz and /metrics on %s:%s", ops_host, bot_settings.metrics_port)
    try:
        if bot_settings.slack_app_token is not None:
            from slack_bolt.adapter.socket_mode import SocketModeHandler

            log.info("bot: Socket Mode")
            handler = SocketModeHandler(app, bot_settings.slack_app_token.get_secret_value())
            handler.start()  # type: ignore[no-untyped-call]
        else:
            secret = bot_settings.slack_signing_secret
            assert secret is not None  # settings require it in HTTP mode
            served = asgi_app(app, secret.get_secret_value(), healthy, metrics, github)
            server = HttpServer(served, args.host, bot_settings.bot_port)
            log.info(
                "bot: HTTP mode on %s:%s (/slack/events,%s /healthz, /metrics)",
                args.host,
                bot_settings.bot_port,
                " /github/events," if github is not None else "",
            )
            server.serve_forever()
    finally:
        stop.set()
        if ops_server is not None:
            ops_server.stop()
        reporter.join(timeout=5)
        connection.close()
        ops.close()
    return 0
