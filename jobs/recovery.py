"""Crash recovery: finding runs whose worker died, and resuming or failing them.

A job that runs a run keeps a heartbeat in Redis (:class:`jobs.attempts.Heartbeat`): a
key per attempt, refreshed every third of its time-to-live, naming the process that
holds it.
A running run is abandoned when its current attempt's heartbeat has expired, or when
that process is on this machine and dead. RQ's own detection of abandoned jobs
(``AbandonedJobError``, through the failure callback) leads to the same place.

:func:`recover` then hands the run back to the queue (``running -> queued``, a new RQ
job, resumed from its last checkpoint) or, once its jobs have died ``max_attempts``
times, fails it with the reason. Deliberate hand-backs (:func:`jobs.attempts.hand_back`:
a draining worker, a lost sandbox) are not crashes and do not count
(:func:`jobs.attempts.crashes`).
Every change is a checked transition pinned to the attempt it saw, so two sweepers, or
a sweeper and the callback, recover a run once.

Workers run :func:`sweep` when they start and every ``recovery_interval`` seconds
(:class:`RecoveryThread`, started by :func:`jobs.worker.start_worker`). Containers a
dead worker left are the reaper's (``sandboxes.reaper``): their owner is dead.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from rq.job import JobStatus

from jobs.attempts import crashes, heartbeat_key, same_attempt
from jobs.pauses import expired_asks
from jobs.queue import job_id_for
from process.exceptions import InvalidTransition, RunNotFound
from process.periodic import Periodic
from runs.record import Run, RunStatus, Step, utcnow
from runs.store import RunStore
from sandboxes.owner import Owner

if TYPE_CHECKING:
    from jobs.queue import RunQueue

log = logging.getLogger(__name__)

ORDER = (Step.PREPARE, Step.PLAN, Step.AGENT, Step.CHECKS, Step.REVIEW, Step.PUBLISH, Step.WATCH_CI)
#: A queued run without a job is left alone this long (the bot enqueues right after
#: creating the run).
QUEUED_GRACE = timedelta(seconds=60)
#: A run handed back to the queue gets its new job within moments; after this long
#: without it, the hand-back was cut short.
REQUEUE_GRACE = timedelta(seconds=5)
#: How long a job may sit taken-but-not-started before a sweep puts it back.
STRANDED_GRACE = timedelta(seconds=20)
_DEAD_JOB = {JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED, JobStatus.FINISHED}


def abandoned(store: RunStore, run: Run) -> str | None:
    """Why a running run is taken as abandoned, or None while its attempt is alive."""
    raw: Any = store.redis.get(heartbeat_key(store, run.id, run.attempts))
    if raw is None:
        return "its worker stopped sending heartbeats"
    try:
        beat = json.loads(raw)
    except ValueError:
        return "its heartbeat is unreadable"
    owner = Owner.from_labels(str(beat.get("owner", "")), str(beat.get("token", "")))
    if owner is not None and owner.is_alive() is False:
        return f"its worker process ({owner.label}) died"
    return None


def _next_step(run: Run) -> str:
    done = set(run.artifacts.completed_steps)
    step = next((s for s in ORDER if s not in done), None)
    return step.value if step else "the end"


@dataclass(frozen=True)
class Recovery:
    run_id: int
    outcome: str  # "requeued" or "failed"
    reason: str


def recover(
    store: RunStore,
    queue: RunQueue,
    run_id: int,
    *,
    reason: str,
    attempts: int,
    max_attempts: int,
    by: str = "recovery",
) -> Recovery | None:
    """Resume or fail a running run whose attempt ``attempts`` was found dead: fail it
    once this makes ``max_attempts`` crashes (hand-backs do not count)."""
    ours = same_attempt(attempts)
    try:
        run = store.get(run_id)
    except RunNotFound:
        return None
    if run.status is not RunStatus.RUNNING or run.attempts != attempts:
        return None
    where = run.step.value if run.step else "start"
    crashed = crashes(run)
    if crashed >= max_attempts:
        outcome, status = "failed", RunStatus.FAILED
        why = (
            f"{reason} during {where}, and this run's jobs have died {crashed} "
            f"time(s) (the limit is {max_attempts}); giving up"
        )
    else:
        outcome, status = "requeued", RunStatus.QUEUED
        why = (
            f"{reason} during {where}; resuming at {_next_step(run)} "
            f"(attempt {crashed + 1} of {max_attempts})"
        )
    try:
        changed = store.transition(
            run_id, status, by=by, reason=why, expect=RunStatus.RUNNING, change=ours
        )
    except InvalidTransition:
        return None
    if status is RunStatus.QUEUED:
        queue.enqueue(changed, replace_finished=True)
    log.warning("run #%d %s: %s", run_id, outcome, why)
    return Recovery(run_id, outcome, why)


def _orphaned(queue: RunQueue, run: Run) -> bool:
    """A queued (or rework) run whose job is gone or already over, or whose current job
    is still an earlier attempt's: whoever handed the run back (a sweeper, a draining
    job) died between the status change and the enqueue. That earlier job may look
    "started" for a long time (its worker was SIGKILLed), so its status proves nothing.
    """
    age = utcnow() - run.updated_at
    job = queue.job(run)
    expected = job_id_for(run.id, run.iteration, run.attempts)
    if job is not None and job.id != expected and run.attempts > 0:
        return age >= REQUEUE_GRACE
    if age < QUEUED_GRACE:
        return False
    return job is None or job.get_status(refresh=True) in _DEAD_JOB


def sweep(
    store: RunStore,
    queue: RunQueue,
    *,
    max_attempts: int,
    limit: int = 200,
    budget_ask_timeout: float | None = None,
) -> list[Recovery]:
    """One pass: resume or fail abandoned running runs; re-enqueue orphaned queued ones
    and approves whose job died; stop runs whose budget question waited longer than
    ``budget_ask_timeout`` seconds. Only runs of ``queue`` (:meth:`RunQueue.serves`): a
    worker of another queue, sharing the store, leaves them to their own workers."""
    done: list[Recovery] = []
    for run in store.list_by_status(RunStatus.RUNNING, limit=limit):
        if not queue.serves(run):
            continue
        reason = abandoned(store, run)
        if reason is None:
            continue
        recovered = recover(
            store, queue, run.id, reason=reason, attempts=run.attempts, max_attempts=max_attempts
        )
        if recovered is not None:
            done.append(recovered)
    for status in (RunStatus.QUEUED, RunStatus.REWORK):
        for run in store.list_by_status(status, limit=limit):
            if queue.serves(run) and _orphaned(queue, run):
                queue.enqueue(run, replace_finished=True)
                done.append(Recovery(run.id, "requeued", "its job was lost"))
    # Approves whose job died holding the guard (perhaps after merging), or before it
    # could take it: finish them.
    for run_id in sorted(set(store.approving_runs()) | set(queue.started_approvals())):
        try:
            if not queue.serves(store.get(run_id)):
                continue
            if queue.resume_approval(run_id) is not None:
                done.append(Recovery(run_id, "approve resumed", "its approve job died"))
        except RunNotFound:  # expired since
            continue
    # Any job (run, approve, cancel) a dying worker took but never started.
    queue.rescue_stranded(STRANDED_GRACE.total_seconds())
    if budget_ask_timeout is not None:
        for run_id in expired_asks(queue, budget_ask_timeout):
            done.append(Recovery(run_id, "stopped", "nobody answered its budget question"))
    return done


class RecoveryThread(Periodic):
    """Sweeps now and then every ``interval`` seconds until stopped."""

    def __init__(
        self,
        store: RunStore,
        queue: RunQueue,
        *,
        max_attempts: int,
        interval: float,
        budget_ask_timeout: float | None = None,
    ) -> None:
        self.store = store
        self.queue = queue
        self.max_attempts = max_attempts
        self.budget_ask_timeout = budget_ask_timeout
        super().__init__("run-recovery", interval, self._pass)

    def _pass(self) -> None:
        found = sweep(
            self.store,
            self.queue,
            max_attempts=self.max_attempts,
            budget_ask_timeout=self.budget_ask_timeout,
        )
        for item in found:
            log.info("recovery: run #%d %s: %s", item.run_id, item.outcome, item.reason)
