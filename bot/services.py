"""What the listeners need, passed in once: settings, store and queue. No globals."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import redis
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.channel_repos import ChannelRepos, PendingAsks
from bot.reporter import Reporter
from jobs.queue import RunQueue
from process.settings import BotSettings
from runs.record import Run
from runs.store import RunStore

log = logging.getLogger(__name__)

#: How long a delivered message is remembered, to drop Slack's retries and duplicates.
DEDUPE_SECONDS = 3600


@dataclass
class Services:
    settings: BotSettings
    connection: redis.Redis
    store: RunStore
    queue: RunQueue
    #: The one writer of each run's thread (its status message and milestones).
    reporter: Reporter
    #: Each channel's default repository, and mentions waiting for one to be picked.
    channel_repos: ChannelRepos
    pending_asks: PendingAsks

    @classmethod
    def from_settings(
        cls, settings: BotSettings, connection: redis.Redis, client: WebClient
    ) -> Services:
        store = RunStore(connection, retention_seconds=settings.run_retention_seconds)
        queue = RunQueue(connection, store, name=settings.queue, job_timeout=settings.job_timeout)
        return cls(
            settings=settings,
            connection=connection,
            store=store,
            queue=queue,
            reporter=Reporter(store, client),
            channel_repos=ChannelRepos(
                connection, prefix=store.prefix, configured=settings.channel_repos
            ),
            pending_asks=PendingAsks(connection, prefix=store.prefix),
        )

    def first_delivery(self, channel: str, ts: str) -> bool:
        """True once per Slack message, however many times (or as what) it is delivered.

        Keyed on the message, not the event id: one message arrives both as
        ``app_mention`` and as ``message``, and Slack retries reuse neither guarantee.
        """
        key = f"{self.store.prefix}:slack:seen:{channel}:{ts}"
        return bool(self.connection.set(key, 1, nx=True, ex=DEDUPE_SECONDS))

    def visibility(self, client: WebClient, user: str) -> Callable[[Run], bool]:
        """Which runs ``user`` may see in detail; see :meth:`visibility_where`."""
        where = self.visibility_where(client, user)

        def visible(run: Run) -> bool:
            return where(run.requester, run.channel)

        return visible

    def visibility_where(self, client: WebClient, user: str) -> Callable[[str, str | None], bool]:
        """Which runs ``user`` may see in detail (``/agents status``, ``/agents stats``,
        the App Home), by their requester and channel.

        A run is visible to its requester, to the approvers, and to whoever can read the
        conversation it was asked in: anyone for a public channel, the members for a
        private channel, nobody else for a DM. A run without a channel (started from the
        CLI) is visible to all. When Slack can't say, the answer is no. Slack is asked
        once per channel per call.
        """
        approvers = set(self.settings.approvers)
        readable: dict[str, bool] = {}

        def can_read(channel: str) -> bool:
            if channel.startswith("D"):
                return False
            try:
                info = client.conversations_info(channel=channel)
                conversation = info.get("channel") or {}
                if conversation.get("is_im") or conversation.get("is_mpim"):
                    return False
                if not conversation.get("is_private"):
                    return True
                cursor = None
                while True:
                    page = client.conversations_members(channel=channel, cursor=cursor, limit=1000)
                    if user in (page.get("members") or []):
                        return True
                    cursor = (page.get("response_metadata") or {}).get("next_cursor")
                    if not cursor:
                        return False
            except SlackApiError as exc:
                log.warning("can't tell who may read %s (%s); hiding its runs", channel, exc)
                return False

        def visible(requester: str, channel: str | None) -> bool:
            """``(requester, channel)`` of a run, or of a run's outcome (``/agents stats``)."""
            if user == requester or user in approvers or not channel:
                return True
            if channel not in readable:
                readable[channel] = can_read(channel)
            return readable[channel]

        return visible
