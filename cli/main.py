"""``agents``: dispatches to one subcommand module per verb.

Settings problems end the process with one line naming the variable and exit code 2.
Other failures are the subcommand's to report; one it did not expect still ends with
one line and exit code 1, its traceback logged at DEBUG only.
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
    "env",
    "reap",
    "config",
)

EXIT_SETTINGS = 2
EXIT_FAILED = 1


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
    except Exception as exc:
        logging.getLogger("cli").debug("agents %s failed", args.command, exc_info=True)
        what = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
        print(f"agents {args.command}: {what}", file=sys.stderr)
        return EXIT_FAILED
    return code


if __name__ == "__main__":
    sys.exit(main())
