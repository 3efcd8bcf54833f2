"""Retry a call that fails now and then, backing off between attempts."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

MAX_ATTEMPTS = 3


class RetryError(Exception):
    """Every attempt failed; the last failure is the cause."""

    def __init__(self, attempts: int) -> None:
        super().__init__(f"gave up after {attempts} attempts")
        self.attempts = attempts


def call_with_retry(
    fn: Callable[[], T],
    *,
    delay: float = 0.1,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call ``fn`` until it returns, at most MAX_ATTEMPTS times, doubling the delay."""
    last: Exception | None = None
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            return fn()
        except Exception as err:
            last = err
            if attempt < MAX_ATTEMPTS:
                sleep(delay * 2 ** (attempt - 1))
    raise RetryError(MAX_ATTEMPTS) from last
