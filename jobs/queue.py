"""Putting runs on the RQ queue, and taking them off again.

A run's job id derives from the run id, iteration and attempt, so enqueueing the same
run twice is a no-op the second time (RQ's ``unique=True`` checks and saves
atomically). The id of a run's current job is also kept next to the run, so
cancelling finds the job that crash recovery enqueued, not only the first one.

A little over the usual size: enqueueing, cancelling and rescuing jobs share the job
id scheme and RQ's registries, which belong in one place.
"""

from __future__ import annotations

import logging
import time
from types import TracebackType
from typing import Any

import redis
from rq import Callback, Queue, Worker
from rq.command import send_stop_job_command
from rq.exceptions import AbandonedJobError, DuplicateJobError, InvalidJobOperation, NoSuchJobError
from rq.job import Job, JobStatus
from rq.registry import StartedJobRegistry

from process.exceptions import InvalidTransition, RunNotFound
from runs.record import Run, RunStatus, approval_in_progress
from runs.store import DEFAULT_RETENTION_SECONDS, RunStore

log = logging.getLogger(__name__)

#: The functions a worker runs. Strings, so enqueueing never imports them.
RUN_JOB = "jobs.entrypoints.run_job"
APPROVE_JOB = "jobs.entrypoints.approve_job"
CANCEL_JOB = "jobs.entrypoints.cancel_job"
#: Move a job id from the list KEYS[1] to the front of the queue KEYS[2], atomically;
#: 1 if this call moved it, 0 if it was no longer there.
_MOVE_TO_FRONT = """
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 1 then
  redis.call('LPUSH', KEYS[2], ARGV[1])
  return 1
end
return 0
"""
#: Times a dead approve job is enqueued again for one iteration (then a click must).
APPROVE_RESUMES = 3
#: Job states of a job that has not run yet.
_WAITING = {JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED}
#: Job states after which a job id may be reused for the same run (crash recovery).
OVER = {JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED, JobStatus.FINISHED}


def job_id_for(run_id: int, iteration: int = 1, attempts: int = 0) -> str:
    """``agents-run-<id>-<iteration>``; a run resumed after ``attempts`` starts gets
    ``-r<attempts>`` on top, so each resumption is a job of its own."""
    base = f"agents-run-{run_id}-{iteration}"
    return f"{base}-r{attempts}" if attempts else base


def approve_job_id(run_id: int, iteration: int) -> str:
    return f"agents-approve-{run_id}-{iteration}"


def _runs_job(connection: redis.Redis, job: Job) -> bool:
    """Whether the worker ``job`` names is registered and working on it: a killed one
    drops out within ``jobs.worker.WORKER_TTL`` plus a minute, and one restarted under
    the same name (host and pid) is working on something else, or nothing."""
    if not job.worker_name:
        return False
    key = f"{Worker.redis_worker_namespace_prefix}{job.worker_name}"
    worker = Worker.find_by_key(key, connection=connection)
    return worker is not None and worker.get_current_job_id() == job.id


