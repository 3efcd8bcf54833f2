"""Run the emulator on its own: ``python -m fakes.slack --bot-url URL``.

Prints the environment the bot needs (``SLACK_API_URL``, ``SLACK_BOT_TOKEN``,
``SLACK_SIGNING_SECRET``) and the page's address, then serves until interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import threading

from fakes.slack.server import SlackEmulator


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fakes.slack", description=__doc__)
    parser.add_argument("--port", type=int, default=int(os.environ.get("EMULATOR_PORT", 3001)))
    parser.add_argument(
        "--bot-url",
        default=os.environ.get("EMULATOR_BOT_URL"),
        help="where the bot takes events, e.g. http://127.0.0.1:3000/slack/events",
    )
    parser.add_argument("--signing-secret", default=os.environ.get("SLACK_SIGNING_SECRET"))
    parser.add_argument("--bot-token", default=os.environ.get("SLACK_BOT_TOKEN"))
    args = parser.parse_args(argv)
    emulator = SlackEmulator(
        port=args.port,
        bot_url=args.bot_url,
        signing_secret=args.signing_secret,
        bot_token=args.bot_token,
    )
    with emulator:
        for key, value in emulator.env().items():
            print(f"export {key}={value}")
        print(f"# Slack emulator: {emulator.url}/  (bot URL: {emulator.bot_url or 'none yet'})")
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
