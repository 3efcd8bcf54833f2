"""The run store, run against fakeredis and a real Redis server alike."""

from __future__ import annotations

import itertools
import threading
from typing import Any

import pytest
import redis

from process.exceptions import (
    AgentsError,
    InvalidRepoName,
    InvalidTransition,
    RunNotFound,
    ThreadAlreadyHasRun,
)
from runs.artifacts import ApproveGuard, Cost
from runs.events import Escalated, RunCreated, StatusChanged, StepStarted
from runs.record import Run, RunStatus, Step
from runs.store import RunStore

#: A valid path from a fresh (queued) run to each status.
PATH_TO: dict[RunStatus, list[RunStatus]] = {
    RunStatus.QUEUED: [],
    RunStatus.RUNNING: [RunStatus.RUNNING],
    RunStatus.AWAITING_DECISION: [RunStatus.RUNNING, RunStatus.AWAITING_DECISION],
    RunStatus.APPROVED: [RunStatus.RUNNING, RunStatus.AWAITING_DECISION, RunStatus.APPROVED],
    RunStatus.REWORK: [RunStatus.RUNNING, RunStatus.AWAITING_DECISION, RunStatus.REWORK],
    RunStatus.FAILED: [RunStatus.FAILED],
    RunStatus.CANCELLED: [RunStatus.CANCELLED],
    RunStatus.EVALUATED: [RunStatus.RUNNING, RunStatus.EVALUATED],
    RunStatus.AWAITING_PLAN: [RunStatus.RUNNING, RunStatus.AWAITING_PLAN],
    RunStatus.AWAITING_BUDGET: [RunStatus.RUNNING, RunStatus.AWAITING_BUDGET],
    RunStatus.MERGED: [RunStatus.RUNNING, RunStatus.AWAITING_DECISION, RunStatus.MERGED],
    RunStatus.CLOSED: [RunStatus.RUNNING, RunStatus.AWAITING_DECISION, RunStatus.CLOSED],
}

ALL_PAIRS = list(itertools.product(RunStatus, RunStatus))

Q, R, AD = RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.AWAITING_DECISION
AP, RW, F, C = RunStatus.APPROVED, RunStatus.REWORK, RunStatus.FAILED, RunStatus.CANCELLED
EV = RunStatus.EVALUATED
PL, BU = RunStatus.AWAITING_PLAN, RunStatus.AWAITING_BUDGET
M, CL = RunStatus.MERGED, RunStatus.CLOSED
#: The moves the design allows (docs: queued -> running -> awaiting_decision -> approved |
#: rework -> running ..., failed and cancelled from anywhere non-final), written out here
#: rather than read from the product's table; a running or reworked run may also go back
#: to the queue (a worker that died, a rework enqueued), and an evaluation run ends
#: evaluated once its steps ran. A running run may pause for its plan's approval or at
#: its budget's cap; the answer queues it again. A run's PR merged or closed on GitHub
#: ends it merged or closed from any state a run with a PR is in (a rework paused at its
#: budget too, never a run waiting for its plan), approved included (marked ready, then
#: merged on GitHub). Every other pair is forbidden.
ALLOWED: frozenset[tuple[RunStatus, RunStatus]] = frozenset(
    {
        (Q, R), (Q, F), (Q, C), (Q, M), (Q, CL),
        (R, AD), (R, Q), (R, F), (R, C), (R, EV), (R, M), (R, CL),
        (AD, AP), (AD, RW), (AD, F), (AD, C), (AD, M), (AD, CL),
        (RW, R), (RW, Q), (RW, F), (RW, C), (RW, M), (RW, CL),
        (AP, M), (AP, CL),
        (R, PL), (PL, Q), (PL, F), (PL, C),
        (R, BU), (BU, Q), (BU, F), (BU, C), (BU, M), (BU, CL),
    }
)  # fmt: skip


def snapshot(conn: redis.Redis) -> dict[Any, Any]:
    """Every key with its type-specific content, to prove a refused write wrote nothing."""
    state: dict[Any, Any] = {}
    for key in conn.keys("*"):
        kind = conn.type(key)
        kind = kind.decode() if isinstance(kind, bytes) else kind
        if kind == "string":
            state[key] = conn.get(key)
        elif kind == "zset":
            state[key] = conn.zrange(key, 0, -1, withscores=True)
        elif kind == "stream":
            state[key] = conn.xrange(key)
        else:
            state[key] = kind
    return state


