"""What each run came to, kept long after its record expires: the figures behind
``agents stats``, ``/agents stats``, the App Home and the estimate in a new thread.

An :class:`RunOutcome` is made from a run and its events (:func:`outcome_of`) by a
worker's stats pass (:mod:`jobs.stats`), which adds what only the forge and the git
mirror know: whether the pull request was merged, when, and how many of its lines
survive. The bot reads outcomes; it never needs the forge. Outcomes live in a Redis
hash with a created-at index and are pruned after ``stats_retention_days``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import redis
from pydantic import BaseModel, ConfigDict, Field

from runs.events import CiFinished, Event, PullRequestOpened
from runs.record import Run, RunStatus


class Survival(BaseModel):
    """Lines a merged PR added, and how many of them the default branch still had
    ``days`` after the merge (``git blame`` on the worker's mirror)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    added: int
    surviving: int


class RunOutcome(BaseModel):
    model_config = ConfigDict(extra="forbid")

    run_id: int
    repo: str
    requester: str
    channel: str | None = None
    created_at: datetime
    finished_at: datetime | None = None
    status: RunStatus
    dollars: float = 0.0
    pr_number: int | None = None
    pr_url: str | None = None
    pr_opened_at: datetime | None = None
    #: From the forge: polled by a worker, or written by a webhook
    #: (:meth:`OutcomeStore.mark_merged`).
    merged: bool = False
    merged_at: datetime | None = None
    merge_sha: str | None = None
    closed: bool = False
    #: Iterations after the first (each one a rework asked for in the thread).
    rework_rounds: int = 0
    #: CI results the run waited for on its PR.
    ci_rounds: int = 0
    error: str | None = None
    #: Survival by horizon in days ("30", "90"), once the PR is that old.
    survival: dict[str, Survival] = Field(default_factory=dict)

    @property
    def time_to_pr(self) -> float | None:
        if self.pr_opened_at is None:
            return None
        return max((self.pr_opened_at - self.created_at).total_seconds(), 0.0)

    @property
    def settled(self) -> bool:
        """Nothing on the run can change any more (the forge's part may)."""
        return self.status.is_final


def outcome_of(run: Run, events: Iterable[Event], known: RunOutcome | None = None) -> RunOutcome:
    """The run's outcome; what the forge said (``known``) is kept."""
    opened = None
    ci_rounds = 0
    for event in events:
        if isinstance(event, PullRequestOpened) and opened is None:
            opened = event.at
        elif isinstance(event, CiFinished):
            ci_rounds += 1
    forge: dict[str, Any] = {}
    if known is not None:
        forge = known.model_dump(include={"merged", "merged_at", "merge_sha", "closed", "survival"})
        opened = opened or known.pr_opened_at
    return RunOutcome(
        run_id=run.id,
        repo=run.repo,
        requester=run.requester,
        channel=run.channel,
        created_at=run.created_at,
        finished_at=run.finished_at,
        status=run.status,
        dollars=run.cost.dollars,
        pr_number=run.artifacts.pr_number,
        pr_url=run.artifacts.pr_url,
        pr_opened_at=opened,
        rework_rounds=max(run.iteration - 1, 0),
        ci_rounds=ci_rounds,
        error=run.error if run.status is RunStatus.FAILED else None,
        **forge,
    )


class OutcomeStore:
    """Outcomes in Redis. Pass the connection in; nothing is global."""

    def __init__(self, connection: redis.Redis, *, prefix: str = "agents") -> None:
        self.redis = connection
        self.key = f"{prefix}:outcomes"
        self.index = f"{prefix}:outcomes:by-created"
        self.refreshed_key = f"{prefix}:outcomes:refreshed-at"

    def save(self, *outcomes: RunOutcome) -> None:
        pipe: Any = self.redis.pipeline()
        for outcome in outcomes:
            pipe.hset(self.key, str(outcome.run_id), outcome.model_dump_json())
            pipe.zadd(self.index, {str(outcome.run_id): outcome.created_at.timestamp()})
        pipe.execute()

    def get(self, run_id: int) -> RunOutcome | None:
        raw: Any = self.redis.hget(self.key, str(run_id))
        return None if raw is None else RunOutcome.model_validate_json(raw)

    def since(self, when: datetime | None = None) -> list[RunOutcome]:
        """Outcomes of runs created at ``when`` or later (all of them for None), oldest first."""
        low = when.timestamp() if when is not None else "-inf"
        ids: list[Any] = self.redis.zrangebyscore(self.index, low, "+inf")
        if not ids:
            return []
        raws: list[Any] = self.redis.hmget(self.key, ids)
        return [RunOutcome.model_validate_json(raw) for raw in raws if raw is not None]

    def mark_merged(self, run_id: int, *, merge_sha: str | None, merged_at: datetime) -> None:
        """Record a merge the forge told of (a webhook, or the worker's poll)."""
        outcome = self.get(run_id)
        if outcome is not None and not outcome.merged:
            outcome.merged, outcome.merge_sha, outcome.merged_at = True, merge_sha, merged_at
            self.save(outcome)

    def prune(self, older_than: datetime) -> int:
        ids: list[Any] = self.redis.zrangebyscore(self.index, "-inf", older_than.timestamp())
        if ids:
            pipe: Any = self.redis.pipeline()
            pipe.hdel(self.key, *ids)
            pipe.zrem(self.index, *ids)
            pipe.execute()
        return len(ids)

    def mark_refreshed(self, when: datetime) -> None:
        self.redis.set(self.refreshed_key, when.isoformat())

    def refreshed_at(self) -> datetime | None:
        raw: Any = self.redis.get(self.refreshed_key)
        if raw is None:
            return None
        return datetime.fromisoformat(raw.decode() if isinstance(raw, bytes) else str(raw))
