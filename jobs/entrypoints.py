"""RQ job entry points. Each loads the worker's settings and creates its own clients:
RQ forks a process per job, and nothing is shared with the worker or other jobs."""

from __future__ import annotations

import logging
from typing import Any

from rq import get_current_job
from rq.job import Job

from jobs import decisions
from jobs.blueprint.runner import run_blueprint
from jobs.blueprint.wiring import open_deps, open_forge
from jobs.config import blueprint_config
from jobs.queue import RunQueue, store_for
from process import settings


def _job(name: str) -> Job:
    job = get_current_job()
    if job is None:
        raise RuntimeError(f"jobs.entrypoints.{name} must run inside an RQ job")
    return job


def _queue(job: Job, worker: settings.WorkerSettings) -> RunQueue:
    return RunQueue(job.connection, store_for(job), name=job.origin, job_timeout=worker.job_timeout)


def run_job(run_id: int) -> None:
    """Run (or resume) the blueprint for ``run_id``: until it awaits a decision, or ends.

    The outcome is on the run record; the job returns nothing (RQ would store a copy).
    """
    job = _job("run_job")
    worker = settings.load(settings.WorkerSettings)
    with open_deps(worker, store_for(job)) as deps:
        run_blueprint(
            deps,
            run_id,
            by=f"worker:{job.worker_name or 'unknown'}",
            job_id=job.id,
            queue=_queue(job, worker),
        )


def approve_job(run_id: int, user: str) -> None:
    """Mark the run's PR ready for review, or merge it; then the run is approved."""
    job = _job("approve_job")
    worker = settings.load(settings.WorkerSettings)
    forge = open_forge(worker)
    try:
        decisions.approve_on_forge(store_for(job), forge, blueprint_config(worker), run_id, user)
    finally:
        forge.close()


def cancel_job(run_id: int, user: str) -> None:
    """Cancel the run (any non-final state), stop its job and remove its sandboxes."""
    job = _job("cancel_job")
    worker = settings.load(settings.WorkerSettings)
    decisions.cancel_on_worker(_queue(job, worker), run_id, user)


def github_event_job(event: str, delivery: str, payload: dict[str, Any]) -> str:
    """Act on one GitHub webhook delivery the bot checked and queued
    (:mod:`jobs.github_events`); returns, and logs, what happened."""
    from jobs.github_events import handle_event

    job = _job("github_event_job")
    worker = settings.load(settings.WorkerSettings)
    forge = open_forge(worker)
    try:
        done = handle_event(
            store_for(job),
            _queue(job, worker),
            forge,
            settings.GitHubSurfaceSettings.of(worker),
            event,
            payload,
        )
    finally:
        forge.close()
    logging.getLogger(__name__).info("github delivery %s (%s): %s", delivery, event, done)
    return done


def eval_validate_job(eval_id: str, index: int) -> None:
    """Check an eval task's hidden tests; if it is valid, enqueue its runs (one per variant)."""
    from rq import Queue

    from jobs.eval.job import validate_task

    job = _job("eval_validate_job")
    validate_task(job.connection, eval_id, index, Queue(job.origin, connection=job.connection))


def eval_task_job(eval_id: str, variant: int, index: int) -> None:
    """Run one eval task under one variant through the blueprint (never publishing),
    then grade it with its hidden tests."""
    from jobs.eval.job import run_task

    job = _job("eval_task_job")
    run_task(job.connection, eval_id, variant, index, by=f"worker:{job.worker_name or 'unknown'}")


def stats_job() -> None:
    """One stats pass: outcomes of recent runs, merges from the forge, line survival."""
    from datetime import timedelta
    from pathlib import Path

    from jobs.blueprint.wiring import git_auth_for
    from jobs.stats import refresh
    from runs.outcomes import OutcomeStore
    from sandboxes.cache import RepoCache

    job = _job("stats_job")
    worker = settings.load(settings.WorkerSettings)
    store = store_for(job)
    forge = open_forge(worker)
    try:
        done = refresh(
            store,
            OutcomeStore(job.connection, prefix=store.prefix),
            forge,
            RepoCache(Path(worker.cache_dir) / "repos"),
            git_auth=git_auth_for(worker),
            retention=timedelta(days=worker.stats_retention_days),
        )
    finally:
        forge.close()
    for error in done.errors:
        logging.getLogger(__name__).warning("stats: %s", error)
