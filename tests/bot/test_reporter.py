"""The reporter: the thread as a projection of the run log, against the emulator."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from bot.reporter import Reporter, claim_status_message
from bot.slack_client import web_client
from runs.events import AgentTurn, ApproveFailed, ChecksRan, PullRequestOpened
from runs.record import Run, RunStatus, Step
from tests.bot.conftest import ALICE, GENERAL, Harness, drain
from tests.reliability.harness import record_fault

pytestmark = pytest.mark.redis


def start_run(h: Harness) -> tuple[str, Run]:
    ts, _ = h.emu.mention(ALICE, GENERAL, "in acme/api: make the retry limit configurable")
    h.settle()
    # Posted by the mention's request, or by a reporter drawing the run at that moment.
    run = h.wait(
        lambda: (r := h.services.store.find_by_thread(GENERAL, ts)) and r.status_ts and r,
        "the run's status message",
    )
    return ts, run


def tool(turn: int) -> AgentTurn:
    return AgentTurn(by="agent", turn=turn, text=f"turn {turn}")


def replies(h: Harness, ts: str) -> list[str]:
    return [m["text"] for m in h.emu.thread(GENERAL, ts)[2:]]


def to_awaiting_with_pr(h: Harness, run: Run) -> None:
    store = h.services.store
    store.transition(run.id, RunStatus.RUNNING, by="worker")
    store.set_step(run.id, Step.AGENT, by="worker")
    store.append_event(run.id, tool(1))
    store.append_event(
        run.id,
        ChecksRan(by="worker", passed=False, fix_round=1, last_round=2, text="1 failed"),
    )

    def with_pr(r: Run) -> None:
        r.artifacts.pr_url = "https://github.com/acme/api/pull/7"
        r.artifacts.completed_steps = [Step.PREPARE, Step.AGENT, Step.CHECKS, Step.PUBLISH]

    store.update(run.id, with_pr)
    store.append_event(
        run.id,
        PullRequestOpened(
            by="worker",
            url="https://github.com/acme/api/pull/7",
            number=7,
            branch="agents/7-retries",
            head_sha="0" * 40,
            draft=True,
        ),
    )
    store.transition(run.id, RunStatus.AWAITING_DECISION, by="worker")


def test_milestones_reactions_and_the_status_message(harness: Harness) -> None:
    h = harness
    reporter = Reporter(h.services.store, h.client, min_interval=0.05)
    reporter.ensure_group()
    ts, run = start_run(h)
    to_awaiting_with_pr(h, run)
    drain(reporter)
    texts = replies(h, ts)
    assert texts[0] == ":wrench: Checks failed (1 failed); fixing, attempt 1 of 2."
    assert texts[1].startswith(":rocket: Pull request opened: <https://github.com/acme/api/pull/7|")
    assert "is ready for review" in texts[2]
    final = h.emu.thread(GENERAL, ts)[-1]
    actions = [b for b in final["blocks"] if b["type"] == "actions"]
    assert [e["action_id"] for e in actions[0]["elements"]] == [
        "agents_approve",
        "agents_rework",
        "agents_cancel",
    ]
    assert h.emu.reactions(GENERAL, ts) == {"white_check_mark": [h.emu.bot_user_id]}
    status = h.emu.message(GENERAL, run.status_ts or "")
    assert status is not None
    assert "awaiting your decision" in status["text"] or "awaiting" in str(status["blocks"])
    assert "pull/7" in str(status["blocks"])
    # Drawing again posts nothing new: milestones are posted once.
    h.services.store.append_event(run.id, tool(2))
    drain(reporter)
    assert len(replies(h, ts)) == 3


def test_a_failed_run_gets_its_reason_and_a_cross(harness: Harness) -> None:
    h = harness
    reporter = Reporter(h.services.store, h.client, min_interval=0.05)
    reporter.ensure_group()
    ts, run = start_run(h)
    h.services.store.transition(run.id, RunStatus.FAILED, by="worker", reason="<!channel> boom")
    drain(reporter)
    assert replies(h, ts) == [":x: #1 failed: &lt;!channel&gt; boom"]
    assert h.emu.reactions(GENERAL, ts) == {"x": [h.emu.bot_user_id]}


@pytest.fixture
def running_reporter(harness: Harness) -> Iterator[Reporter]:
    reporter = Reporter(harness.services.store, harness.client, min_interval=1.0)
    reporter.ensure_group()
    stop = threading.Event()
    thread = threading.Thread(target=reporter.run_forever, args=(stop,))
    thread.start()
    yield reporter
    stop.set()
    thread.join(timeout=30)


def updates(h: Harness, ts: str) -> list[Any]:
    return [
        c for c in h.emu.calls("chat.update") if c.args.get("ts") == ts and c.ok and not c.injected
    ]


@pytest.mark.slow
def test_updates_are_coalesced_to_about_one_per_second(
    harness: Harness, running_reporter: Reporter
) -> None:
    h = harness
    _, run = start_run(h)
    h.services.store.transition(run.id, RunStatus.RUNNING, by="worker")
    for turn in range(1, 41):
        h.services.store.append_event(run.id, tool(turn))
        time.sleep(0.05)
    status_ts = run.status_ts or ""
    h.wait(
        lambda: any("turn 40" in str(c.args.get("blocks")) for c in updates(h, status_ts)),
        "the last turn to be drawn",
    )
    made = updates(h, status_ts)
    assert 2 <= len(made) < 40
    gaps = [b.at - a.at for a, b in itertools.pairwise(made)]
    assert min(gaps) >= 0.9


@pytest.mark.slow
def test_429_500_and_dropped_connections_still_land(
    harness: Harness, running_reporter: Reporter
) -> None:
    h = harness
    ts, run = start_run(h)
    h.emu.fail_next("chat.update", status=429, retry_after=1, count=2)
    h.emu.fail_next("chat.postMessage", status=500, count=1)
    h.emu.fail_next("chat.postMessage", drop=True, count=1)
    h.services.store.transition(run.id, RunStatus.RUNNING, by="worker")
    h.services.store.append_event(run.id, tool(9))
    h.services.store.transition(run.id, RunStatus.FAILED, by="worker", reason="out of budget")
    h.wait(lambda: any("out of budget" in t for t in replies(h, ts)), "the failure reply")
    h.wait(
        lambda: any("failed" in str(c.args.get("blocks")) for c in updates(h, run.status_ts or "")),
        "the final status update",
    )
    injected = [c for c in h.emu.calls() if c.injected]
    assert {c.status for c in injected} >= {429, 500}
    assert replies(h, ts).count(":x: #1 failed: out of budget") == 1
    record_fault(
        "Slack 429 (Retry-After) / 500 / dropped connection",
        "Slack emulator: two 429s on chat.update, a 500 and a dropped connection on "
        "chat.postMessage, while the reporter draws a run to its failure",
        1,
        "every update landed, the failure reply once; the reporter kept running",
        rank=5,
    )


def test_two_replicas_never_post_the_same_milestone(harness: Harness) -> None:
    h = harness
    first = Reporter(h.services.store, h.client, consumer="a", min_interval=0.05)
    second = Reporter(h.services.store, h.client, consumer="b", min_interval=0.05)
    first.ensure_group()
    second.ensure_group()
    ts, run = start_run(h)
    to_awaiting_with_pr(h, run)
    # Both replicas think the run is dirty and race to draw it.
    first.dirty.add(run.id)
    second.dirty.add(run.id)
    threads = [threading.Thread(target=drain, args=(r,)) for r in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    texts = replies(h, ts)
    assert len(texts) == 3
    assert len(set(texts)) == 3


def test_a_failed_approval_is_told_in_the_thread(harness: Harness) -> None:
    h = harness
    reporter = Reporter(h.services.store, h.client, min_interval=0.05)
    reporter.ensure_group()
    ts, run = start_run(h)
    h.services.store.append_event(
        run.id,
        ApproveFailed(by=ALICE, text="merge refused: <conflict>"),
    )
    drain(reporter)
    assert replies(h, ts) == [":warning: merge refused: &lt;conflict&gt;"]


def test_entries_a_dead_replica_read_but_never_drew_are_drawn_by_another(
    harness: Harness,
) -> None:
    """Feed entries are acknowledged only once drawn: a replica that read them and died
    (its draw failed first) leaves them pending, and a live replica claims them."""
    h = harness
    store = h.services.store
    no_retries = web_client(h.emu.bot_token, h.emu.api_url, max_retries=0)
    dead = Reporter(store, no_retries, consumer="dead", min_interval=0.05)
    dead.ensure_group()
    ts, run = start_run(h)
    store.transition(run.id, RunStatus.FAILED, by="worker", reason="boom")
    h.emu.fail_next("chat.postMessage", status=500)
    dead.poll(block_ms=200)
    assert dead.dirty == {run.id}  # read, not drawn; then this replica dies
    assert replies(h, ts) == []

    live = Reporter(store, h.client, consumer="live", min_interval=0.05, claim_idle_ms=0)
    drain(live)
    assert replies(h, ts) == [":x: #1 failed: boom"]
    pending: Any = store.redis.xpending(store.feed_key, "reporter")
    assert pending["pending"] == 0
    record_fault(
        "bot dies between reading and drawing",
        "a reporter reads the feed, its draw gets a Slack 500, and it is dropped",
        1,
        "the entries stayed pending; another replica claimed and drew them",
        rank=6,
    )


def test_the_lock_is_kept_while_slack_makes_a_draw_wait(harness: Harness) -> None:
    """Two 429s with Retry-After: 1 keep one draw busy for over 2 s, far past a 300 ms
    lock, and the emulator then holds its third attempt until the checks are done: the
    lock is renewed, so no other replica draws (and posts) meanwhile."""
    h = harness
    store = h.services.store
    slow = Reporter(store, h.client, consumer="slow", min_interval=0.05, lock_ms=300)
    slow.ensure_group()
    ts, run = start_run(h)
    store.transition(run.id, RunStatus.FAILED, by="worker", reason="boom")
    h.emu.fail_next("chat.postMessage", status=429, retry_after=1, count=2)
    held = h.emu.api.hold_next("chat.postMessage", timeout=60)
    drawing = threading.Thread(target=drain, args=(slow,))
    drawing.start()
    try:
        h.wait(held.arrived.is_set, "the attempt after the two 429s")
        # Two Retry-After sleeps into the draw, over six lock lifetimes, and the draw
        # can't end before the release: the lock must still be held.
        assert store.redis.get(f"{store.prefix}:reporter:lock:{run.id}") is not None
        other = Reporter(store, h.client, consumer="other", min_interval=0.05)
        store.redis.delete(f"{store.prefix}:reporter:rate:{run.id}")
        assert other.draw(run.id) is False
    finally:
        held.release()
        drawing.join(timeout=60)
    assert replies(h, ts) == [":x: #1 failed: boom"]
    record_fault(
        "Slack 429s longer than the reporter's lock",
        "two 429 with Retry-After: 1 while the per-run lock lives 300 ms",
        1,
        "the lock was renewed; a second replica could not draw; the reply posted once",
        rank=7,
    )


def test_a_run_whose_first_status_message_failed_is_drawn_by_the_reporter(
    harness: Harness,
) -> None:
    h = harness
    store = h.services.store
    h.emu.fail_next("chat.postMessage", error="fatal_error")  # the bot's status message
    ts, _ = h.emu.mention(ALICE, GENERAL, "in acme/api: make the retry limit configurable")
    h.settle()
    run = store.find_by_thread(GENERAL, ts)
    assert run is not None
    assert run.status_ts is None
    reporter = Reporter(store, h.client, min_interval=0.05)
    reporter.ensure_group()
    reporter.dirty.add(run.id)
    drain(reporter)
    drawn = store.get(run.id)
    assert drawn.status_ts is not None
    status = h.emu.message(GENERAL, drawn.status_ts)
    assert status is not None
    assert status.get("thread_ts") == ts
    assert "#1" in str(status["blocks"])
    record_fault(
        "first status message fails",
        "the bot's chat.postMessage for the status message answers an error",
        1,
        "the reporter posted the status message itself and drew the run",
        rank=8,
    )


def status_messages(h: Harness, ts: str) -> list[dict[str, Any]]:
    """The bot's messages in the thread that show a run's status (not milestones)."""
    return [m for m in h.emu.thread(GENERAL, ts)[1:] if "#1" in str(m.get("blocks"))]


def assert_one_status_message_drawn(h: Harness, reporter: Reporter, ts: str, kept: str) -> None:
    store = h.services.store
    run = store.find_by_thread(GENERAL, ts)
    assert run is not None
    assert run.status_ts == kept
    assert [m["ts"] for m in status_messages(h, ts)] == [kept]
    # The survivor is the one being drawn.
    store.transition(run.id, RunStatus.RUNNING, by="worker")
    store.append_event(run.id, tool(3))
    drain(reporter)
    status = h.emu.message(GENERAL, kept)
    assert status is not None
    assert "turn 3" in str(status["blocks"])
    assert [m["ts"] for m in status_messages(h, ts)] == [kept]


def test_a_draw_while_the_status_message_is_posted_leaves_one_status_message(
    harness: Harness,
) -> None:
    """The mention asks the reporter for the status message and Slack holds that post;
    a draw of the same run meanwhile finds the run's lock taken and waits, then draws
    the message that was posted: the reporter is the one writer, so one message."""
    h = harness
    reporter = Reporter(h.services.store, h.client, min_interval=0.05)
    reporter.ensure_group()
    post = h.emu.api.hold_next("chat.postMessage", timeout=60)
    ts, _ = h.emu.mention(ALICE, GENERAL, "in acme/api: make the retry limit configurable")
    h.wait(post.arrived.is_set, "the status message to reach Slack")
    run = h.services.store.find_by_thread(GENERAL, ts)
    assert run is not None
    assert reporter.draw(run.id) is False  # the post holds the run's lock: not now
    post.release()
    h.settle()
    run = h.services.store.find_by_thread(GENERAL, ts)
    assert run is not None
    assert run.status_ts is not None
    drain(reporter)
    assert [c for c in h.emu.calls("chat.delete") if c.ok] == []
    assert_one_status_message_drawn(h, reporter, ts, run.status_ts)


def test_a_second_status_message_is_deleted_by_the_claim(harness: Harness) -> None:
    """The safety net behind the lock: a status message posted for a run that already
    has one (a lock lost to a stalled process) is deleted, and the first one kept."""
    h = harness
    ts, run = start_run(h)
    assert run.status_ts is not None
    extra = h.client.chat_postMessage(channel=GENERAL, thread_ts=ts, text="a second #1")
    kept = claim_status_message(h.services.store, h.client, run.id, GENERAL, str(extra["ts"]))
    assert kept.status_ts == run.status_ts
    assert [c.args["ts"] for c in h.emu.calls("chat.delete") if c.ok] == [extra["ts"]]


def pending(h: Harness) -> int:
    store = h.services.store
    info: Any = store.redis.xpending(store.feed_key, "reporter")
    return int(info["pending"])


def calls_about(h: Harness, run: Run, since: int) -> list[Any]:
    """Slack calls made after the ``since``-th one that touch ``run``'s thread."""
    mine = {run.thread_ts, run.status_ts, run.message_ts}
    return [
        c
        for c in h.emu.calls()[since:]
        if mine & {c.args.get("thread_ts"), c.args.get("ts"), c.args.get("timestamp")}
    ]


