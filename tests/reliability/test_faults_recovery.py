"""A crash window the kill loop found: the recovery sweep (or a draining job) moves a
run back to ``queued`` and then enqueues its new job. If the process doing it is
SIGKILLed between the two, the run sits queued while its current job is still the
earlier attempt's, which RQ shows as "started" (its worker died too) for as long as
nobody cleans RQ's registries. The sweep must see that and enqueue the run again."""

from __future__ import annotations

from datetime import timedelta

import fakeredis
import pytest
import redis
from rq import SimpleWorker
from rq.job import JobStatus

from jobs import recovery
from jobs.queue import RunQueue
from runs.record import RunStatus
from runs.store import RunStore


def test_a_run_requeued_by_a_process_that_died_before_enqueueing_is_enqueued_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    connection = fakeredis.FakeRedis()
    store = RunStore(connection)
    queue = RunQueue(connection, store, name="q")
    run = store.create(requester="U1", repo="acme/retrying", request="anything")
    queue.enqueue(run)
    store.transition(run.id, RunStatus.RUNNING, by="w", change=lambda r: setattr(r, "attempts", 1))
    first = queue.job(store.get(run.id))
    assert first is not None
    first.set_status(JobStatus.STARTED)  # its worker was SIGKILLed mid-job
    # The sweeper hands the run back, then dies before enqueueing the next attempt.
    store.transition(run.id, RunStatus.QUEUED, by="recovery", reason="its worker died")

    assert recovery.sweep(store, queue, max_attempts=3) == []  # it may still be enqueueing
    monkeypatch.setattr(recovery, "REQUEUE_GRACE", timedelta(0))
    [found] = recovery.sweep(store, queue, max_attempts=3)
    assert (found.run_id, found.outcome, found.reason) == (run.id, "requeued", "its job was lost")
    job = queue.job(store.get(run.id))
    assert job is not None
    assert job.id == "agents-run-1-1-r1"
    assert recovery.sweep(store, queue, max_attempts=3) == []  # now it has its job
    connection.close()


@pytest.mark.redis
def test_a_job_taken_by_a_worker_that_died_before_starting_it_runs_after_a_sweep(
    real_redis_conn: redis.Redis,
) -> None:
    """The soak found this window: RQ moves a job to ``<queue>:intermediate`` when a
    worker takes it and out when the job starts. A worker SIGKILLed in between strands
    it there; nothing ran it until RQ's ten-minute clean-up failed it."""
    store = RunStore(real_redis_conn)
    queue = RunQueue(
        real_redis_conn, store, name="q-stranded", job_func="tests.jobs.slow_job.take_and_fail"
    )
    run = store.create(requester="U1", repo="acme/retrying", request="anything")
    job = queue.enqueue(run)
    assert job is not None
    # What a worker does when it takes the job, and then it dies.
    real_redis_conn.lmove(queue.queue.key, queue.queue.intermediate_queue_key)
    assert queue.queue.count == 0

    # Seen for the first time: a live worker may be about to start it, so it stays.
    assert recovery.sweep(store, queue, max_attempts=3) == []
    assert queue.rescue_stranded(grace_seconds=3600) == []
    assert queue.queue.count == 0
    # Past the grace it goes back to the front of the queue, once.
    assert queue.rescue_stranded(grace_seconds=0) == [job.id]
    assert queue.rescue_stranded(grace_seconds=0) == []
    assert queue.queue.job_ids == [job.id]
    assert real_redis_conn.llen(queue.queue.intermediate_queue_key) == 0

    # And a worker now runs it: the job takes the run (and then fails, as written).
    SimpleWorker([queue.queue], connection=real_redis_conn).work(burst=True)
    final = store.get(run.id)
    assert final.status is RunStatus.FAILED
    assert "the job broke" in (final.error or "")
