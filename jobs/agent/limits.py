"""The loop's circuit breakers: a budget checked before each model call, and a detector
for turns that make no progress.

Both fail closed: when in doubt the run stops with a typed :class:`LimitsExceeded`.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from jobs.agent.pricing import add_costs
from process.exceptions import (
    DollarLimit,
    NoProgress,
    TokenLimit,
    TurnLimit,
    WallClockLimit,
)
from process.settings import AgentLimits
from runs.artifacts import Cost

Clock = Callable[[], float]


class StepSpend:
    """What one agent step has spent, against its limits.

    The loop calls :meth:`before_call` before every model call and :meth:`charge` after
    it. Because every check happens before a call, a limit is overshot by at most the
    one call that crossed it. Fix rounds of the same step share one budget.
    """

    def __init__(self, limits: AgentLimits, *, clock: Clock = time.monotonic) -> None:
        self.limits = limits
        self._clock = clock
        self._started = clock()
        self.turns = 0
        self.cost = Cost()

    @property
    def elapsed(self) -> float:
        return self._clock() - self._started

    def remaining_seconds(self) -> float:
        return max(0.0, self.limits.wall_clock_seconds - self.elapsed)

    def check_clock(self) -> None:
        elapsed, limit = self.elapsed, self.limits.wall_clock_seconds
        if elapsed >= limit:
            raise WallClockLimit(
                f"stopped after {elapsed:.0f}s: the wall-clock limit is {limit:.0f}s "
                "(AGENTS_WALL_CLOCK_SECONDS)",
                used=elapsed,
                limit=limit,
            )

    def check_wait(self, seconds: float) -> None:
        """Refuse to wait (for a retry) past the wall-clock limit."""
        elapsed, limit = self.elapsed, self.limits.wall_clock_seconds
        if elapsed + seconds >= limit:
            raise WallClockLimit(
                f"stopped after {elapsed:.0f}s: waiting {seconds:.0f}s to retry the model "
                f"would pass the wall-clock limit of {limit:.0f}s (AGENTS_WALL_CLOCK_SECONDS)",
                used=elapsed + seconds,
                limit=limit,
            )

    def before_call(self) -> None:
        """Raise the first limit already reached; otherwise one more call may go out."""
        limits = self.limits
        if self.turns >= limits.max_turns:
            raise TurnLimit(
                f"stopped after {self.turns} turns: the limit is {limits.max_turns} "
                "(AGENTS_MAX_TURNS)",
                used=self.turns,
                limit=limits.max_turns,
            )
        tokens = self.cost.total_tokens
        if tokens >= limits.max_tokens:
            raise TokenLimit(
                f"stopped after {tokens:,} tokens: the limit is {limits.max_tokens:,} "
                "(AGENTS_MAX_TOKENS)",
                used=tokens,
                limit=limits.max_tokens,
            )
        dollars = self.cost.dollars
        if dollars >= limits.max_dollars:
            raise DollarLimit(
                f"stopped after spending ${dollars:.4f}: the limit is ${limits.max_dollars:.2f} "
                "(AGENTS_MAX_DOLLARS)",
                used=dollars,
                limit=limits.max_dollars,
            )
        self.check_clock()

    def charge(self, cost: Cost) -> None:
        """Count one model call and what it cost."""
        self.turns += 1
        self.cost = add_costs([self.cost, cost])


@dataclass(frozen=True)
class CallRecord:
    """One tool call of a turn and what it returned, as progress detection sees it."""

    name: str
    input: Any
    result: str
    is_error: bool


#: Durations and other decimals ("5 passed in 0.03s") change on every run of the same
#: command; they are masked so that a repeated command with the same outcome counts as
#: a repeat.
_VOLATILE = re.compile(r"\d+\.\d+")


def _fingerprint(call: CallRecord) -> str:
    canonical = json.dumps(
        [call.name, call.input, _VOLATILE.sub("#", call.result), call.is_error],
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


class ProgressTracker:
    """Stops a run whose turns keep going round in circles.

    A turn makes progress if at least one of its calls is new: a call with arguments or
    a result not seen before in this run. Reading a file again after editing it is new
    (its content changed); running the same failing test twice with nothing changed in
    between is not. A turn without tool calls makes no progress. After
    ``no_progress_turns`` turns in a row without progress, :class:`NoProgress` is raised.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.stale_turns = 0
        self._seen: set[str] = set()

    def forget(self) -> None:
        """Count every call as new again: after old output was trimmed from the
        conversation, reading it again is what the model was told to do."""
        self._seen.clear()

    def record_turn(self, calls: Sequence[CallRecord]) -> None:
        prints = {_fingerprint(call) for call in calls}
        progressed = bool(prints - self._seen)
        self._seen |= prints
        self.stale_turns = 0 if progressed else self.stale_turns + 1
        if self.stale_turns >= self.limit:
            raise NoProgress(
                f"stopped after {self.stale_turns} turns in a row that repeated earlier "
                f"calls with the same results or made no tool calls "
                f"(AGENTS_NO_PROGRESS_TURNS={self.limit})",
                used=self.stale_turns,
                limit=self.limit,
            )
