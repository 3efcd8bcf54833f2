"""``agents worker``: run RQ jobs for runs."""

from __future__ import annotations

import argparse

from core import settings


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "worker",
        help="start an RQ worker (with the scheduler) on the configured queue",
        description="Start an RQ worker with the scheduler. Needs REDIS_URL, and the model "
        "key and forge token unless AGENTS_MODEL_BACKEND=replay / AGENTS_FORGE=local.",
    )
    parser.add_argument(
        "--burst", action="store_true", help="exit once the queue is empty (drain mode)"
    )
    parser.add_argument("--name", help="worker name (default: host.pid)")
    parser.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    worker_settings = settings.load(settings.WorkerSettings)
    from jobs.worker import start_worker

    start_worker(worker_settings, burst=args.burst, name=args.name)
    return 0
