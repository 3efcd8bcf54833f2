"""A job function for queue tests: takes the run, then works until it is stopped."""

from __future__ import annotations

import time

from rq import get_current_job

from core.run import RunStatus
from core.store import RunStore


def take_and_wait(run_id: int) -> None:
    job = get_current_job()
    assert job is not None
    RunStore(job.connection).transition(run_id, RunStatus.RUNNING, by="slow-job")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        time.sleep(0.1)