def test_a_deleted_status_message_is_no_longer_updated(harness: Harness) -> None:
    h = harness
    reporter = Reporter(h.services.store, h.client, min_interval=0.05)
    reporter.ensure_group()
    ts, run = start_run(h)
    drain(reporter)
    status_ts = run.status_ts or ""
    h.client.chat_delete(channel=GENERAL, ts=status_ts)  # someone removed it
    store = h.services.store
    store.transition(run.id, RunStatus.RUNNING, by="worker")
    store.append_event(run.id, tool(1))
    drain(reporter)
    tried = [c for c in h.emu.calls("chat.update") if c.args.get("ts") == status_ts]
    assert [c.error for c in tried[-1:]] == ["message_not_found"]
    assert pending(h) == 0
    # Later entries still bring milestones, but no more updates of the missing message.
    store.append_event(run.id, tool(2))
    store.transition(run.id, RunStatus.FAILED, by="worker", reason="boom")
    drain(reporter)
    # (The thread holds no status message any more: the reply comes right after the ask.)
    assert [m["text"] for m in h.emu.thread(GENERAL, ts)[1:]] == [":x: #1 failed: boom"]
    again = [c for c in h.emu.calls("chat.update") if c.args.get("ts") == status_ts]
    assert len(again) == len(tried)
    assert pending(h) == 0


