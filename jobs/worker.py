"""Starting an RQ worker for runs."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import time

import redis
from redis.backoff import EqualJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry
from rq import Queue, Worker
from rq.exceptions import DuplicateJobError

from jobs import drain
from jobs.config import egress_config
from jobs.environments.upkeep import EnvironmentUpkeep, lease_checker, rebuilder
from jobs.queue import RunQueue
from jobs.recovery import RecoveryThread
from process.periodic import Periodic
from process.settings import WorkerSettings, bytes_of, seconds_of
from runs.store import RunStore
from sandboxes import engine
from sandboxes.cache import RepoCache
from sandboxes.egress_proxy import EgressProxy, EgressSupervisor
from sandboxes.pool import WarmPool
from sandboxes.reaper import Reaper, ReaperThread

log = logging.getLogger(__name__)


#: How long a command keeps retrying while Redis is away (a restart, a failover):
#: waits double from 0.1-0.2 s up to 1-2 s, about 20 to 35 s in all.
REDIS_RETRIES = 20
#: Seconds RQ keeps an idle worker's registration alive between heartbeats (its key
#: lives 60 s longer). RQ's default, 420, let a SIGKILLed worker count as alive in
#: ``/agents status`` and ``/metrics`` for eight minutes; this makes it two at most.
WORKER_TTL = 60
#: Seconds the worker's command listener (RQ's pubsub thread) waits for a message before
#: it looks again whether it should stop. RQ sets 60, and with redis-py >= 8 (whose
#: ``stop()`` joins the thread without a bound) a worker that is told to quit sometimes
#: waits all of it: the thread took the reply to RQ's UNSUBSCRIBE, and then sleeps
#: ``sleep_time`` waiting for a new subscription before it sees its stop flag.
COMMAND_POLL_SECONDS = 1.0


def redis_for_rq(url: str) -> redis.Redis:
    """A Redis client for RQ (which needs bytes responses) with bounded connect time.

    Commands are retried with backoff when the connection drops, so a Redis restart
    does not fail the run a job is working on: its writes land once the server is back
    (a transaction that was watching keys is rerun by the store's WATCH loop instead).
    """
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=5,
        health_check_interval=30,
        retry=Retry(EqualJitterBackoff(cap=2.0, base=0.2), REDIS_RETRIES),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
    )


class RunWorker(Worker):
    """RQ's worker, plus a drain: a warm shutdown (SIGTERM) also tells the work horse,
    which stops its run at the next step and hands it back (:mod:`jobs.drain`).

    Without it the worker would wait for the whole run, up to the job timeout.
    """

    def _install_signal_handlers(self) -> None:
        super()._install_signal_handlers()  # type: ignore[no-untyped-call]
        # Inherited by each horse until it listens: a drain request that arrives in
        # between is ignored (the job then runs to its end) rather than killing it.
        signal.signal(drain.SIGNAL, signal.SIG_IGN)

    def handle_warm_shutdown_request(self) -> None:
        super().handle_warm_shutdown_request()  # type: ignore[no-untyped-call]
        horse = self.horse_pid
        if horse:
            log.info("worker %s: asking work horse %s to stop at its next step", self.name, horse)
            with contextlib.suppress(ProcessLookupError):
                os.kill(horse, drain.SIGNAL)

    def subscribe(self) -> None:
        """RQ's, with a listener that notices a stop within :data:`COMMAND_POLL_SECONDS`
        (see there): a shutdown (SIGTERM, the end of a burst) took up to a minute more."""
        self.log.info("Worker %s: subscribing to channel %s", self.name, self.pubsub_channel_name)
        self.pubsub = self.connection.pubsub()
        self.pubsub.subscribe(**{self.pubsub_channel_name: self.handle_payload})
        self.pubsub_thread = self.pubsub.run_in_thread(  # type: ignore[assignment]
            sleep_time=COMMAND_POLL_SECONDS,
            daemon=True,
            exception_handler=self._pubsub_exception_handler,
        )

    def setup_work_horse_signals(self) -> None:
        super().setup_work_horse_signals()  # type: ignore[no-untyped-call]
        drain.listen()


def start_recovery(settings: WorkerSettings, connection: redis.Redis) -> RecoveryThread:
    """Sweep for runs whose worker died now, then every ``recovery_interval`` seconds.

    Returns the started thread; call ``stop()`` on it.
    """
    store = RunStore(connection, retention_seconds=settings.run_retention_seconds)
    queue = RunQueue(connection, store, name=settings.queue, job_timeout=settings.job_timeout)
    thread = RecoveryThread(
        store,
        queue,
        max_attempts=settings.max_attempts,
        interval=settings.recovery_interval,
        budget_ask_timeout=settings.budget_ask_timeout,
    )
    thread.start()
    return thread


def start_upkeep(settings: WorkerSettings, connection: redis.Redis) -> EnvironmentUpkeep | None:
    """Keep environments current and pools filled, in the background (see
    :mod:`jobs.environments.upkeep`); None on the local backend or without an engine."""
    from pathlib import Path

    from jobs.blueprint.wiring import open_deps, open_environments

    store = RunStore(connection, retention_seconds=settings.run_retention_seconds)
    envs = open_environments(settings, store, RepoCache(Path(settings.cache_dir) / "repos"))
    if envs is None:
        return None
    max_age = seconds_of(settings.env_max_age)
    upkeep = EnvironmentUpkeep(
        envs,
        budget=bytes_of(settings.env_disk_budget),
        is_live=lease_checker(store, max_age),
        rebuild=rebuilder(lambda: open_deps(settings, store)),
        interval=float(settings.reap_interval),
    )
    upkeep.start()
    return upkeep


def start_reaper(
    settings: WorkerSettings, connection: redis.Redis, pool: WarmPool | None = None
) -> ReaperThread | None:
    """Remove leftover sandboxes now, then every ``reap_interval`` seconds; with
    ``pool``, claimed warm-pool containers too.

    A worker on the local sandbox backend may have no Docker engine; it only says so.
    """
    client = engine.try_connect()
    if client is None:
        log.warning("no Docker engine: sandbox containers will not be reaped")
        return None
    store = RunStore(connection, retention_seconds=settings.run_retention_seconds)
    reaper = Reaper(client, is_final=store.is_final, store=store.identity, pool=pool)
    thread = ReaperThread(reaper, interval=settings.reap_interval)
    thread.start()
    return thread


def start_egress_supervisor(settings: WorkerSettings) -> EgressSupervisor | None:
    """Restart the egress proxy when it stops or turns unhealthy (it is created when a
    setup first needs it, never by the supervisor)."""
    if settings.sandbox_backend == "local":
        return None
    client = engine.try_connect()
    if client is None:
        return None
    thread = EgressSupervisor(EgressProxy(client, egress_config(settings)))
    thread.start()
    return thread


STATS_JOB = "jobs.entrypoints.stats_job"


def enqueue_stats(queue: Queue, interval: int, *, prefix: str = "agents") -> bool:
    """Enqueue this interval's stats pass unless a worker already did (one job id per
    interval, enqueued once: RQ's ``unique``). True if this call enqueued it."""
    slot = int(time.time() // interval)
    try:
        queue.enqueue_call(
            STATS_JOB,
            job_id=f"agents-stats-{slot}",
            unique=True,
            timeout=max(interval, 600),
            result_ttl=interval,
            failure_ttl=86400,
            description="stats pass: outcomes, merged PRs, line survival",
            meta={"store_prefix": prefix},
        )
    except DuplicateJobError:
        return False
    return True


def start_stats(settings: WorkerSettings, connection: redis.Redis) -> Periodic:
    """Ask for a stats pass every ``stats_interval`` seconds."""
    queue = Queue(settings.queue, connection=connection)
    started = False

    def ask() -> None:  # not at start: a restarting fleet would ask for one at once
        nonlocal started
        if started:
            enqueue_stats(queue, settings.stats_interval)
        started = True

    thread = Periodic("stats", settings.stats_interval, ask)
    thread.start()
    return thread


def start_worker(settings: WorkerSettings, *, burst: bool = False, name: str | None = None) -> bool:
    """Work the configured queue, with RQ's scheduler, until stopped (or drained if burst).

    A recovery thread resumes (or fails) runs whose worker died; see :mod:`jobs.recovery`.
    """
    # RQ forks a work horse per job: load the jobs' code once here, and the Anthropic SDK
    # (seconds to import) when this worker calls the real API, so every horse inherits
    # them instead of importing them. A replay worker never needs the SDK.
    import jobs.entrypoints  # noqa: F401

    if settings.model_backend == "anthropic":
        import anthropic  # noqa: F401

    connection = redis_for_rq(settings.redis_url)
    queue = Queue(settings.queue, connection=connection)
    worker = RunWorker(
        [queue],
        connection=connection,
        name=name or f"{socket.gethostname()}.{os.getpid()}",
        worker_ttl=WORKER_TTL,
    )
    recovery = start_recovery(settings, redis_for_rq(settings.redis_url))
    upkeep = start_upkeep(settings, redis_for_rq(settings.redis_url))
    reaper = start_reaper(settings, connection, upkeep.envs.pool if upkeep else None)
    egress = start_egress_supervisor(settings)
    # A burst worker drains the queue and leaves; the stats pass is the long-lived ones' job.
    stats = None if burst else start_stats(settings, redis_for_rq(settings.redis_url))
    log.info("worker %s listening on queue %r", worker.name, settings.queue)
    try:
        return bool(worker.work(burst=burst, with_scheduler=True, logging_level=settings.log_level))
    finally:
        if stats is not None:
            stats.stop(timeout=5)
        recovery.stop(timeout=5)
        recovery.store.redis.close()
        if upkeep is not None:
            upkeep.stop(timeout=5)
            upkeep.envs.engine.close()
            upkeep.envs.redis.close()
        if reaper is not None:
            reaper.stop(timeout=5)
            reaper.reaper.client.close()
        if egress is not None:
            egress.stop(timeout=5)
            egress.proxy.client.close()
