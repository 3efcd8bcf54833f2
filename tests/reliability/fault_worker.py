"""`agents worker` with fault hooks, for the fault-injection tests.

Started as ``python -m tests.reliability.fault_worker worker ...`` (the same arguments
as ``python -m cli.main``). Before the worker starts, ``jobs.entrypoints.run_job`` is
replaced by :func:`run`, which is the real entry point with its model, sandboxes and
forge wrapped. RQ forks a work horse per job from this process, so every job this
worker takes, first attempts and resumed ones alike, goes through the hooks.

The hooks do nothing unless the test planned something for the run in Redis:

- ``fault-test:kill:<run id>`` (a set of step names): at that step's hook point, the
  job takes the step out of the set, writes ``<step> <pid>`` to
  ``fault-test:paused:<run id>`` and sleeps until the test SIGKILLs it and its worker.
- ``fault-test:hold:<run id>`` (a set of step names): the job writes the same key, then
  waits until its worker asks it to drain (SIGTERM, see :mod:`jobs.drain`) and carries
  on, so the test knows the request reached the job while it was inside the step.
- ``fault-test:gate:<run id>`` (a set of step names): the job writes the same key, then
  waits until the test sets ``fault-test:open:<run id>`` (say, after restarting a
  service under it), and carries on.

The hook point of each step is a moment inside it, after it has done real work:

- prepare: the sandbox has started (a container exists);
- agent: the model has answered once;
- checks: a check command (``--junitxml``) is about to run;
- publish: the branch is pushed, the pull request not yet opened;
- watch_ci: the first read of the CI status.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from typing import Any

import redis
from rq import get_current_job

from jobs import drain
from jobs import entrypoints as real
from jobs.blueprint.runner import run_blueprint
from jobs.blueprint.wiring import model_provider, open_deps
from jobs.queue import RunQueue, store_for
from process import settings
from runs.record import Step
from runs.store import RunStore
from sandboxes.protocol import Sandbox
from tests.blueprint.crash_job import HookedSandbox, WrappedModels

KEY = "fault-test"


def kill_key(run_id: int) -> str:
    return f"{KEY}:kill:{run_id}"


def hold_key(run_id: int) -> str:
    return f"{KEY}:hold:{run_id}"


def paused_key(run_id: int) -> str:
    return f"{KEY}:paused:{run_id}"


def gate_key(run_id: int) -> str:
    return f"{KEY}:gate:{run_id}"


def open_key(run_id: int) -> str:
    return f"{KEY}:open:{run_id}"


def plan(
    connection: redis.Redis,
    run_id: int,
    *,
    kill: Sequence[Step] = (),
    hold: Sequence[Step] = (),
    gate: Sequence[Step] = (),
) -> None:
    """Stop run ``run_id`` once at each step in ``kill`` (to be killed), ``hold`` (until
    its worker drains) or ``gate`` (until :func:`open_gate`)."""
    for key, steps in ((kill_key, kill), (hold_key, hold), (gate_key, gate)):
        if steps:
            connection.sadd(key(run_id), *(step.value for step in steps))


def open_gate(connection: redis.Redis, run_id: int) -> None:
    connection.set(open_key(run_id), 1, ex=600)


class Hooks:
    """The hook points of one job: each stops the job when the test planned it."""

    def __init__(self, store: RunStore, run_id: int) -> None:
        self.store = store
        self.run_id = run_id

    def at(self, step: Step) -> None:
        if self.store.get(self.run_id).step is not step:
            return
        redis_ = self.store.redis
        if redis_.srem(kill_key(self.run_id), step.value):
            redis_.set(paused_key(self.run_id), f"{step.value} {os.getpid()}", ex=600)
            while True:  # until the test SIGKILLs this process
                time.sleep(1)
        if redis_.srem(hold_key(self.run_id), step.value):
            redis_.set(paused_key(self.run_id), f"{step.value} {os.getpid()}", ex=600)
            while not drain.requested():
                time.sleep(0.05)
        if redis_.srem(gate_key(self.run_id), step.value):
            redis_.set(paused_key(self.run_id), f"{step.value} {os.getpid()}", ex=600)
            while not redis_.exists(open_key(self.run_id)):
                time.sleep(0.05)


class _Model:
    def __init__(self, inner: Any, hooks: Hooks) -> None:
        self.inner = inner
        self.hooks = hooks

    def complete(self, request: Any, **kw: Any) -> Any:
        response = self.inner.complete(request, **kw)
        self.hooks.at(Step.AGENT)
        return response


class _Sandbox(HookedSandbox):
    def __init__(self, inner: Sandbox, hooks: Hooks) -> None:
        super().__init__(inner, lambda: hooks.at(Step.CHECKS))
        self.hooks = hooks

    def start(self) -> None:
        self.inner.start()
        self.hooks.at(Step.PREPARE)


def run(run_id: int) -> None:
    """``jobs.entrypoints.run_job`` with the hooks in place."""
    job = get_current_job()
    assert job is not None
    worker = settings.load(settings.WorkerSettings)
    store = store_for(job)
    hooks = Hooks(store, run_id)
    models = WrappedModels(model_provider(worker), lambda model: _Model(model, hooks))
    with open_deps(worker, store, models=models) as deps:
        factory = deps.sandboxes
        deps.sandboxes = lambda rid, config, ws: _Sandbox(factory(rid, config, ws), hooks)  # type: ignore[assignment,return-value]
        forge = deps.forge
        create_pr, checks = forge.create_pr, forge.checks

        def hooked_create_pr(*args: Any, **kw: Any) -> Any:
            hooks.at(Step.PUBLISH)
            return create_pr(*args, **kw)

        def hooked_checks(*args: Any, **kw: Any) -> Any:
            hooks.at(Step.WATCH_CI)
            return checks(*args, **kw)

        forge.create_pr = hooked_create_pr  # type: ignore[method-assign]
        forge.checks = hooked_checks  # type: ignore[method-assign]
        queue = RunQueue(job.connection, store, name=job.origin, job_timeout=worker.job_timeout)
        run_blueprint(
            deps, run_id, by=f"worker:{job.worker_name or 'unknown'}", job_id=job.id, queue=queue
        )


def main() -> int:
    real.run_job = run  # type: ignore[assignment]  # what RQ imports by name in each horse
    from cli.main import main as cli_main

    return cli_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
