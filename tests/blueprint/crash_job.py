"""A run job that stops dead at a chosen point on its first attempt, for crash tests.

The worker runs it like ``jobs.entrypoints.run_job``, with the same settings and clients,
plus one wrapper chosen by ``AGENTS_TEST_PAUSE_AT`` in the worker's environment:

- ``agent``: after the model's first answer (mid agent step);
- ``checks``: when a check command starts (mid checks step);
- ``publish``: after the push, before the pull request is opened (mid publish).

There it records its pid in Redis (``crash-test:paused:<run id>``) and sleeps until the
test SIGKILLs it and its worker. A resumed attempt runs ``jobs.entrypoints.run_job``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from rq import get_current_job

from jobs.blueprint.runner import run_blueprint
from jobs.blueprint.wiring import model_provider, open_deps
from jobs.queue import store_for
from process import settings
from runs.record import Run
from runs.store import RunStore
from sandboxes.protocol import ExecResult, Sandbox


def paused_key(run_id: int) -> str:
    return f"crash-test:paused:{run_id}"


def pause(store: RunStore, run_id: int) -> None:
    store.redis.set(paused_key(run_id), os.getpid(), ex=600)
    while True:
        time.sleep(1)


class _PausingModel:
    def __init__(self, model: Any, store: RunStore, run_id: int) -> None:
        self.model = model
        self.store = store
        self.run_id = run_id

    def complete(self, request: Any, **kw: Any) -> Any:
        response = self.model.complete(request, **kw)
        pause(self.store, self.run_id)
        return response


class HookedSandbox:
    """A sandbox that calls ``before_checks`` when a check command (``--junitxml``) is
    about to run; everything else goes to the sandbox it wraps."""

    def __init__(self, inner: Sandbox, before_checks: Callable[[], None]) -> None:
        self.inner = inner
        self.before_checks = before_checks

    def exec(
        self,
        cmd: str | Sequence[str],
        timeout: float | None = None,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> ExecResult:
        if isinstance(cmd, str) and "--junitxml" in cmd:
            self.before_checks()
        return self.inner.exec(cmd, timeout=timeout, cwd=cwd, env=env)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class WrappedModels:
    """The worker's model provider, with each model it opens wrapped by ``wrap``."""

    def __init__(self, provider: Any, wrap: Callable[[Any], Any]) -> None:
        self.provider = provider
        self.wrap = wrap

    @contextmanager
    def open(self, run: Run) -> Iterator[Any]:
        with self.provider.open(run) as model:
            yield self.wrap(model)


def run(run_id: int) -> None:
    job = get_current_job()
    assert job is not None
    worker = settings.load(settings.WorkerSettings)
    store = store_for(job)
    where = os.environ["AGENTS_TEST_PAUSE_AT"]
    models = WrappedModels(
        model_provider(worker),
        lambda model: _PausingModel(model, store, run_id) if where == "agent" else model,
    )
    with open_deps(worker, store, models=models) as deps:
        if where == "checks":
            factory = deps.sandboxes
            deps.sandboxes = lambda rid, config, ws: HookedSandbox(  # type: ignore[assignment,return-value]
                factory(rid, config, ws), lambda: pause(store, run_id)
            )
        if where == "publish":
            forge = deps.forge

            def create_pr(*args: Any, **kw: Any) -> Any:
                pause(store, run_id)

            forge.create_pr = create_pr  # type: ignore[method-assign]
        run_blueprint(deps, run_id, by=f"worker:{job.worker_name}", job_id=job.id)
