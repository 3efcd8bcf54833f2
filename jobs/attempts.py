"""One attempt of a run, on the normal path: its heartbeat, the check that a change is
still this attempt's, and handing the run back to the queue on purpose.

The runner owns these. :mod:`jobs.recovery` reads what they leave (an expired
heartbeat, ``handbacks``) when it sweeps for runs whose worker died; it never runs
in the normal path of a job.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Self

from jobs.queue import RunQueue
from process.exceptions import InvalidTransition, RunNotFound
from process.lifecycle import Lifecycle
from runs.record import Run, RunStatus
from runs.store import RunStore
from sandboxes.owner import Owner

log = logging.getLogger(__name__)

_DELETE_IF_OURS = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


def heartbeat_key(store: RunStore, run_id: int, attempt: int) -> str:
    return f"{store.prefix}:run:{run_id}:heartbeat:{attempt}"


class Heartbeat(Lifecycle):
    """The sign that attempt ``attempt`` of a run is alive, kept fresh by a thread."""

    def __init__(
        self, store: RunStore, run_id: int, *, attempt: int, ttl: int, job_id: str | None = None
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.attempt = attempt
        self.ttl = max(int(ttl), 1)
        self.job_id = job_id
        self._owner = Owner.current()
        self._written: dict[str, str] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _value(self) -> str:
        return json.dumps(
            {
                "owner": self._owner.label,
                "token": self._owner.token,
                "attempt": self.attempt,
                "job": self.job_id,
            },
            sort_keys=True,
        )

    def beat(self) -> None:
        key = heartbeat_key(self.store, self.run_id, self.attempt)
        value = self._value()
        self.store.redis.set(key, value, ex=self.ttl)
        self._written[key] = value

    def _loop(self) -> None:
        interval = max(self.ttl / 3, 0.2)
        while not self._stop.wait(interval):
            try:
                self.beat()
            except Exception:
                log.exception("heartbeat of run #%s failed; trying again", self.run_id)

    def start(self) -> Self:
        self.beat()
        self._thread = threading.Thread(
            target=self._loop, name=f"heartbeat-{self.run_id}", daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        for key, value in self._written.items():
            try:
                self.store.redis.eval(_DELETE_IF_OURS, 1, key, value)
            except Exception:
                log.exception("removing the heartbeat of run #%s failed", self.run_id)


def same_attempt(attempts: int) -> Callable[[Run], None]:
    """A ``change`` for a checked transition: refuse it unless the run is still on
    attempt ``attempts`` (nobody recovered, handed back or restarted it meanwhile)."""

    def check(run: Run) -> None:
        if run.attempts != attempts:
            raise InvalidTransition(run.id, f"attempt {run.attempts}", f"attempt {attempts}")

    return check


def crashes(run: Run) -> int:
    """Attempts of the current iteration that did not end by a deliberate hand-back:
    the ones that count against ``max_attempts`` (the current one included)."""
    return run.attempts - sum(run.handbacks.values())


def hand_back(
    store: RunStore,
    queue: RunQueue,
    run_id: int,
    *,
    attempts: int,
    reason: str,
    by: str,
    cause: str,
) -> Run | None:
    """A job that stops early on purpose (``cause``: ``drain``, its worker is shutting
    down; ``sandbox``, its sandbox went away) gives its running run back to the queue
    (``running -> queued``, a new job with a new id), to resume where it stopped. The
    attempt is recorded in ``run.handbacks``, so it is not counted as a crash. None if
    the run is no longer this attempt's (cancelled, failed, or recovered meanwhile)."""
    check = same_attempt(attempts)

    def handed(run: Run) -> None:
        check(run)
        run.handbacks[cause] = run.handbacks.get(cause, 0) + 1

    try:
        queued = store.transition(
            run_id,
            RunStatus.QUEUED,
            by=by,
            reason=reason,
            expect=RunStatus.RUNNING,
            change=handed,
        )
    except (InvalidTransition, RunNotFound):
        return None
    queue.enqueue(queued, replace_finished=True)
    log.info("run #%d handed back: %s", run_id, reason)
    return queued