def current_job_key(prefix: str, run_id: int) -> str:
    return f"{prefix}:run:{run_id}:job"


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
    current: Any = connection.get(current_job_key(store.prefix, run_id))
    if current is not None and _text(current) != job.id:
        log.info(
            "job %s of run #%s was superseded by %s; not failing the run",
            job.id,
            run_id,
            _text(current),
        )
        return
    if exc_type is AbandonedJobError:
        # The worker died mid-job. The recovery sweep (jobs.recovery) resumes or fails
        # the run once its heartbeat has stopped; failing it here would lose it.
        log.warning("job %s of run #%s was abandoned; leaving it to crash recovery", job.id, run_id)
        return
    if exc_type is None:
        reason = "the job failed without an exception"
    else:
        reason = f"{exc_type.__name__}: {exc}" if str(exc) else exc_type.__name__
    try:
        store.transition(run_id, RunStatus.FAILED, by=f"rq:{job.id}", reason=reason)
    except (InvalidTransition, RunNotFound):
        log.info("run #%s already final or gone; failure of %s not recorded", run_id, job.id)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


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
        self._move_to_front = connection.register_script(_MOVE_TO_FRONT)

    def enqueue(self, run: Run, *, replace_finished: bool = False) -> Job | None:
        """Enqueue ``run``'s current iteration. Returns None if it was already enqueued.

        ``replace_finished``: if a job with this run's id exists but is over (failed,
        stopped, finished), delete it first; crash recovery uses this.
        """
        job_id = job_id_for(run.id, run.iteration, run.attempts)
        if replace_finished:
            self._drop_if_over(job_id)
        # Before the job exists, so its failure callback always knows it is current.
        self.connection.set(
            current_job_key(self.store.prefix, run.id), job_id, ex=self.store.retention_seconds
        )
        return self._enqueue_once(
            self.job_func,
            run,
            (run.id,),
            job_id,
            timeout=self.job_timeout,
            description=f"run {run.label} on {run.repo} (iteration {run.iteration})",
            on_failure=Callback(on_job_failure),
        )

    @property
    def name(self) -> str:
        return str(self.queue.name)

    def serves(self, run: Run) -> bool:
        """Whether ``run`` is this queue's to recover: the queue it records, or for a run
        that records none (stored before runs did), its current job's queue. A run with
        neither was never enqueued anywhere: every queue may take it, as before."""
        if run.home_queue is not None:
            return run.home_queue == self.name
        job = self.job(run)
        return job is None or job.origin == self.name

    def rescue_stranded(self, grace_seconds: float) -> list[str]:
        """Put back jobs a worker took off the queue but never started.

        RQ moves a job into ``<queue>:intermediate`` when a worker takes it and out when
        the job starts. A worker killed in between leaves it there, where nothing runs it
        and RQ's own clean-up only fails it some ten minutes on. A job seen there for
        ``grace_seconds`` (a live worker needs milliseconds) goes back to the front of the
        queue. Only the caller whose LREM removed it pushes it back, so concurrent
        sweepers rescue a job once. Returns the ids put back.
        """
        intermediate = self.queue.intermediate_queue_key
        started = self.queue.started_job_registry
        rescued: list[str] = []
        now = time.time()
        for raw in self.connection.lrange(intermediate, 0, -1):
            job_id = _text(raw)
            if job_id in started:
                continue
            seen_key = f"{self.store.prefix}:stranded:{job_id}"
            self.connection.set(seen_key, now, nx=True, ex=3600)
            first_seen = float(_text(self.connection.get(seen_key) or str(now)))
            if now - first_seen < grace_seconds:
                continue
            # One script: a sweeper killed between taking the id out and putting it
            # back would leave the job in no list at all, queued for ever.
            if self._move_to_front(keys=[intermediate, self.queue.key], args=[job_id]):
                self.connection.delete(seen_key)
                log.warning("job %s was taken by a worker that died before starting it", job_id)
                rescued.append(job_id)
        return rescued

    def _drop_if_over(self, job_id: str) -> None:
        """Delete an ended job so its id can be used again (a retry, or a resumption)."""
        try:
            earlier = Job.fetch(job_id, connection=self.connection)
        except NoSuchJobError:
            return
        if earlier.get_status(refresh=True) in OVER:
            earlier.delete()

    def _enqueue_once(
        self,
        func: str,
        run: Run,
        args: tuple[Any, ...],
        job_id: str,
        *,
        timeout: int,
        description: str,
        at_front: bool = False,
        on_failure: Callback | None = None,
    ) -> Job | None:
        """Enqueue ``func`` under ``job_id`` unless a job with that id exists (None)."""
        try:
            return self.queue.enqueue_call(
                func,
                args=args,
                job_id=job_id,
                unique=True,
                timeout=timeout,
                result_ttl=self.store.retention_seconds,
                failure_ttl=self.store.retention_seconds,
                description=description,
                meta={
                    "run_id": run.id,
                    "iteration": run.iteration,
                    "retention_seconds": self.store.retention_seconds,
                    "store_prefix": self.store.prefix,
                },
                at_front=at_front,
                on_failure=on_failure,
            )
        except DuplicateJobError:
            log.info("%s is already enqueued", job_id)
            return None

    def request_rework(self, run_id: int, *, by: str, feedback: str) -> Run:
        """Record feedback and start the next iteration on the same branch.

        Only a run awaiting a decision can be reworked; the status change, the new
        iteration and the feedback are one atomic write, so two submissions make one
        iteration. Raises :class:`InvalidTransition` otherwise.
        """

        def next_iteration(run: Run) -> None:
            if approval_in_progress(run):
                # An approve is acting on the forge for this iteration: it wins.
                raise InvalidTransition(run_id, "approving", RunStatus.REWORK.value)
            run.iteration += 1
            run.attempts = 0
            run.add_feedback(by, feedback)

        run = self.store.transition(
            run_id,
            RunStatus.REWORK,
            by=by,
            reason=f"rework requested by {by}",
            expect=RunStatus.AWAITING_DECISION,
            change=next_iteration,
        )
        self.enqueue(run)
        return run

    def request_approval(self, run: Run, *, by: str) -> Job | None:
        """Enqueue the approve job for the run's current iteration; None if already asked.

        The job (on a worker, which holds the forge token) marks the PR ready or merges
        it, then moves the run to approved.
        """
        job_id = approve_job_id(run.id, run.iteration)
        # An ended attempt (the forge failed, or the clicker was refused) while the run
        # still awaits a decision: this click is a fresh try.
        self._drop_if_over(job_id)
        return self._enqueue_once(
            APPROVE_JOB,
            run,
            (run.id, by),
            job_id,
            timeout=600,
            description=f"approve {run.label} for {by}",
            at_front=True,
        )

    def resume_approval(self, run_id: int) -> Job | None:
        """Enqueue the approve job again if the one acting for the run's current
        iteration died: it took the run's approve guard and never let go (its worker was
        killed before or after the forge call), or its worker was killed before it took
        the guard (RQ still lists it as started).

        Approving again is safe: a PR already merged or ready is left as it is and the
        run becomes approved. Each iteration is resumed at most
        :data:`APPROVE_RESUMES` times, so an approve that keeps crashing gives up and
        waits for a click. None if nothing needs resuming, its job is alive, another
        sweeper is resuming it, or the resumes are used up.
        """
        run = self.store.get(run_id)
        if run.status is not RunStatus.AWAITING_DECISION:
            return None
        key = f"{self.store.prefix}:approve-resume:{run.id}:{run.iteration}"
        # One sweeper at a time: two deleting and enqueueing the same job id could
        # each start an approve.
        if not self.connection.set(f"{key}:lock", 1, nx=True, ex=60):
            return None
        try:
            return self._resume_approval_locked(run_id, key)
        finally:
            self.connection.delete(f"{key}:lock")

    def _resume_approval_locked(self, run_id: int, key: str) -> Job | None:
        run = self.store.get(run_id)  # as it is now that the lock is ours
        if run.status is not RunStatus.AWAITING_DECISION:
            return None
        guard = run.artifacts.approving if approval_in_progress(run) else None
        job = self.job_for_approval(run)
        if job is not None:
            status = job.get_status(refresh=True)
            if status in _WAITING or status is JobStatus.FINISHED:
                return None  # about to run, or it ended and is letting go of the guard
            if status is JobStatus.STARTED and _runs_job(self.connection, job):
                return None
            if guard is None and status is not JobStatus.STARTED:
                return None  # it ended (refused, or the forge failed): a click retries
        if guard is None and job is None:
            return None
        with self.connection.pipeline() as pipe:
            pipe.incr(f"{key}:count")
            pipe.expire(f"{key}:count", self.store.retention_seconds)
            resumes = int(pipe.execute()[0])
        if resumes > APPROVE_RESUMES:
            return None
        by = guard.by if guard else str(job.args[1]) if job else "recovery"
        if job is not None:
            job.delete()
        log.warning("run #%d: its approve job died; enqueueing it again", run.id)
        return self.request_approval(run, by=by)

    def started_approvals(self) -> list[int]:
        """Run ids of approve jobs RQ lists as started on this queue. A worker killed
        before its approve took the run's guard leaves one behind, and only RQ knows."""
        run_ids = []
        for job_id in StartedJobRegistry(queue=self.queue).get_job_ids(cleanup=False):
            prefix, _, rest = str(job_id).partition("agents-approve-")
            run_id, _, _ = rest.partition("-")
            if not prefix and run_id.isascii() and run_id.isdigit():
                run_ids.append(int(run_id))
        return sorted(set(run_ids))

    def job_for_approval(self, run: Run) -> Job | None:
        """The approve job of the run's current iteration, if RQ has one."""
        try:
            return Job.fetch(approve_job_id(run.id, run.iteration), connection=self.connection)
        except NoSuchJobError:
            return None

    def job(self, run: Run) -> Job | None:
        """The run's current job: the last one enqueued for it, if RQ still has it."""
        current: Any = self.connection.get(current_job_key(self.store.prefix, run.id))
        job_id = _text(current) if current is not None else job_id_for(run.id, run.iteration)
        try:
            return Job.fetch(job_id, connection=self.connection)
        except NoSuchJobError:
            return None

    def cancel(self, run_id: int, *, by: str, reason: str | None = None) -> Run:
        """Mark the run cancelled (recording who), then stop or dequeue its job.

        The status changes first, so a worker stopped mid-step sees a final run and its
        failure callback does not overwrite the cancellation. Refused (like a rework)
        while an approve holds the run's guard.
        """

        def not_while_approving(run: Run) -> None:
            if approval_in_progress(run):
                # The approve may be merging right now: a cancel must not claim otherwise.
                raise InvalidTransition(run_id, "approving", RunStatus.CANCELLED.value)

        run = self.store.transition(
            run_id,
            RunStatus.CANCELLED,
            by=by,
            reason=reason or f"cancelled by {by}",
            change=not_while_approving,
        )
        self.stop_job(run, by=by)
        return run

    def stop_job(self, run: Run, *, by: str) -> None:
        """Stop the run's job if it is working, or take it off the queue if it waits.

        A stopped job's work horse is killed, so its sandbox is left behind: a cleanup
        job (``jobs.entrypoints.cancel_job``) removes it, and the reaper would too.
        """
        job = self.job(run)
        if job is None:
            return
        status = job.get_status(refresh=True)
        if status == JobStatus.STARTED:
            try:
                send_stop_job_command(self.connection, job.id)
            except InvalidJobOperation:
                log.info("job %s finished before it could be stopped", job.id)
            self.request_cleanup(run, by=by)
        elif status in (JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED):
            job.cancel()

    def request_cleanup(self, run: Run, *, by: str) -> Job | None:
        """Enqueue ``jobs.entrypoints.cancel_job`` for a cancelled run: it removes the run's
        sandboxes on a worker (which can reach Docker). None if already asked."""
        return self._enqueue_once(
            CANCEL_JOB,
            run,
            (run.id, by),
            f"agents-cancel-{run.id}",
            timeout=600,
            description=f"clean up after cancelling {run.label}",
            at_front=True,
        )

    def position(self, run: Run) -> int | None:
        """0-based position of the run's job in the queue, or None if not waiting."""
        ids: list[Any] = self.queue.get_job_ids()
        job_id = job_id_for(run.id, run.iteration)
        return ids.index(job_id) if job_id in ids else None
