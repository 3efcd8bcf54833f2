"""Bounded retries with exponential backoff for forge API calls.

Only transient failures are retried: 5xx, 429, GitHub's rate limits, and connection
errors. A ``recover`` hook runs before each retry of a non-idempotent write, so a write
that succeeded on the server but whose response was lost is found instead of repeated
(after a 5xx on "create PR", look the PR up by its branch before creating it again).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class ForgeRetry:
    """``attempts`` tries in all; waits double from ``initial_delay`` up to ``max_delay``.

    Tests pass ``sleep`` to record the waits instead of sleeping.
    """

    attempts: int = 5
    initial_delay: float = 1.0
    max_delay: float = 30.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """The wait after failed attempt number ``attempt`` (1-based)."""
        backoff = self.initial_delay * 2.0 ** (attempt - 1)
        if retry_after is not None:
            backoff = max(backoff, retry_after)
        return max(0.0, min(backoff, self.max_delay))


@dataclass(frozen=True)
class Transient:
    """What a classifier says about a transient failure."""

    description: str
    retry_after: float | None = None


def with_retries(
    policy: ForgeRetry,
    what: str,
    call: Callable[[], T],
    classify: Callable[[Exception], Transient | None],
    *,
    recover: Callable[[], T | None] | None = None,
    give_up: Callable[[str, int], Exception],
) -> T:
    """Call ``call`` until it succeeds, fails for good, or the attempts run out.

    ``classify`` returns None for a permanent failure (re-raised as is) or a
    :class:`Transient`. ``give_up(last_description, attempts)`` builds the final error.
    """
    last = ""
    for attempt in range(1, policy.attempts + 1):
        try:
            return call()
        except Exception as exc:
            transient = classify(exc)
            if transient is None:
                raise
            last = transient.description
            if recover is not None:
                found = _try_recover(recover, classify)
                if found is not None:
                    log.info("%s: found the result after a failed attempt (%s)", what, last)
                    return found
            if attempt == policy.attempts:
                break
            wait = policy.delay(attempt, transient.retry_after)
            log.warning(
                "%s failed (%s); retry %d/%d in %.1fs",
                what,
                last,
                attempt,
                policy.attempts - 1,
                wait,
            )
            policy.sleep(wait)
    raise give_up(last, policy.attempts)


def _try_recover(
    recover: Callable[[], T | None], classify: Callable[[Exception], Transient | None]
) -> T | None:
    try:
        return recover()
    except Exception as exc:
        if classify(exc) is None:
            raise
        return None
