"""``agents run``: one request end to end from the terminal, without Slack."""

from __future__ import annotations

import argparse

from core.exceptions import NotBuiltYet


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run one request end to end from the terminal (no Slack)",
        description="Run one request end to end and print the run as the thread shows it.",
    )
    parser.add_argument("request", help="what to change, in plain words")
    parser.add_argument("--repo", required=True, help="a local path or owner/name")
    parser.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    raise NotBuiltYet(
        "the blueprint (prepare, agent, checks, review, publish) that `agents run` drives "
        "is not built yet"
    )
