"""``agents``: dispatches to one subcommand module per verb.

Settings problems end the process with one line naming the variable and exit code 2;
every other failure is the subcommand's to report.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from process.exceptions import SettingsError

#: Subcommand modules under ``cli.commands``, in the order ``--help`` lists them.
COMMANDS = (
    "demo",
    "bot",
    "worker",
    "run",
    "decide",
    "logs",
    "eval",
    "stats",
    "status",
    "doctor",
    "sandbox",
    "reap",
    "config",
)

EXIT_SETTINGS = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="agents",
        description="A Slack bot that turns a chat message into a reviewed pull request.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"cli.commands.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        code: int = args.func(args)
    except SettingsError as exc:
        print(f"agents {args.command}: {exc}", file=sys.stderr)
        return EXIT_SETTINGS
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
