"""Starting an RQ worker for runs."""

from __future__ import annotations

import logging
import os
import socket

import redis
from rq import Queue, Worker

from core.settings import WorkerSettings

log = logging.getLogger(__name__)


def connect(url: str) -> redis.Redis:
    """A Redis client for RQ (which needs bytes responses) with bounded connect time."""
    return redis.Redis.from_url(url, socket_connect_timeout=5, health_check_interval=30)


def start_worker(settings: WorkerSettings, *, burst: bool = False, name: str | None = None) -> bool:
    """Work the configured queue, with RQ's scheduler, until stopped (or drained if burst)."""
    connection = connect(settings.redis_url)
    queue = Queue(settings.queue, connection=connection)
    worker = Worker(
        [queue],
        connection=connection,
        name=name or f"{socket.gethostname()}.{os.getpid()}",
    )
    log.info("worker %s listening on queue %r", worker.name, settings.queue)
    return bool(worker.work(burst=burst, with_scheduler=True, logging_level=settings.log_level))
