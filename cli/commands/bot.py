"""``agents bot``: the Slack surface, in Socket Mode or HTTP mode, with its reporter."""

from __future__ import annotations

import argparse
import logging
import threading

import redis

from core import settings

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "bot",
        help="run the Slack bot (Socket Mode with SLACK_APP_TOKEN, else HTTP mode)",
        description="Run the Slack bot and its thread reporter. Needs SLACK_BOT_TOKEN and "
        "either SLACK_APP_TOKEN (Socket Mode) or SLACK_SIGNING_SECRET (HTTP mode: "
        "POST /slack/events, GET /healthz on AGENTS_BOT_PORT).",
    )
    parser.add_argument("--host", default="0.0.0.0", help="HTTP mode: address to listen on")  # noqa: S104
    parser.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    bot_settings = settings.load(settings.BotSettings)
    from bot.app import create_app
    from bot.http import serve, wsgi_app
    from bot.reporter import Reporter
    from bot.services import Services
    from bot.slack_client import make_client

    connection = redis.Redis.from_url(bot_settings.redis_url, socket_connect_timeout=5)
    services = Services.from_settings(bot_settings, connection)
    client = make_client(
        bot_settings.slack_bot_token.get_secret_value(), bot_settings.slack_api_url
    )
    app = create_app(services, client)
    stop = threading.Event()
    reporter = threading.Thread(
        target=Reporter(services.store, client).run_forever, args=(stop,), daemon=True
    )
    reporter.start()

    def healthy() -> bool:
        try:
            return bool(connection.ping())
        except redis.RedisError:
            return False

    try:
        if bot_settings.slack_app_token is not None:
            from slack_bolt.adapter.socket_mode import SocketModeHandler

            log.info("bot: Socket Mode")
            handler = SocketModeHandler(app, bot_settings.slack_app_token.get_secret_value())
            handler.start()  # type: ignore[no-untyped-call]
        else:
            server = serve(wsgi_app(app, healthy), args.host, bot_settings.bot_port)
            log.info(
                "bot: HTTP mode on %s:%s (/slack/events, /healthz)",
                args.host,
                bot_settings.bot_port,
            )
            server.serve_forever()
    finally:
        stop.set()
        reporter.join(timeout=5)
        connection.close()
    return 0
