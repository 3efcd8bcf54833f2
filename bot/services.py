"""What the listeners need, passed in once: settings, store and queue. No globals."""

from __future__ import annotations

from dataclasses import dataclass

import redis

from core.settings import BotSettings
from core.store import RunStore
from jobs.queue import RunQueue

#: How long a delivered message is remembered, to drop Slack's retries and duplicates.
DEDUPE_SECONDS = 3600


@dataclass
class Services:
    settings: BotSettings
    connection: redis.Redis
    store: RunStore
    queue: RunQueue

    @classmethod
    def from_settings(cls, settings: BotSettings, connection: redis.Redis) -> Services:
        store = RunStore(connection, retention_seconds=settings.run_retention_seconds)
        queue = RunQueue(connection, store, name=settings.queue, job_timeout=settings.job_timeout)
        return cls(settings=settings, connection=connection, store=store, queue=queue)

    def first_delivery(self, channel: str, ts: str) -> bool:
        """True once per Slack message, however many times (or as what) it is delivered.

        Keyed on the message, not the event id: one message arrives both as
        ``app_mention`` and as ``message``, and Slack retries reuse neither guarantee.
        """
        key = f"{self.store.prefix}:slack:seen:{channel}:{ts}"
        return bool(self.connection.set(key, 1, nx=True, ex=DEDUPE_SECONDS))
