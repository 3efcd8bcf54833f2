"""CI webhooks wake the CI watch instead of its next poll.

When GitHub reports a check suite, a check run or a status completed on a commit, the
webhook job pushes a note on a Redis list named for that commit; the watch of that
commit waits on the list (``BLPOP``) between its reads of the checks, so it reads them
right away. A repository whose CI webhooks have been seen lately is watched with a
longer fallback interval between polls (:data:`WEBHOOK_POLL_FACTOR` times
``AGENTS_CI_POLL_SECONDS``): fewer forge calls per run. Without webhooks nothing pushes,
and the wait is the poll interval, as before.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis

from runs.store import RunStore

#: A note outlives any watch that could still want it.
NOTE_SECONDS = 3600
#: How long one CI webhook counts as "this repository sends them".
SEEN_SECONDS = 24 * 3600
#: With webhooks, polls are this many times further apart (they are only a fallback).
WEBHOOK_POLL_FACTOR = 8


def note_key(prefix: str, repo: str, sha: str) -> str:
    return f"{prefix}:ci-event:{repo.lower()}:{sha}"


def seen_key(prefix: str, repo: str) -> str:
    return f"{prefix}:ci-webhooks:{repo.lower()}"


def completed_sha(event: str, payload: dict[str, Any]) -> str | None:
    """The commit a completed CI event is about; None while it is still pending."""
    if event == "status":
        state, sha = payload.get("state"), payload.get("sha")
        return sha if isinstance(sha, str) and state not in (None, "pending") else None
    body = payload.get(event)
    if payload.get("action") != "completed" or not isinstance(body, dict):
        return None
    sha = body.get("head_sha")
    return sha if isinstance(sha, str) else None


def note_ci_event(store: RunStore, repo: str, event: str, payload: dict[str, Any]) -> str:
    """Remember that ``repo`` sends CI webhooks, and wake the watch of a completed sha."""
    store.redis.set(seen_key(store.prefix, repo), 1, ex=SEEN_SECONDS)
    sha = completed_sha(event, payload)
    if sha is None or len(sha) > 64:
        return f"{event} on {repo}: not completed yet"
    key = note_key(store.prefix, repo, sha)
    with store.redis.pipeline() as pipe:
        pipe.rpush(key, event)
        pipe.expire(key, NOTE_SECONDS)
        pipe.execute()
    return f"{event} completed on {repo}@{sha[:12]}: its CI watch is woken"


def webhooks_seen(connection: redis.Redis, prefix: str, repo: str) -> bool:
    return bool(connection.exists(seen_key(prefix, repo)))


def waiter(connection: redis.Redis, prefix: str, repo: str, sha: str) -> Callable[[float], None]:
    """A ``sleep`` for the CI watch: returns after ``seconds``, or as soon as a CI
    webhook about ``sha`` arrives (and takes the notes it finds)."""
    key = note_key(prefix, repo, sha)

    def wait(seconds: float) -> None:
        if seconds <= 0:
            return
        if connection.blpop([key], timeout=max(seconds, 0.01)) is not None:
            connection.delete(key)  # one read of the checks answers every note so far

    return wait