def make_run(store: RunStore, status: RunStatus = RunStatus.QUEUED, **kw: Any) -> Run:
    run = store.create(
        requester=kw.pop("requester", "U1"),
        repo=kw.pop("repo", "acme/api"),
        request=kw.pop("request", "make the retry limit configurable"),
        **kw,
    )
    for step in PATH_TO[status]:
        run = store.transition(run.id, step, by="setup")
    return run


@pytest.fixture
def store(redis_conn: redis.Redis) -> RunStore:
    return RunStore(redis_conn, retention_seconds=3600)


def test_ids_are_short_and_sequential(store: RunStore) -> None:
    first = make_run(store)
    second = make_run(store)
    assert (first.id, second.id) == (1, 2)
    assert second.label == "#2"


def test_create_then_get_round_trips(store: RunStore) -> None:
    run = make_run(store, channel="C1", thread_ts="111.222")
    got = store.get(run.id)
    assert got == run
    assert got.status is RunStatus.QUEUED
    assert [type(e) for e in store.events(run.id)] == [RunCreated]


def test_get_missing_run_raises(store: RunStore) -> None:
    with pytest.raises(RunNotFound, match="#99"):
        store.get(99)


def test_find_by_thread(store: RunStore) -> None:
    run = make_run(store, channel="C1", thread_ts="111.222")
    make_run(store, channel="C1", thread_ts="333.444")
    assert store.find_by_thread("C1", "111.222") == run
    assert store.find_by_thread("C1", "999.999") is None
    assert store.find_by_thread("C2", "111.222") is None


def test_a_thread_has_at_most_one_run(store: RunStore, redis_conn: redis.Redis) -> None:
    run = make_run(store, channel="C1", thread_ts="1.1")
    before = snapshot(redis_conn)
    with pytest.raises(ThreadAlreadyHasRun) as err:
        make_run(store, channel="C1", thread_ts="1.1")
    assert err.value.run_id == run.id
    after = snapshot(redis_conn)
    after.pop(b"agents:runs:seq", None)
    before.pop(b"agents:runs:seq", None)
    assert after == before


def test_refused_input_never_uses_up_a_run_id(store: RunStore, redis_conn: redis.Redis) -> None:
    """Input that cannot be stored, a repository name against GitHub's rules and a second
    run for a thread are refused before an id is taken."""
    first = store.create(requester="U1", repo="acme/api", request="a", channel="C", thread_ts="1")
    with pytest.raises(ValueError, match="surrogates not allowed"):
        store.create(requester="U1", repo="acme/api", request="lone \ud800 surrogate")
    with pytest.raises(InvalidRepoName):
        store.create(requester="U1", repo="acme/..", request="climb")
    with pytest.raises(ThreadAlreadyHasRun):
        store.create(requester="U1", repo="acme/api", request="b", channel="C", thread_ts="1")
    assert int(redis_conn.get(f"{store.prefix}:runs:seq") or 0) == first.id
    assert store.create(requester="U1", repo="acme/api", request="c").id == first.id + 1


@pytest.mark.parametrize(("start", "target"), ALL_PAIRS, ids=[f"{a}->{b}" for a, b in ALL_PAIRS])
def test_every_pair_of_the_transition_table(
    store: RunStore, redis_conn: redis.Redis, start: RunStatus, target: RunStatus
) -> None:
    run = make_run(store, start)
    assert run.status is start
    if (start, target) in ALLOWED:
        moved = store.transition(run.id, target, by="tester", reason="because")
        assert moved.status is target
        assert store.get(run.id).status is target
        assert moved.status_by == "tester"
        assert [r.id for r in store.list_by_status(target)] == [run.id]
        assert store.list_by_status(start) == []
        last = store.events(run.id)[-1]
        assert isinstance(last, StatusChanged)
        assert last.by == "tester"
        assert (last.previous, last.to, last.reason) == (start, target, "because")
        assert (moved.finished_at is not None) == target.is_final
    else:
        before = snapshot(redis_conn)
        with pytest.raises(InvalidTransition) as err:
            store.transition(run.id, target, by="tester")
        assert (err.value.current, err.value.target) == (start.value, target.value)
        assert snapshot(redis_conn) == before


