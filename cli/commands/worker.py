"""``agents worker``: run RQ jobs for runs.

Logging is set up here, before RQ forks anything: each job's work horse and the
scheduler inherit the handler, so they log JSON with secrets masked too.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import TYPE_CHECKING

import redis

from process import logs, settings
from process.logs import mask_url
from runs.store import RunStore

if TYPE_CHECKING:
    from process.http import HttpServer

log = logging.getLogger(__name__)

EXIT_NO_REDIS = 1


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
    parser.add_argument(
        "--host",
        default=None,
        help="address /healthz and /metrics listen on, with AGENTS_METRICS_PORT "
        "(default AGENTS_METRICS_HOST, loopback)",
    )
    parser.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    worker_settings = settings.load(settings.WorkerSettings)
    logs.setup(worker_settings)
    from jobs.worker import start_worker
    from process.endpoints import ops_connection

    where = mask_url(worker_settings.redis_url)
    probe = ops_connection(worker_settings.redis_url)
    try:
        probe.ping()
    except redis.RedisError as exc:
        print(
            f"agents worker: cannot reach Redis at {where} ({exc}); start it or set REDIS_URL",
            file=sys.stderr,
        )
        return EXIT_NO_REDIS
    finally:
        probe.close()
    server, ops = _serve_ops(worker_settings, args.host or worker_settings.metrics_host)
    try:
        start_worker(worker_settings, burst=args.burst, name=args.name)
    except redis.ConnectionError as exc:
        print(f"agents worker: lost Redis at {where} ({exc}); stopping", file=sys.stderr)
        return EXIT_NO_REDIS
    finally:
        if server is not None:
            server.stop()
        if ops is not None:
            ops.close()
    return 0


def _serve_ops(
    worker_settings: settings.WorkerSettings, host: str
) -> tuple[HttpServer | None, redis.Redis | None]:
    """``/healthz`` and ``/metrics`` on ``AGENTS_METRICS_PORT``, if set."""
    port = worker_settings.metrics_port
    if port is None:
        return None, None
    from jobs.metrics import metrics_app
    from process.endpoints import ops_app, ops_connection, redis_health, serve_ops

    ops = ops_connection(worker_settings.redis_url)
    store = RunStore(ops, retention_seconds=worker_settings.run_retention_seconds)
    app = ops_app(redis_health(ops), metrics_app(store, [worker_settings.queue]))
    server = serve_ops(app, host, port)
    log.info("worker: /healthz and /metrics on %s:%s", host, port)
    return server, ops
