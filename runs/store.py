"""The run store: run records, their indexes and their event logs, in Redis.

Every write that depends on what is already stored happens under WATCH/MULTI, so when
two clicks or two workers race on one run, exactly one of them wins. Lists go through
sorted-set indexes; nothing on the hot path scans the keyspace.

Longer than most modules: each write is a transaction that keeps the record, its
indexes and its log consistent, and splitting them would split those transactions.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Sequence
from typing import Any

import redis
from redis.exceptions import WatchError

from process.exceptions import (
    AgentsError,
    InvalidRepoName,
    InvalidTransition,
    RunNotFound,
    ThreadAlreadyHasRun,
)
from process.repo_names import repo_problem
from runs.artifacts import Cost
from runs.counters import Counters
from runs.events import CHATTY, EVENT, Event, RunCreated, StatusChanged, StepStarted
from runs.record import Estimate, Run, RunStatus, Step, check_transition, utcnow

log = logging.getLogger(__name__)

DEFAULT_RETENTION_SECONDS = 30 * 86400


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class RunStore:
    """Create, read, transition and list runs. Pass the connection in; nothing is global."""

    def __init__(
        self,
        connection: redis.Redis,
        *,
        retention_seconds: int = DEFAULT_RETENTION_SECONDS,
        prefix: str = "agents",
    ) -> None:
        self.redis = connection
        self.retention_seconds = retention_seconds
        self.prefix = prefix
        self._nonce: str | None = None

    def _pipeline(self) -> Any:
        """A transactional pipeline; typed loosely because redis-py's WATCH is untyped."""
        return self.redis.pipeline()

    # -- keys -------------------------------------------------------------------------

    def _run_key(self, run_id: int) -> str:
        return f"{self.prefix}:run:{run_id}"

    def events_key(self, run_id: int) -> str:
        return f"{self.prefix}:run:{run_id}:events"

    def _thread_key(self, channel: str, thread_ts: str) -> str:
        return f"{self.prefix}:thread:{channel}:{thread_ts}"

    def _status_key(self, status: RunStatus) -> str:
        return f"{self.prefix}:runs:status:{status.value}"

    def _requester_key(self, requester: str) -> str:
        return f"{self.prefix}:runs:requester:{requester}"

    @property
    def _recent_key(self) -> str:
        return f"{self.prefix}:runs:recent"

    @property
    def _seq_key(self) -> str:
        return f"{self.prefix}:runs:seq"

    @property
    def feed_key(self) -> str:
        """One stream for all runs: each entry names a run whose log just grew.

        The Slack reporter follows it to know which threads to redraw.
        """
        return f"{self.prefix}:feed"

    # -- create and read --------------------------------------------------------------

    def create(
        self,
        *,
        requester: str,
        repo: str,
        request: str,
        channel: str | None = None,
        thread_ts: str | None = None,
        message_ts: str | None = None,
        context: str | None = None,
        by: str | None = None,
        plan_asked: bool = False,
        home_queue: str | None = None,
        estimate: Estimate | None = None,
    ) -> Run:
        """Allocate a short id and store a queued run, with its indexes and first event.

        A Slack thread belongs to at most one run: a second create for the same thread
        raises :class:`ThreadAlreadyHasRun` and writes nothing. The id is taken last, once
        the record is known to be storable and its thread free, so input that is then
        refused never uses up a run number (only a lost race for the same thread can).
        """
        problem = repo_problem(repo)
        if problem is not None:
            raise InvalidRepoName(repo, problem)
        draft = Run(
            id=0,
            requester=requester,
            repo=repo,
            request=request,
            channel=channel,
            thread_ts=thread_ts,
            message_ts=message_ts,
            context=context,
            plan_asked=plan_asked,
            status_by=by or requester,
            home_queue=home_queue,
            estimate=estimate,
        )
        created = RunCreated(by=draft.status_by or requester, repo=repo, request=request)
        # Refuses what Redis could not store (a lone surrogate, say) before an id is taken.
        draft.model_dump_json().encode()
        created.model_dump_json().encode()
        thread_key = self._thread_key(channel, thread_ts) if channel and thread_ts else None
        score = draft.created_at.timestamp()
        run_id: int | None = None
        with self._pipeline() as pipe:
            while True:
                try:
                    if thread_key:
                        pipe.watch(thread_key)
                        existing = pipe.get(thread_key)
                        if existing is not None:
                            raise ThreadAlreadyHasRun(channel or "", thread_ts or "", int(existing))
                    if run_id is None:
                        run_id = int(self.redis.incr(self._seq_key))
                    run = draft.model_copy(update={"id": run_id})
                    pipe.multi()
                    pipe.set(self._run_key(run_id), run.model_dump_json())
                    if thread_key:
                        pipe.set(thread_key, run_id)
                    pipe.zadd(self._recent_key, {str(run_id): score})
                    pipe.zadd(self._status_key(run.status), {str(run_id): score})
                    pipe.zadd(self._requester_key(requester), {str(run_id): score})
                    self._queue_event(pipe, run_id, created)
                    self._execute(pipe)
                    return run
                except WatchError:
                    continue

    def get(self, run_id: int) -> Run:
        raw = self.redis.get(self._run_key(run_id))
        if raw is None:
            raise RunNotFound(run_id)
        return Run.model_validate_json(raw)

    @property
    def identity(self) -> str:
        """Names this store among others sharing machines: server, database and prefix."""
        kwargs = self.redis.connection_pool.connection_kwargs
        where = kwargs.get("path") or f"{kwargs.get('host', 'memory')}:{kwargs.get('port', '')}"
        return f"{where}/{kwargs.get('db', 0)}/{self.prefix}"

    @property
    def nonce(self) -> str:
        """A short random name made once per store and kept in it (``<prefix>:nonce``).

        Run ids count from 1 in every store, so branch names and commit trailers carry
        this too: two stores publishing to one repository never collide. Every client
        of the store reads the same value, whatever host name it reaches Redis by.
        """
        if self._nonce is None:
            key = f"{self.prefix}:nonce"
            self.redis.set(key, secrets.token_hex(3), nx=True)
            raw: Any = self.redis.get(key)
            self._nonce = raw.decode() if isinstance(raw, bytes) else str(raw)
        return self._nonce

    def is_final(self, run_id: str) -> bool | None:
        """Whether the run is over, for the sandbox reaper; None when this store can't
        tell (not a run id, unknown run, Redis unreachable)."""
        if not (run_id.isascii() and run_id.isdigit()) or len(run_id) > 18:
            return None
        try:
            return self.get(int(run_id)).status.is_final
        except (RunNotFound, redis.RedisError):
            return None

    def find_by_thread(self, channel: str, thread_ts: str) -> Run | None:
        raw: Any = self.redis.get(self._thread_key(channel, thread_ts))
        if raw is None:
            return None
        try:
            return self.get(int(raw))
        except RunNotFound:
            return None

    # -- lists (through indexes) ------------------------------------------------------

    def _list(self, index_key: str, limit: int, offset: int) -> list[Run]:
        ids: list[Any] = self.redis.zrevrange(index_key, offset, offset + limit - 1)
        if not ids:
            return []
        raws = self.redis.mget([self._run_key(int(i)) for i in ids])
        runs: list[Run] = []
        expired: list[Any] = []
        for run_id, raw in zip(ids, raws, strict=True):
            if raw is None:
                expired.append(run_id)
            else:
                runs.append(Run.model_validate_json(raw))
        if expired:
            # Retention removed these records; drop their index entries as we pass.
            self.redis.zrem(index_key, *expired)
        return runs

    def list_recent(self, limit: int = 20, offset: int = 0) -> list[Run]:
        return self._list(self._recent_key, limit, offset)

    def list_by_status(self, status: RunStatus, limit: int = 20, offset: int = 0) -> list[Run]:
        return self._list(self._status_key(status), limit, offset)

    def list_by_requester(self, requester: str, limit: int = 20, offset: int = 0) -> list[Run]:
        return self._list(self._requester_key(requester), limit, offset)

    def count_by_status(self, status: RunStatus) -> int:
        return int(self.redis.zcard(self._status_key(status)))

    def count_created(self) -> int:
        """Runs ever created in this store: the id counter, which never goes down."""
        raw: Any = self.redis.get(self._seq_key)
        return int(raw or 0)

    # -- changes ----------------------------------------------------------------------

    def transition(
        self,
        run_id: int,
        to: RunStatus,
        *,
        by: str,
        reason: str | None = None,
        expect: RunStatus | None = None,
        change: Callable[[Run], None] | None = None,
        events: Sequence[Event] = (),
    ) -> Run:
        """Move a run to ``to`` if the table allows it from its current status.

        ``expect`` additionally pins the current status, for callers acting on what they
        saw (a button press on a run they rendered as awaiting a decision). ``change``
        edits other fields in the same atomic write (a rework's new iteration), and
        ``events`` follow the status change in the log, in the same write. Raises
        :class:`InvalidTransition` and writes nothing otherwise.
        """

        def write(pipe: Any, run: Run) -> Run:
            previous = run.status
            if expect is not None and previous != expect:
                raise InvalidTransition(run_id, previous.value, to.value)
            check_transition(run_id, previous, to)
            if change is not None:
                change(run)
                if run.status is not previous or run.id != run_id:
                    raise AgentsError("change() may not alter a run's id or status")
            now = utcnow()
            run.status = to
            run.status_by = by
            run.updated_at = now
            if to is RunStatus.FAILED:
                run.error = reason or run.error or "failed without a reason"
            if to.is_final:
                run.finished_at = now
                run.step = None
            score = run.created_at.timestamp()
            pipe.multi()
            pipe.set(self._run_key(run_id), run.model_dump_json())
            pipe.zrem(self._status_key(previous), str(run_id))
            pipe.zadd(self._status_key(to), {str(run_id): score})
            status = StatusChanged(by=by, previous=previous, to=to, reason=reason or None)
            self._queue_event(pipe, run_id, status)
            for event in events:
                self._queue_event(pipe, run_id, event)
            if to.is_final:
                self._expire(pipe, run)
            return run

        return self._watched(run_id, write)

    def update(
        self,
        run_id: int,
        change: Callable[[Run], None],
        *,
        events: list[Event] | None = None,
    ) -> Run:
        """Apply ``change`` to the stored run atomically, with optional events.

        ``change`` mutates a copy and may be called more than once under contention,
        so it must not have side effects. Status changes go through :meth:`transition`.
        """
        key = self._run_key(run_id)

        def write(pipe: Any, run: Run) -> Run:
            status, ident = run.status, run.id
            change(run)
            if run.status != status or run.id != ident:
                raise AgentsError("update() may not change a run's id or status")
            run.updated_at = utcnow()
            pipe.multi()
            if run.status.is_final:
                # Keep the retention countdown that the final transition started.
                pipe.set(key, run.model_dump_json(), keepttl=True)
            else:
                pipe.set(key, run.model_dump_json())
            for event in events or ():
                self._queue_event(pipe, run_id, event)
            return run

        return self._watched(run_id, write)

    def claim_status_ts(self, run_id: int, ts: str) -> Run:
        """Record ``ts`` as the run's status message unless one is recorded already
        (a checked write). Returns the stored run: its ``status_ts`` is ``ts`` only if
        this call won, so a loser can delete the message it posted."""
        key = self._run_key(run_id)

        def write(pipe: Any, run: Run) -> Run:
            pipe.multi()
            if run.status_ts is None:
                run.status_ts = ts
                run.updated_at = utcnow()
                # keepttl: a final run keeps its retention countdown; others have none.
                pipe.set(key, run.model_dump_json(), keepttl=True)
            return run

        return self._watched(run_id, write)

    def claim_thread(self, run_id: int, channel: str, ts: str) -> Run:
        """Make the message ``ts`` in ``channel`` the thread of a run asked for outside
        Slack (it has a channel but no thread yet), unless it has one already; indexed
        like a mention's thread, so replies there find the run. Returns the stored run:
        its ``thread_ts`` is ``ts`` only if this call won."""
        key = self._run_key(run_id)

        def write(pipe: Any, run: Run) -> Run:
            pipe.multi()
            if run.thread_ts is None:
                run.channel, run.thread_ts, run.message_ts = channel, ts, ts
                run.updated_at = utcnow()
                pipe.set(key, run.model_dump_json(), keepttl=True)
                pipe.set(self._thread_key(channel, ts), run_id)
            return run

        return self._watched(run_id, write)

    def _watched(self, run_id: int, write: Callable[[Any, Run], Run]) -> Run:
        """Read the run under WATCH and let ``write`` queue its changes after
        ``multi()``; if anyone else wrote the run meanwhile, read it again and retry."""
        key = self._run_key(run_id)
        with self._pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)
                    raw = pipe.get(key)
                    if raw is None:
                        raise RunNotFound(run_id)
                    result = write(pipe, Run.model_validate_json(raw))
                    self._index_approving(pipe, result)
                    self._execute(pipe)
                    return result
                except WatchError:
                    continue

    @property
    def _approving_key(self) -> str:
        return f"{self.prefix}:runs:approving"

    def _index_approving(self, pipe: Any, run: Run) -> None:
        """Keep the set of runs whose approve guard is held on their current iteration
        in step with the record, in the same transaction: the recovery sweep reads
        it instead of every run awaiting a decision."""
        guard = run.artifacts.approving
        held = (
            run.status is RunStatus.AWAITING_DECISION
            and guard is not None
            and guard.iteration == run.iteration
        )
        if held:
            pipe.sadd(self._approving_key, str(run.id))
        else:
            pipe.srem(self._approving_key, str(run.id))

    def approving_runs(self) -> list[int]:
        """Ids of runs whose approve guard was held at their last write (it may have
        lapsed since: see :func:`runs.record.approval_in_progress`). A run leaves the set
        at its next write; one that stays awaiting a decision with a lapsed guard stays
        in it, and costs the recovery sweep one read per pass."""
        return sorted(int(_text(member)) for member in self.redis.smembers(self._approving_key))

    def set_step(self, run_id: int, step: Step, *, by: str) -> Run:
        """Record the step a running run is in (``running(step)``), with an event."""

        def change(run: Run) -> None:
            if run.status is not RunStatus.RUNNING:
                raise InvalidTransition(run_id, run.status.value, f"running({step.value})")
            run.step = step

        event = StepStarted(by=by, step=step)
        return self.update(run_id, change, events=[event])

    def add_cost(
        self,
        run_id: int,
        cost: Cost,
        *,
        by: str = "agent",
        role: str | None = None,
        model: str | None = None,
    ) -> Run:
        """Add one model call's tokens and dollars to the run's running total, to its
        split by ``role`` and ``model`` (when given), and to what the current iteration
        has spent against its budget (one more turn)."""

        def change(run: Run) -> None:
            run.cost = _plus(run.cost, cost)
            if role and model:
                by_model = run.cost_by_role.setdefault(role, {})
                by_model[model] = _plus(by_model.get(model, Cost()), cost)
            run.artifacts.spent = _plus(run.artifacts.spent, cost)
            run.artifacts.turns_spent += 1

        run = self.update(run_id, change)
        Counters(self.redis, prefix=self.prefix).add_cost(cost)
        return run

    # -- events -----------------------------------------------------------------------

    FEED_MAXLEN = 100_000

    def _queue_event(self, pipe: Any, run_id: int, event: Event) -> None:
        pipe.xadd(self.events_key(run_id), {"event": event.model_dump_json(exclude={"id"})})
        pipe.xadd(
            self.feed_key,
            {"run": str(run_id), "kind": event.kind},
            maxlen=self.FEED_MAXLEN,
            approximate=True,
        )
        pipe.__dict__.setdefault("agents_events", []).append((run_id, event))

    def _execute(self, pipe: Any) -> Any:
        """Run the transaction, then log each event it appended (none if it failed)."""
        queued: list[tuple[int, Event]] = pipe.__dict__.pop("agents_events", [])
        result = pipe.execute()
        for run_id, event in queued:
            _log_event(run_id, event)
        return result

    def append_event(self, run_id: int, event: Event) -> str:
        """Append to the run's log. The log is append-only; entries are never edited."""
        if not self.redis.exists(self._run_key(run_id)):
            raise RunNotFound(run_id)
        with self._pipeline() as pipe:
            pipe.multi()
            self._queue_event(pipe, run_id, event)
            entry_id, _feed_id = self._execute(pipe)
        return _text(entry_id)

    def events(
        self, run_id: int, *, after: str | None = None, count: int | None = None
    ) -> list[Event]:
        """Events in order; ``after`` is an entry id to read strictly after."""
        start = f"({after}" if after else "-"
        entries: Any = self.redis.xrange(self.events_key(run_id), min=start, max="+", count=count)
        return [self._decode_event(entry_id, fields) for entry_id, fields in entries]

    def tail_events(self, run_id: int, count: int = 10) -> list[Event]:
        entries: Any = self.redis.xrevrange(self.events_key(run_id), max="+", min="-", count=count)
        return [self._decode_event(entry_id, fields) for entry_id, fields in reversed(entries)]

    @staticmethod
    def _decode_event(entry_id: Any, fields: dict[Any, Any]) -> Event:
        data = {_text(k): _text(v) for k, v in fields.items()}
        return EVENT.validate_json(data["event"]).model_copy(update={"id": _text(entry_id)})

    # -- retention --------------------------------------------------------------------

    def _expire(self, pipe: Any, run: Run) -> None:
        ttl = self.retention_seconds
        pipe.expire(self._run_key(run.id), ttl)
        pipe.expire(self.events_key(run.id), ttl)
        if run.channel and run.thread_ts:
            pipe.expire(self._thread_key(run.channel, run.thread_ts), ttl)


def _plus(total: Cost, cost: Cost) -> Cost:
    return Cost(
        input_tokens=total.input_tokens + cost.input_tokens,
        output_tokens=total.output_tokens + cost.output_tokens,
        cache_read_tokens=total.cache_read_tokens + cost.cache_read_tokens,
        cache_write_tokens=total.cache_write_tokens + cost.cache_write_tokens,
        dollars=round(total.dollars + cost.dollars, 6),
    )


def _log_event(run_id: int, event: Event) -> None:
    """One log line per event, carrying ``run_id`` and ``event`` (and ``step``)."""
    extra: dict[str, Any] = {"run_id": run_id, "event": event.kind}
    if isinstance(event, StepStarted):
        extra["step"] = event.step.value
    level = logging.DEBUG if isinstance(event, CHATTY) else logging.INFO
    log.log(level, "run #%d %s %s (by %s)", run_id, event.kind, event.line, event.by, extra=extra)
