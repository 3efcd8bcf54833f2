"""Draining a worker: on SIGTERM its job stops at its next checkpoint and hands the run
back to the queue, where another worker resumes it from there.

RQ's warm shutdown waits for the work horse to finish its job, and a run's job lasts
until the run awaits a decision: minutes of agent and checks. So the worker forwards
the request to its horse (:data:`SIGNAL`, see :class:`jobs.worker.RunWorker`), the
horse sets the flag kept here, and the job looks at it at each checkpoint, where
everything done so far is saved on the run record:

- between steps (:func:`jobs.blueprint.runner.run_steps`);
- inside an agent pass, between two model turns: the pass saves its patch, the calls
  used and its conversation (``artifacts.agent_resume``), and the next job continues
  that conversation (:func:`jobs.blueprint.steps.agent.agent_pass`);
- while watching CI, between two polls (read-only: the next job polls again).

Each raises :class:`Draining`, which the runner turns into a hand-back
(:func:`jobs.attempts.hand_back`) that does not count as a crash.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

#: What the worker sends its work horse when asked to stop.
SIGNAL = signal.SIGUSR1

_requested = threading.Event()


def request(signum: int | None = None, frame: FrameType | None = None) -> None:
    """Ask the job in this process to stop at its next checkpoint (a signal handler)."""
    _requested.set()


def requested() -> bool:
    return _requested.is_set()


def reset() -> None:
    _requested.clear()


def listen() -> None:
    """In the work horse (main thread): take :data:`SIGNAL` as a drain request."""
    reset()
    signal.signal(SIGNAL, request)