def test_final_statuses_allow_nothing() -> None:
    assert {status for status in RunStatus if status.is_final} == {AP, F, C, EV, M, CL}
    # approved is final, yet its PR may still be merged or closed on GitHub.
    assert {start for start, _ in ALLOWED} == {Q, R, AD, RW, AP, PL, BU}
    assert {target for start, target in ALLOWED if start is AP} == {M, CL}


def test_expect_pins_the_current_status(store: RunStore) -> None:
    run = make_run(store, RunStatus.RUNNING)
    with pytest.raises(InvalidTransition):
        store.transition(run.id, RunStatus.CANCELLED, by="u", expect=RunStatus.AWAITING_DECISION)
    assert store.get(run.id).status is RunStatus.RUNNING


def test_failed_records_the_reason(store: RunStore) -> None:
    run = make_run(store, RunStatus.RUNNING)
    failed = store.transition(run.id, RunStatus.FAILED, by="rq", reason="sandbox gone")
    assert failed.error == "sandbox gone"
    assert failed.step is None


def test_runs_holding_an_approve_guard_are_indexed_with_every_write(store: RunStore) -> None:
    waiting = make_run(store, RunStatus.AWAITING_DECISION)
    other = make_run(store, RunStatus.AWAITING_DECISION)

    def take(run: Run) -> None:
        run.artifacts.approving = ApproveGuard(by="U1", iteration=run.iteration, at="now")

    def release(run: Run) -> None:
        run.artifacts.approving = None

    assert store.approving_runs() == []
    store.update(waiting.id, take)
    store.update(other.id, take)
    assert store.approving_runs() == [waiting.id, other.id]
    store.update(other.id, release)
    assert store.approving_runs() == [waiting.id]
    store.add_cost(waiting.id, Cost(input_tokens=1), by="w")  # any other write keeps it
    assert store.approving_runs() == [waiting.id]
    store.transition(waiting.id, RunStatus.APPROVED, by="U1")  # the guard stays, unheld
    assert store.approving_runs() == []

    store.update(other.id, take)
    reworked = store.transition(
        other.id, RunStatus.REWORK, by="U1", change=lambda r: setattr(r, "iteration", 2)
    )
    assert reworked.artifacts.approving is not None  # for iteration 1: not held
    assert store.approving_runs() == []


def test_lists_are_most_recent_first(store: RunStore) -> None:
    a = make_run(store, requester="U1")
    b = make_run(store, requester="U2")
    c = make_run(store, requester="U1")
    store.transition(b.id, RunStatus.RUNNING, by="w")
    assert [r.id for r in store.list_recent()] == [c.id, b.id, a.id]
    assert [r.id for r in store.list_by_requester("U1")] == [c.id, a.id]
    assert [r.id for r in store.list_by_status(RunStatus.QUEUED)] == [c.id, a.id]
    assert [r.id for r in store.list_recent(limit=1, offset=1)] == [b.id]
    assert store.count_by_status(RunStatus.RUNNING) == 1


def test_finished_runs_expire_after_retention(redis_conn: redis.Redis) -> None:
    store = RunStore(redis_conn, retention_seconds=120)
    live = make_run(store, RunStatus.RUNNING, channel="C", thread_ts="1.0")
    done = make_run(store, RunStatus.APPROVED, channel="C", thread_ts="2.0")
    assert redis_conn.ttl(f"agents:run:{live.id}") == -1
    for key in (f"agents:run:{done.id}", f"agents:run:{done.id}:events", "agents:thread:C:2.0"):
        assert 0 < redis_conn.ttl(key) <= 120
    # Once retention removes the record, lists skip it and clean their index.
    redis_conn.delete(f"agents:run:{done.id}")
    assert [r.id for r in store.list_recent()] == [live.id]
    assert redis_conn.zscore("agents:runs:recent", str(done.id)) is None


