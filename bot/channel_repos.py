"""A channel's default repository, and the requests waiting for one.

``/agents repo owner/name`` sets a channel's default in Redis, where every bot process
sees it at once; ``AGENTS_CHANNEL_REPOS`` gives the operator's defaults, which a channel
setting overrides. A mention that names no repository in a channel with neither is
kept here (:class:`PendingAsks`) while its asker picks one from a menu.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import redis

from runs.record import utcnow

#: How long a request waits for its asker to pick a repository.
PENDING_SECONDS = 24 * 3600


@dataclass(frozen=True)
class ChannelDefault:
    repo: str
    #: Who set it with ``/agents repo``; None for the operator's AGENTS_CHANNEL_REPOS.
    by: str | None


class ChannelRepos:
    """Channel id → default repository: set in Slack, else from the settings."""

    def __init__(
        self, connection: redis.Redis, *, prefix: str, configured: Mapping[str, str]
    ) -> None:
        self.connection = connection
        self.key = f"{prefix}:channel-repos"
        self.configured = dict(configured)

    def lookup(self, channel: str) -> ChannelDefault | None:
        raw: Any = self.connection.hget(self.key, channel)
        if raw is not None:
            data = json.loads(raw)
            return ChannelDefault(repo=str(data["repo"]), by=str(data["by"]))
        repo = self.configured.get(channel)
        return ChannelDefault(repo=repo, by=None) if repo else None

    def get(self, channel: str) -> str | None:
        found = self.lookup(channel)
        return found.repo if found else None

    def set(self, channel: str, repo: str, *, by: str) -> None:
        value = json.dumps({"repo": repo, "by": by, "at": utcnow().isoformat()})
        self.connection.hset(self.key, channel, value)

    def clear(self, channel: str) -> bool:
        """Forget the channel's own default (the operator's, if any, applies again)."""
        return bool(self.connection.hdel(self.key, channel))

    def known(self) -> list[str]:
        """Every repository some channel defaults to, for the repository picker."""
        values: Any = self.connection.hvals(self.key)
        repos = {str(json.loads(v)["repo"]) for v in values} | set(self.configured.values())
        return sorted(repos)


@dataclass(frozen=True)
class PendingAsk:
    """A mention that named no repository, waiting for its asker to pick one."""

    user: str
    channel: str
    ts: str
    thread_ts: str
    text: str
    #: The mention asked for a plan first.
    plan: bool = False


class PendingAsks:
    def __init__(self, connection: redis.Redis, *, prefix: str) -> None:
        self.connection = connection
        self.prefix = prefix

    def _key(self, token: str) -> str:
        return f"{self.prefix}:pending-ask:{token}"

    def keep(self, ask: PendingAsk) -> str:
        """Keep ``ask``; the token names it in the picker's block id."""
        token = secrets.token_hex(8)
        self.connection.set(self._key(token), json.dumps(ask.__dict__), ex=PENDING_SECONDS)
        return token

    def peek(self, token: str) -> PendingAsk | None:
        raw: Any = self.connection.get(self._key(token))
        return PendingAsk(**json.loads(raw)) if raw is not None else None

    def take(self, token: str) -> PendingAsk | None:
        """The ask, removed in the same step: two picks start one run."""
        raw: Any = self.connection.getdel(self._key(token))
        return PendingAsk(**json.loads(raw)) if raw is not None else None
