"""Fleet-wide totals in Redis: tokens, dollars and how long steps took.

Run records expire after the retention period, but a Prometheus counter must never go
down. So the worker adds to these totals as it spends and as each step ends, and
``/metrics`` reads them when scraped. Writes are best effort: a metrics write that
fails is logged and never fails a run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import redis

from runs.artifacts import Cost

log = logging.getLogger(__name__)

#: Upper bounds (seconds) of the step-duration histogram; steps take from a second
#: (prepare from a warm mirror) to the agent's wall clock (30 min by default).
STEP_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0)
TOKEN_KINDS = ("input", "output", "cache_read", "cache_write")


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


@dataclass(frozen=True)
class StepTimes:
    """One step's durations for one outcome, as a cumulative histogram."""

    step: str
    outcome: str
    #: ``(upper bound, observations at or below it)``, ascending, ending with +Inf.
    buckets: list[tuple[float, int]]
    count: int
    total_seconds: float


@dataclass(frozen=True)
class Totals:
    tokens: dict[str, int] = field(default_factory=dict)
    dollars: float = 0.0
    steps: list[StepTimes] = field(default_factory=list)


class Counters:
    """Adds to and reads the totals. Pass the connection in; nothing is global."""

    def __init__(self, connection: redis.Redis, *, prefix: str = "agents") -> None:
        self.redis = connection
        self.cost_key = f"{prefix}:metrics:cost"
        self.steps_key = f"{prefix}:metrics:steps"

    def add_cost(self, cost: Cost) -> None:
        pipe: Any = self.redis.pipeline()
        for kind in TOKEN_KINDS:
            amount = getattr(cost, f"{kind}_tokens")
            if amount:
                pipe.hincrby(self.cost_key, kind, amount)
        if cost.dollars:
            pipe.hincrbyfloat(self.cost_key, "dollars", cost.dollars)
        self._send(pipe, "cost")

    def observe_step(self, step: str, seconds: float, *, outcome: str = "done") -> None:
        """Count one run of ``step`` that took ``seconds`` and ended ``outcome``
        (``done``: completed; ``failed``: raised)."""
        bound = next((b for b in STEP_BUCKETS if seconds <= b), None)
        le = "+Inf" if bound is None else repr(bound)
        name = f"{step}|{outcome}"
        pipe: Any = self.redis.pipeline()
        pipe.hincrby(self.steps_key, f"{name}|le={le}", 1)
        pipe.hincrby(self.steps_key, f"{name}|count", 1)
        pipe.hincrbyfloat(self.steps_key, f"{name}|sum", max(seconds, 0.0))
        self._send(pipe, f"step {step}")

    def _send(self, pipe: Any, what: str) -> None:
        try:
            pipe.execute()
        except redis.RedisError as exc:
            log.warning("could not add %s to the metrics totals: %s", what, exc)

    def read(self) -> Totals:
        cost = {_text(k): _text(v) for k, v in self.redis.hgetall(self.cost_key).items()}
        raw = {_text(k): _text(v) for k, v in self.redis.hgetall(self.steps_key).items()}
        per_bucket: dict[tuple[str, str], dict[str, int]] = {}
        sums: dict[tuple[str, str], float] = {}
        counts: dict[tuple[str, str], int] = {}
        for key, value in raw.items():
            step, outcome, part = key.split("|", 2)
            series = (step, outcome)
            if part == "sum":
                sums[series] = float(value)
            elif part == "count":
                counts[series] = int(value)
            else:
                per_bucket.setdefault(series, {})[part.removeprefix("le=")] = int(value)
        steps = []
        for series in sorted(counts):
            own = per_bucket.get(series, {})
            running, buckets = 0, []
            for bound in [*STEP_BUCKETS, float("inf")]:
                running += own.get("+Inf" if bound == float("inf") else repr(bound), 0)
                buckets.append((bound, running))
            steps.append(
                StepTimes(series[0], series[1], buckets, counts[series], sums.get(series, 0.0))
            )
        return Totals(
            tokens={kind: int(cost.get(kind, 0)) for kind in TOKEN_KINDS},
            dollars=float(cost.get("dollars", 0.0)),
            steps=steps,
        )
