"""RQ job entry points. Each creates its own clients: RQ forks a process per job."""

from __future__ import annotations

from rq import get_current_job

from core.exceptions import NotBuiltYet
from core.run import RunStatus
from jobs.queue import store_for


def run(run_id: int) -> None:
    """Run the blueprint for ``run_id``.

    The blueprint (prepare, agent, checks, review, publish) is not built yet, so the
    job takes the run, then fails it with a plain reason rather than pretending.
    """
    job = get_current_job()
    if job is None:
        raise RuntimeError("jobs.entrypoints.run must run inside an RQ job")
    store = store_for(job)
    store.transition(run_id, RunStatus.RUNNING, by=f"worker:{job.worker_name or 'unknown'}")
    raise NotBuiltYet(
        "the blueprint (prepare, agent, checks, publish) is not built yet; "
        "the run was taken by a worker and stopped here"
    )