def test_update_changes_fields_but_never_status(store: RunStore) -> None:
    run = make_run(store, RunStatus.RUNNING)

    def set_branch(r: Run) -> None:
        r.artifacts.branch = "agents/1-retry"

    assert store.update(run.id, set_branch).artifacts.branch == "agents/1-retry"

    def sneaky(r: Run) -> None:
        r.status = RunStatus.APPROVED

    with pytest.raises(AgentsError, match="status"):
        store.update(run.id, sneaky)
    assert store.get(run.id).status is RunStatus.RUNNING


def test_set_step_only_while_running(store: RunStore) -> None:
    run = make_run(store)
    with pytest.raises(InvalidTransition):
        store.set_step(run.id, Step.AGENT, by="w")
    store.transition(run.id, RunStatus.RUNNING, by="w")
    assert store.set_step(run.id, Step.AGENT, by="w").step is Step.AGENT
    last = store.events(run.id)[-1]
    assert isinstance(last, StepStarted)
    assert last.step is Step.AGENT


def test_cost_accumulates(store: RunStore) -> None:
    run = make_run(store, RunStatus.RUNNING)
    store.add_cost(run.id, Cost(input_tokens=100, output_tokens=10, dollars=0.01))
    total = store.add_cost(run.id, Cost(input_tokens=50, cache_read_tokens=900, dollars=0.002))
    assert total.cost == Cost(
        input_tokens=150, output_tokens=10, cache_read_tokens=900, dollars=0.012
    )
    assert total.cost.total_tokens == 1060


def test_event_log_is_ordered_and_readable_after_an_id(store: RunStore) -> None:
    run = make_run(store)
    ids = [store.append_event(run.id, Escalated(by="agent", text=f"t{i}")) for i in range(5)]
    events = store.events(run.id)
    assert [type(e) for e in events] == [RunCreated] + [Escalated] * 5
    assert all(a.at <= b.at for a, b in itertools.pairwise(events))
    after = store.events(run.id, after=ids[2])
    assert [e.line for e in after] == ["t3", "t4"]
    assert [e.line for e in store.tail_events(run.id, 2)] == ["t3", "t4"]


def test_events_for_a_missing_run_are_refused(store: RunStore) -> None:
    with pytest.raises(RunNotFound):
        store.append_event(7, Escalated(by="x", text="nobody reads this"))


def _race(target_for: list[RunStatus], run_id: int) -> list[tuple[int, RunStatus]]:
    """Each thread, on its own connection, tries its transition at the same moment."""
    from tests.conftest import TEST_REDIS_URL

    barrier = threading.Barrier(len(target_for))
    winners: list[tuple[int, RunStatus]] = []
    errors: list[BaseException] = []

    def attempt(index: int, target: RunStatus) -> None:
        conn = redis.Redis.from_url(TEST_REDIS_URL)
        try:
            mine = RunStore(conn)
            barrier.wait()
            mine.transition(run_id, target, by=f"actor-{index}")
            winners.append((index, target))
        except InvalidTransition:
            pass
        except BaseException as exc:
            errors.append(exc)
        finally:
            conn.close()

    threads = [threading.Thread(target=attempt, args=(i, t)) for i, t in enumerate(target_for)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    return winners


@pytest.mark.redis
def test_twenty_threads_race_on_one_transition(real_redis_conn: redis.Redis) -> None:
    store = RunStore(real_redis_conn)
    run = make_run(store)
    winners = _race([RunStatus.RUNNING] * 20, run.id)
    assert len(winners) == 1
    stored = store.get(run.id)
    assert stored.status is RunStatus.RUNNING
    assert stored.status_by == f"actor-{winners[0][0]}"
    status_events = [e for e in store.events(run.id) if isinstance(e, StatusChanged)]
    assert len(status_events) == 1


@pytest.mark.redis
def test_approve_and_cancel_race_has_one_winner(real_redis_conn: redis.Redis) -> None:
    store = RunStore(real_redis_conn)
    run = make_run(store, RunStatus.AWAITING_DECISION)
    winners = _race([RunStatus.APPROVED, RunStatus.CANCELLED] * 10, run.id)
    assert len(winners) == 1
    assert store.get(run.id).status is winners[0][1]
    assert (
        store.count_by_status(RunStatus.APPROVED) + store.count_by_status(RunStatus.CANCELLED) == 1
    )