def test_a_thread_slack_refuses_for_good_is_given_up_and_others_still_drawn(
    harness: Harness,
) -> None:
    h = harness
    store = h.services.store
    reporter = Reporter(store, h.client, min_interval=0.05)
    reporter.ensure_group()
    _, lost = start_run(h)
    other_ts, other = start_run(h)
    drain(reporter)
    h.emu.fail_next("chat.postMessage", error="is_archived")  # the channel was archived
    store.transition(lost.id, RunStatus.RUNNING, by="worker")
    store.append_event(lost.id, ChecksRan(by="worker", passed=False, text=""))
    drain(reporter)
    archived = [c for c in h.emu.calls("chat.postMessage") if c.error == "is_archived"]
    assert len(archived) == 1
    assert pending(h) == 0
    since = len(h.emu.calls())
    for turn in range(1, 6):
        store.append_event(lost.id, tool(turn))
        drain(reporter)
    store.transition(lost.id, RunStatus.FAILED, by="worker", reason="boom")
    store.transition(other.id, RunStatus.FAILED, by="worker", reason="other boom")
    drain(reporter)
    assert calls_about(h, lost, since) == []
    assert replies(h, other_ts) == [f":x: {other.label} failed: other boom"]
    assert pending(h) == 0


def test_a_run_slack_keeps_failing_is_given_up_after_a_few_draws(harness: Harness) -> None:
    h = harness
    store = h.services.store
    no_retries = web_client(h.emu.bot_token, h.emu.api_url, max_retries=0)
    reporter = Reporter(store, no_retries, min_interval=0.05, claim_idle_ms=0, max_failed_draws=3)
    reporter.ensure_group()
    _, run = start_run(h)
    h.emu.fail_next("chat.update", status=500, count=100)
    store.transition(run.id, RunStatus.RUNNING, by="worker")
    for _ in range(200):
        reporter.poll(block_ms=200)
        if reporter.failures.get(run.id) == 2:
            break
    # Every poll re-claimed this consumer's own pending entries: each is held once.
    entries: Any = store.redis.xpending_range(store.feed_key, "reporter", "-", "+", 100)
    assert sorted(reporter.unacked[run.id]) == sorted(e["message_id"] for e in entries)
    assert len(entries) == 2
    drain(reporter)
    failed = [c for c in h.emu.calls("chat.update") if c.injected]
    assert len(failed) == 3
    for _ in range(3):
        reporter.poll(block_ms=50)
    assert len([c for c in h.emu.calls("chat.update") if c.injected]) == 3
    assert pending(h) == 0


def test_the_reporter_is_the_one_writer_of_a_runs_thread() -> None:
    """No listener draws a run (``run_message``) or edits a message (``chat_update``):
    they record and ask; the reporter writes."""
    import ast
    from pathlib import Path

    import bot.listeners

    offenders = []
    for path in Path(bot.listeners.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            name = getattr(node, "attr", None) or getattr(node, "id", None)
            if name in ("run_message", "chat_update", "claim_status_message"):
                offenders.append(f"{path.name}: {name}")
    assert offenders == []
