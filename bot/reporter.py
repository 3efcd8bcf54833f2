"""The reporter: draws each run's thread from its event log, outside the pipeline.

It follows the store's feed (one stream naming every run whose log grew) through a
consumer group, so bot replicas share the work. For each run it redraws the status
message with ``chat.update`` at most about once a second, under a per-run lock, and
posts each milestone reply exactly once, tracked by a per-run cursor in Redis.

Nothing is lost when a bot dies or Slack misbehaves:

- a feed entry is acknowledged only once its run has been drawn, so entries a dead
  replica read but never drew stay pending, and a live replica claims them after
  ``claim_idle`` (``XAUTOCLAIM``);
- the per-run lock is renewed while a draw lasts: the Slack client may sleep through
  several 429 ``Retry-After`` answers, and the lock must not lapse meanwhile (another
  replica would then post the same milestone);
- the reporter alone writes a run's status message: the mention handler records the
  run and asks for the message (:meth:`Reporter.post_status`), and a draw posts it if
  that failed. Both hold the run's lock, and the message is claimed with a checked
  write (a loser deletes what it just posted), so a thread keeps exactly one.

Nor does a thread that can't be drawn hold the feed up forever: a Slack answer no
retry will change (the channel is gone or archived, the bot was removed, the status
message was deleted) ends that draw, its entries are acknowledged, and the run is
marked so later entries cost no Slack call; other failures are retried with backoff,
at most ``max_failed_draws`` times in a row, then given up the same way.

Longer than most modules (about 440 lines): the draw, its lock, its cursor and its
failure handling are one mechanism, and each part only makes sense beside the others.
What each event says in the thread is apart, in :mod:`bot.milestones`.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import redis
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.blocks import (
    escape,
    run_message,
    text_message,
)
from bot.milestones import linkable_url, milestone
from process.exceptions import RunNotFound
from runs.events import (
    GitHubActivity,
    StatusChanged,
)
from runs.projection import project
from runs.record import Run, RunStatus
from runs.store import RunStore

log = logging.getLogger(__name__)

GROUP = "reporter"
LOCK_MS = 30_000
CURSOR_TTL = 30 * 86400

_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""
_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
return 0
"""
#: Pending feed entries idle this long belong to a replica that is gone (or stuck).
CLAIM_IDLE_MS = 60_000
#: Failed draws of one run in a row (each after the client's own retries) before its
#: entries are acknowledged anyway.
MAX_FAILED_DRAWS = 8
#: Longest wait between two failed draws of a run.
MAX_BACKOFF = 60.0

#: Slack errors meaning the run's thread can't be drawn any more: the reporter stops.
THREAD_GONE = frozenset(
    {
        "channel_not_found",
        "is_archived",
        "not_in_channel",
        "thread_not_found",
        "restricted_action",
        "team_access_not_granted",
    }
)
#: Slack errors meaning the status message can't be updated any more (deleted, or not
#: the bot's): later draws still post milestones, but no longer update it.
STATUS_GONE = frozenset({"message_not_found", "cant_update_message", "edit_window_closed"})
#: Other answers no retry will change (the request itself is refused): the draw ends.
REFUSED = frozenset(
    {
        "invalid_blocks",
        "invalid_attachments",
        "msg_too_long",
        "no_text",
        "invalid_arguments",
        "too_many_attachments",
        "messages_tab_disabled",
    }
)


def slack_error(exc: SlackApiError) -> str:
    """The error code of a Slack answer (never its headers or the request)."""
    return str(exc.response.get("error") or f"http_{exc.response.status_code}")


def claim_status_message(
    store: RunStore, client: WebClient, run_id: int, channel: str, ts: str
) -> Run:
    """Record the just-posted message ``ts`` as the run's status message, unless another
    one got there first (the bot's, late, or the reporter's, after the grace): then
    delete ``ts``, so the thread keeps exactly one status message. Returns the run."""
    kept = store.claim_status_ts(run_id, ts)
    if kept.status_ts != ts:
        log.info("run #%s already has a status message; deleting the second one", run_id)
        try:
            client.chat_delete(channel=channel, ts=ts)
        except SlackApiError as exc:
            log.warning(
                "run #%s: could not delete a second status message (%s)", run_id, slack_error(exc)
            )
    return kept


