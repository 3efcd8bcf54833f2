"""A background thread that does one thing now and then every ``interval`` seconds.

The worker's sandbox reaper and its crash-recovery sweep are both this: a pass that
must never kill the thread when it fails once (Docker or Redis briefly away).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class Periodic:
    def __init__(self, name: str, interval: float, action: Callable[[], None]) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.name = name
        self.interval = interval
        self._action = action
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _loop(self) -> None:
        while True:
            try:
                self._action()
            except Exception:
                log.exception("%s: a pass failed; retrying in %.0fs", self.name, self.interval)
            if self._stop.wait(self.interval):
                return
