"""``agents rework N "feedback"``, ``agents approve N``, ``agents cancel N``,
``agents resume N``: what the thread's buttons and replies do, from a terminal.

Each verb asks :mod:`jobs.decisions`, the module every Slack surface asks, so the rule
is the same: the run's requester or an approver (``AGENTS_APPROVERS``) decides. The
terminal says who it is with ``--as`` (a Slack user id; ``cli`` is who ``agents run``
asks as). The work itself is done by a worker, as from Slack: an approve or a rework is
a job on the queue (``agents logs N -f`` follows it).

Runs started by ``agents run`` live under their own store prefix; ``--runs cli`` picks
them (with ``REDIS_URL`` set, since otherwise they live in that command's memory).
"""

from __future__ import annotations

import argparse
import re
import sys

import redis
from redis.exceptions import ConnectionError as RedisConnectionError

from jobs import decisions
from jobs.queue import RunQueue
from process import settings
from process.logs import mask_url
from runs.store import RunStore

EXIT_REFUSED = 1
EXIT_USAGE = 2
#: The store prefix of the bot's runs and of ``agents run``'s (see ``cli.commands.run``).
STORE_PREFIXES = {"bot": "agents", "cli": "agents-cli"}
VERBS = {
    "rework": "start the next iteration of a run with your feedback (same branch)",
    "approve": "approve a run awaiting a decision (a worker marks its PR ready or merges it)",
    "cancel": "cancel a run that is not finished; its sandbox is removed",
    "resume": "resume a run whose worker died or whose job was lost, from its last step",
}
_SLACK_MENTION = re.compile(r"<@([A-Za-z0-9_.-]+)>")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    for verb, summary in VERBS.items():
        parser = subparsers.add_parser(
            verb,
            help=summary,
            description=summary[0].upper() + summary[1:] + ". Goes through the same "
            "decisions as the Slack thread: the run's requester or an approver may.",
        )
        parser.add_argument("run", help="the run's id, e.g. 42 or #42")
        if verb == "rework":
            parser.add_argument("feedback", help="what should change, in plain words")
        parser.add_argument(
            "--as",
            dest="user",
            default="cli",
            metavar="USER",
            help="who decides: a Slack user id (default: cli, who `agents run` asks as)",
        )
        parser.add_argument(
            "--runs",
            choices=sorted(STORE_PREFIXES),
            default="bot",
            help="whose runs: the bot's (default) or those `agents run` started",
        )
        parser.set_defaults(func=handle, verb=verb)


def parse_run_id(word: str) -> int | None:
    """``42`` or ``#42`` (ASCII digits only) as a run id; None otherwise."""
    word = word.strip().removeprefix("#")
    return int(word) if word.isascii() and word.isdigit() and len(word) <= 12 else None


def plain(text: str) -> str:
    """A decision's text for a terminal: Slack's ``<@U123>`` as ``U123``."""
    return _SLACK_MENTION.sub(r"\1", text)


def decide(
    args: argparse.Namespace, queue: RunQueue, operator: settings.OperatorSettings, run_id: int
) -> decisions.Outcome:
    approvers = operator.approvers
    if args.verb == "rework":
        return decisions.request_rework(
            queue, run_id, args.user, args.feedback, approvers=approvers
        )
    if args.verb == "approve":
        return decisions.request_approval(queue, run_id, args.user, approvers=approvers)
    if args.verb == "cancel":
        return decisions.cancel(queue, run_id, args.user, approvers=approvers)
    return decisions.resume(
        queue, run_id, args.user, approvers=approvers, max_attempts=operator.max_attempts
    )


def handle(args: argparse.Namespace) -> int:
    run_id = parse_run_id(args.run)
    if run_id is None:
        print(
            f"agents {args.verb}: {args.run[:40]!r} is not a run id; try `agents {args.verb} 42`",
            file=sys.stderr,
        )
        return EXIT_USAGE
    operator = settings.load(settings.OperatorSettings)
    connection = redis.Redis.from_url(operator.redis_url, socket_connect_timeout=3)
    try:
        store = RunStore(
            connection,
            retention_seconds=operator.run_retention_seconds,
            prefix=STORE_PREFIXES[args.runs],
        )
        queue = RunQueue(connection, store, name=operator.queue, job_timeout=operator.job_timeout)
        outcome = decide(args, queue, operator, run_id)
    except RedisConnectionError as exc:
        print(
            f"agents {args.verb}: cannot reach Redis at {mask_url(operator.redis_url)} ({exc}); "
            "start it or set REDIS_URL",
            file=sys.stderr,
        )
        return EXIT_REFUSED
    finally:
        connection.close()
    print(plain(outcome.text), file=sys.stdout if outcome.done else sys.stderr)
    if outcome.done and args.verb in ("rework", "approve", "resume"):
        print(f"A worker carries it out; follow it with `agents logs {run_id} -f`.")
    return 0 if outcome.done else EXIT_REFUSED
