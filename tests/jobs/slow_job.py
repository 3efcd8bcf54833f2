"""A job function for queue tests: takes the run, then works until it is stopped."""

from __future__ import annotations

import time

from rq import get_current_job

from runs.record import RunStatus
from runs.store import RunStore


def take_and_wait(run_id: int) -> None:
    job = get_current_job()
    assert job is not None
    RunStore(job.connection).transition(run_id, RunStatus.RUNNING, by="slow-job")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        time.sleep(0.1)


def take_and_fail(run_id: int) -> None:
    """Takes the run, then fails the way a bug would: with an unexpected exception."""
    job = get_current_job()
    assert job is not None
    RunStore(job.connection).transition(run_id, RunStatus.RUNNING, by="failing-job")
    raise RuntimeError("the job broke")


def loaded_modules(names: list[str]) -> list[str]:
    """Which of ``names`` the work horse running this job has loaded (inherited from its
    worker, which forked it)."""
    import sys

    return [name for name in names if name in sys.modules]
