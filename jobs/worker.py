"""Starting an RQ worker for runs."""

from __future__ import annotations

import logging
import os
import socket

import redis
from rq import Queue, Worker

from core.settings import WorkerSettings
from core.store import RunStore
from jobs.queue import RunQueue
from jobs.recovery import RecoveryThread
from sandboxes import engine
from sandboxes.reaper import Reaper, ReaperThread

log = logging.getLogger(__name__)


def connect(url: str) -> redis.Redis:
    """A Redis client for RQ (which needs bytes responses) with bounded connect time."""
    return redis.Redis.from_url(url, socket_connect_timeout=5, health_check_interval=30)


def start_recovery(settings: WorkerSettings, connection: redis.Redis) -> RecoveryThread:
    """Sweep for runs whose worker died now, then every ``recovery_interval`` seconds.

    Returns the started thread; call ``stop()`` on it.
    """
    store = RunStore(connection, retention_seconds=settings.run_retention_seconds)
    queue = RunQueue(connection, store, name=settings.queue, job_timeout=settings.job_timeout)
    thread = RecoveryThread(
        store, queue, max_attempts=settings.max_attempts, interval=settings.recovery_interval
    )
    thread.start()
    return thread


def start_reaper(settings: WorkerSettings, connection: redis.Redis) -> ReaperThread | None:
    """Remove leftover sandboxes now, then every ``reap_interval`` seconds.

    A worker on the local sandbox backend may have no Docker engine; it only says so.
    """
    client = engine.try_connect()
    if client is None:
        log.warning("no Docker engine: sandbox containers will not be reaped")
        return None
    store = RunStore(connection, retention_seconds=settings.run_retention_seconds)
    reaper = Reaper(client, is_final=store.is_final, store=store.identity)
    thread = ReaperThread(reaper, interval=settings.reap_interval)
    thread.start()
    return thread


def start_worker(settings: WorkerSettings, *, burst: bool = False, name: str | None = None) -> bool:
    """Work the configured queue, with RQ's scheduler, until stopped (or drained if burst).

    A recovery thread resumes (or fails) runs whose worker died; see :mod:`jobs.recovery`.
    """
    connection = connect(settings.redis_url)
    queue = Queue(settings.queue, connection=connection)
    worker = Worker(
        [queue],
        connection=connection,
        name=name or f"{socket.gethostname()}.{os.getpid()}",
    )
    recovery = start_recovery(settings, connect(settings.redis_url))
    reaper = start_reaper(settings, connection)
    log.info("worker %s listening on queue %r", worker.name, settings.queue)
    try:
        return bool(worker.work(burst=burst, with_scheduler=True, logging_level=settings.log_level))
    finally:
        recovery.stop(timeout=5)
        recovery.store.redis.close()
        if reaper is not None:
            reaper.stop(timeout=5)
            reaper.reaper.client.close()