_REACTION_FOR = {
    RunStatus.AWAITING_DECISION.value: "white_check_mark",
    RunStatus.APPROVED.value: "white_check_mark",
    RunStatus.FAILED.value: "x",
    RunStatus.CANCELLED.value: "x",
    RunStatus.MERGED.value: "tada",
}


class Reporter:
    def __init__(
        self,
        store: RunStore,
        client: WebClient,
        *,
        consumer: str | None = None,
        min_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        lock_ms: int = LOCK_MS,
        claim_idle_ms: int = CLAIM_IDLE_MS,
        max_failed_draws: int = MAX_FAILED_DRAWS,
    ) -> None:
        self.store = store
        self.redis: redis.Redis = store.redis
        self.client = client
        self.consumer = consumer or f"{socket.gethostname()}.{uuid.uuid4().hex[:8]}"
        self.min_interval_ms = int(min_interval * 1000)
        self.clock = clock
        self.lock_ms = lock_ms
        self.claim_idle_ms = claim_idle_ms
        self.max_failed_draws = max_failed_draws
        self.dirty: set[int] = set()
        #: Feed entries read but not acknowledged yet, by run: acked once it is drawn.
        self.unacked: dict[int, set[Any]] = {}
        #: Failed draws in a row, and when the next may be tried, by run.
        self.failures: dict[int, int] = {}
        self._retry_at: dict[int, float] = {}
        self._release = self.redis.register_script(_RELEASE)
        self._renew = self.redis.register_script(_RENEW)
        self._group_ready = False
        self._next_claim = 0.0
        self.last_read = 0

    def _key(self, kind: str, run_id: int) -> str:
        return f"{self.store.prefix}:reporter:{kind}:{run_id}"

    def ensure_group(self) -> None:
        if self._group_ready:
            return
        try:
            self.redis.xgroup_create(self.store.feed_key, GROUP, id="$", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    def poll(self, block_ms: int = 1000) -> int:
        """Read the feed once, then draw what is due. Returns how many runs are dirty."""
        self.ensure_group()
        self._claim_abandoned()
        wait = 100 if self.dirty else block_ms
        replies: Any = self.redis.xreadgroup(
            GROUP, self.consumer, {self.store.feed_key: ">"}, count=500, block=wait
        )
        self.last_read = sum(len(entries) for _stream, entries in replies or [])
        for _stream, entries in replies or []:
            self._take(entries)
        now = self.clock()
        for run_id in sorted(self.dirty):
            if now >= self._retry_at.get(run_id, 0.0) and self.draw(run_id):
                self.dirty.discard(run_id)
                self._ack(run_id)
        return len(self.dirty)

    def _take(self, entries: Any) -> None:
        for entry_id, fields in entries:
            raw = fields.get(b"run", fields.get("run")) if fields else None
            if raw is None:
                self.redis.xack(self.store.feed_key, GROUP, entry_id)
                continue
            run_id = int(raw)
            self.dirty.add(run_id)
            self.unacked.setdefault(run_id, set()).add(entry_id)

    def _ack(self, run_id: int) -> None:
        self.failures.pop(run_id, None)
        self._retry_at.pop(run_id, None)
        ids = self.unacked.pop(run_id, set())
        if ids:
            self.redis.xack(self.store.feed_key, GROUP, *sorted(ids))

    def _claim_abandoned(self) -> None:
        """Take over entries another replica read and never drew (it died), and, on the
        first poll, this consumer's own pending ones. At most every ``claim_idle``."""
        now = self.clock()
        if now < self._next_claim:
            return
        self._next_claim = now + self.claim_idle_ms / 1000
        start: Any = "0-0"
        while True:
            reply: Any = self.redis.xautoclaim(
                self.store.feed_key,
                GROUP,
                self.consumer,
                min_idle_time=self.claim_idle_ms,
                start_id=start,
                count=500,
            )
            start, entries = reply[0], reply[1]
            self._take(entries)
            if start in (b"0-0", "0-0") or not entries:
                return

    def draw(self, run_id: int) -> bool:
        """Bring one thread up to date. False means "not now, try again shortly"; True,
        that the run's entries may be acknowledged (drawn, or given up for good)."""
        if not self.redis.set(self._key("rate", run_id), 1, nx=True, px=self.min_interval_ms):
            return False
        token = uuid.uuid4().hex
        lock = self._key("lock", run_id)
        if not self.redis.set(lock, token, nx=True, px=self.lock_ms):
            return False
        try:
            with self._renewing(lock, token):
                return self._draw_locked(run_id)
        except SlackApiError as exc:
            error = slack_error(exc)
            if error in THREAD_GONE:
                log.warning("run #%s: Slack answered %s; no longer drawing it", run_id, error)
                self.redis.set(self._key("gone", run_id), error, ex=CURSOR_TTL)
                return True
            if error in STATUS_GONE or error in REFUSED:
                log.warning("run #%s: Slack answered %s; giving up this update", run_id, error)
                return True
            return self._failed(run_id, f"Slack answered {error}")
        except OSError as exc:
            return self._failed(run_id, type(exc).__name__)
        except redis.RedisError as exc:
            log.warning("run #%s: could not draw the thread (%s); will retry", run_id, exc)
            return False
        finally:
            self._release(keys=[lock], args=[token])

    def _failed(self, run_id: int, why: str) -> bool:
        """Count a failed draw: back off, and give up after ``max_failed_draws``."""
        failures = self.failures.get(run_id, 0) + 1
        if failures >= self.max_failed_draws:
            log.error("run #%s: %s, %d draws in a row; giving up", run_id, why, failures)
            return True
        self.failures[run_id] = failures
        backoff = min(MAX_BACKOFF, self.min_interval_ms / 1000 * 2**failures)
        self._retry_at[run_id] = self.clock() + backoff
        log.warning("run #%s: %s; retrying in %.1f s", run_id, why, backoff)
        return False

    @contextmanager
    def _renewing(self, lock: str, token: str) -> Iterator[None]:
        """Keep ``lock`` ours while the block runs (renewed every third of its life)."""
        stop = threading.Event()

        def renew() -> None:
            while not stop.wait(self.lock_ms / 3000):
                try:
                    if not self._renew(keys=[lock], args=[token, self.lock_ms]):
                        return  # lost it after all; the draw's writes are idempotent
                except redis.RedisError as exc:
                    log.warning("reporter: could not renew %s (%s)", lock, exc)

        keeper = threading.Thread(target=renew, name=f"renew-{lock}", daemon=True)
        keeper.start()
        try:
            yield
        finally:
            stop.set()
            keeper.join()

    def _draw_locked(self, run_id: int) -> bool:
        try:
            run = self.store.get(run_id)
        except RunNotFound:
            return True
        if self.redis.exists(self._key("gone", run_id)):
            return True  # Slack said the thread is gone (logged then); nothing to draw
        if run.channel and not run.thread_ts:
            run = self._post_root(run)
        if run.channel and run.thread_ts and not run.status_ts:
            run = self._post_status(run)
        if not run.channel or not run.thread_ts or not run.status_ts:
            return run.channel is None
        cursor_key = self._key("cursor", run_id)
        raw_cursor: Any = self.redis.get(cursor_key)
        cursor = raw_cursor.decode() if isinstance(raw_cursor, bytes) else raw_cursor
        new_events = self.store.events(run_id, after=cursor)
        for event in new_events:
            reply = milestone(event, run)
            if reply is not None:
                fallback, blocks = reply
                self.client.chat_postMessage(
                    channel=run.channel, thread_ts=run.thread_ts, text=fallback, blocks=blocks
                )
            if isinstance(event, StatusChanged):
                self._react(run, event.to.value)
            # Advance past each event as soon as its reply is out: a crash between
            # two replies never posts the first one twice.
            self.redis.set(cursor_key, event.id or "", ex=CURSOR_TTL)
        no_status = self._key("nostatus", run_id)
        if self.redis.exists(no_status):
            return True
        view = project(run, self.store.tail_events(run_id, 50))
        fallback, blocks = run_message(view, decisions=False)
        try:
            self.client.chat_update(
                channel=run.channel, ts=run.status_ts, text=fallback, blocks=blocks
            )
        except SlackApiError as exc:
            error = slack_error(exc)
            if error not in STATUS_GONE:
                raise
            log.warning(
                "run #%s: status message unusable (%s); no longer updating it", run_id, error
            )
            self.redis.set(no_status, error, ex=CURSOR_TTL)
        return True

    def post_status(self, run_id: int) -> Run | None:
        """The run's status message, posted now if it has none yet: what the mention
        handler asks for right after recording a run. Under the run's lock, like a draw;
        if another draw holds it, that draw posts it. None if the run is gone."""
        token = uuid.uuid4().hex
        lock = self._key("lock", run_id)
        if not self.redis.set(lock, token, nx=True, px=self.lock_ms):
            return None
        try:
            with self._renewing(lock, token):
                run = self.store.get(run_id)
                if run.channel and not run.thread_ts:
                    run = self._post_root(run)
                if run.channel and run.thread_ts and not run.status_ts:
                    run = self._post_status(run)
                return run
        except RunNotFound:
            return None
        finally:
            self._release(keys=[lock], args=[token])

    def _post_root(self, run: Run) -> Run:
        """A run asked for outside Slack (a GitHub issue) has a channel but no thread:
        post the message its thread hangs off, saying where it came from, and claim it
        (a checked write: a second root, posted by a racing draw, is deleted)."""
        started = next(
            (e for e in self.store.events(run.id, count=5) if isinstance(e, GitHubActivity)),
            None,
        )
        origin = escape(started.text) if started else f"asked by {escape(run.requester)}"
        link = (
            f" (<{started.url}|issue>)"
            if started and started.url and linkable_url(started.url)
            else ""
        )
        fallback, blocks = text_message(f"{run.label} `{escape(run.repo)}`: {origin}{link}")
        channel = run.channel or ""
        posted = self.client.chat_postMessage(channel=channel, text=fallback, blocks=blocks)
        ts = str(posted["ts"])
        kept = self.store.claim_thread(run.id, channel, ts)
        if kept.thread_ts != ts:
            with contextlib.suppress(SlackApiError):
                self.client.chat_delete(channel=channel, ts=ts)
        return kept

    def _post_status(self, run: Run) -> Run:
        """Post the run's status message (the first state of its thread) and claim it."""
        fallback, blocks = run_message(project(run, self.store.tail_events(run.id, 50)))
        channel = run.channel or ""
        posted = self.client.chat_postMessage(
            channel=channel, thread_ts=run.thread_ts, text=fallback, blocks=blocks
        )
        return claim_status_message(self.store, self.client, run.id, channel, str(posted["ts"]))

    def _react(self, run: Run, status: str) -> None:
        name = _REACTION_FOR.get(status)
        if name is None or not run.channel or not run.message_ts:
            return
        try:
            self.client.reactions_add(channel=run.channel, timestamp=run.message_ts, name=name)
            self.client.reactions_remove(channel=run.channel, timestamp=run.message_ts, name="eyes")
        except SlackApiError as exc:
            # message_not_found: the requester deleted their message; nothing to mark.
            if exc.response.get("error") not in (
                "already_reacted",
                "no_reaction",
                "message_not_found",
            ):
                raise

    def run_forever(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                if not self.poll() and not self.last_read:
                    # Idle. A real server blocked in XREADGROUP already; an in-memory
                    # one (the demo's) returns at once, so don't spin.
                    stop.wait(0.2)
            except redis.RedisError as exc:
                log.warning("reporter: Redis unavailable (%s); retrying", exc)
                self._group_ready = False
                stop.wait(1.0)
