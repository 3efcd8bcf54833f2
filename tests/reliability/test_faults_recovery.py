"""A crash window the kill loop found: the recovery sweep (or a draining job) moves a
run back to ``queued`` and then enqueues its new job. If the process doing it is
SIGKILLed between the two, the run sits queued while its current job is still the
earlier attempt's, which RQ shows as "started" (its worker died too) for as long as
nobody cleans RQ's registries. The sweep must see that and enqueue the run again."""

from __future__ import annotations

from datetime import timedelta

import fakeredis
import pytest
from rq.job import JobStatus

from core.run import RunStatus
from core.store import RunStore
from jobs import recovery
from jobs.queue import RunQueue


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
