"""Putting runs on the RQ queue, and taking them off again.

A run's job id derives from the run id and iteration, so enqueueing the same run twice
is a no-op the second time (RQ's ``unique=True`` checks and saves atomically).
"""

from __future__ import annotations

import logging
from types import TracebackType
from typing import Any

import redis
from rq import Callback, Queue
from rq.command import send_stop_job_command
from rq.exceptions import DuplicateJobError, InvalidJobOperation, NoSuchJobError
from rq.job import Job, JobStatus

from core.exceptions import InvalidTransition, RunNotFound
from core.run import Run, RunStatus
from core.store import DEFAULT_RETENTION_SECONDS, RunStore

log = logging.getLogger(__name__)

#: The function a worker runs for a run. A string, so enqueueing never imports it.
RUN_JOB = "jobs.entrypoints.run"


def job_id_for(run_id: int, iteration: int = 1) -> str:
    return f"agents-run-{run_id}-{iteration}"


def store_for(job: Job) -> RunStore:
    """The store a job's run lives in, rebuilt from the job (RQ forks; nothing is shared)."""
    return RunStore(
        job.connection,
        retention_seconds=int(job.meta.get("retention_seconds", DEFAULT_RETENTION_SECONDS)),
        prefix=str(job.meta.get("store_prefix", "agents")),
    )


def on_job_failure(
    job: Job,
    connection: redis.Redis,
    exc_type: type[BaseException] | None,
    exc: BaseException | None,
    tb: TracebackType | None,
) -> None:
    """RQ failure callback: mark the run failed with the reason, unless it is final."""
    run_id = int(job.meta["run_id"])
    store = store_for(job)
    if exc_type is None:
        reason = "the job failed without an exception"
    else:
        reason = f"{exc_type.__name__}: {exc}" if str(exc) else exc_type.__name__
    try:
        store.transition(run_id, RunStatus.FAILED, by=f"rq:{job.id}", reason=reason)
    except (InvalidTransition, RunNotFound):
        log.info("run #%s already final or gone; failure of %s not recorded", run_id, job.id)


class RunQueue:
    """The queue of runs. Holds its connection and store; nothing is module-global."""

    def __init__(
        self,
        connection: redis.Redis,
        store: RunStore,
        *,
        name: str = "agents",
        job_timeout: int = 3600,
        job_func: str = RUN_JOB,
    ) -> None:
        self.connection = connection
        self.job_func = job_func
        self.store = store
        self.queue = Queue(name, connection=connection)
        self.job_timeout = job_timeout

    def enqueue(self, run: Run) -> Job | None:
        """Enqueue ``run``'s current iteration. Returns None if it was already enqueued."""
        job_id = job_id_for(run.id, run.iteration)
        try:
            return self.queue.enqueue_call(
                self.job_func,
                args=(run.id,),
                job_id=job_id,
                unique=True,
                timeout=self.job_timeout,
                result_ttl=self.store.retention_seconds,
                failure_ttl=self.store.retention_seconds,
                description=f"run {run.label} on {run.repo} (iteration {run.iteration})",
                meta={
                    "run_id": run.id,
                    "iteration": run.iteration,
                    "retention_seconds": self.store.retention_seconds,
                    "store_prefix": self.store.prefix,
                },
                on_failure=Callback(on_job_failure),
            )
        except DuplicateJobError:
            log.info("run %s iteration %s already enqueued as %s", run.label, run.iteration, job_id)
            return None

    def job(self, run: Run) -> Job | None:
        try:
            return Job.fetch(job_id_for(run.id, run.iteration), connection=self.connection)
        except NoSuchJobError:
            return None

    def cancel(self, run_id: int, *, by: str, reason: str | None = None) -> Run:
        """Mark the run cancelled (recording who), then stop or dequeue its job.

        The status changes first, so a worker stopped mid-step sees a final run and its
        failure callback does not overwrite the cancellation.
        """
        run = self.store.transition(
            run_id, RunStatus.CANCELLED, by=by, reason=reason or f"cancelled by {by}"
        )
        job = self.job(run)
        if job is not None:
            status = job.get_status(refresh=True)
            if status == JobStatus.STARTED:
                try:
                    send_stop_job_command(self.connection, job.id)
                except InvalidJobOperation:
                    log.info("job %s finished before it could be stopped", job.id)
            elif status in (JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED):
                job.cancel()
        return run

    def position(self, run: Run) -> int | None:
        """0-based position of the run's job in the queue, or None if not waiting."""
        ids: list[Any] = self.queue.get_job_ids()
        job_id = job_id_for(run.id, run.iteration)
        return ids.index(job_id) if job_id in ids else None
