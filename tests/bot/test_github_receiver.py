"""The webhook receiver's checks, in order, on real Redis: size, signature (before any
parsing), delivery id, JSON, event, repository; and what each answers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rq import Queue

from bot.github_webhooks import MAX_BODY, GitHubWebhooks, signature_of
from jobs import ci_events
from jobs.github_events import mentioned
from runs.store import RunStore
from tests.conftest import real_redis

SECRET = "s3cret"


@pytest.fixture
def conn() -> Iterator[redis.Redis]:
    client = real_redis()
    yield client
    client.flushdb()
    client.close()


def receiver(conn: redis.Redis) -> GitHubWebhooks:
    return GitHubWebhooks(
        conn, RunStore(conn), secret=SECRET, queue="hooks", allowed_repos=["acme/*"]
    )


def headers(body: bytes, delivery: str = "d-1", event: str = "issue_comment") -> dict[str, str]:
    return {
        "x-hub-signature-256": signature_of(SECRET.encode(), body),
        "x-github-delivery": delivery,
        "x-github-event": event,
    }


def body_for(repo: str = "acme/api") -> bytes:
    return json.dumps({"action": "created", "repository": {"full_name": repo}}).encode()


def queued(conn: redis.Redis) -> list[str]:
    return [str(j) for j in Queue("hooks", connection=conn).get_job_ids()]


@pytest.mark.redis
def test_each_check_answers_and_only_a_good_delivery_is_queued(conn: redis.Redis) -> None:
    hooks = receiver(conn)
    body = body_for()
    unsigned = {k: v for k, v in headers(body).items() if k != "x-hub-signature-256"}
    assert hooks.receive(unsigned, body).status == 401
    wrong = {**headers(body), "x-hub-signature-256": signature_of(b"other", body)}
    assert hooks.receive(wrong, body).status == 401
    # A signature over other bytes: the body is never parsed, so not even malformed JSON
    # is noticed before the signature is.
    assert hooks.receive(headers(b"{}"), b"not json").status == 401
    assert hooks.receive(headers(b"x" * (MAX_BODY + 1)), b"x" * (MAX_BODY + 1)).status == 413
    assert hooks.receive({**headers(body), "x-github-delivery": "../etc"}, body).status == 400
    assert hooks.receive(headers(b"{", "d-json"), b"{").status == 400
    assert hooks.receive(headers(b"{}", "d-ping", "ping"), b"{}").text == "pong\n"
    assert queued(conn) == []

    assert hooks.receive(headers(body), body).status == 202
    assert queued(conn) == ["agents-github-d-1"]
    again = hooks.receive(headers(body), body)
    assert (again.status, again.text) == (200, "already received; nothing to do\n")
    assert queued(conn) == ["agents-github-d-1"]

    other = body_for("evil/app")
    outside = hooks.receive(headers(other, "d-2"), other)
    assert outside.status == 202
    assert "not on AGENTS_ALLOWED_REPOS" in outside.text
    ignored_event = hooks.receive(headers(body, "d-3", "fork"), body)
    assert "does not act on 'fork' events" in ignored_event.text
    assert queued(conn) == ["agents-github-d-1"]
    recorded = [json.loads(x) for x in conn.lrange("agents:github:ignored", 0, -1)]
    assert [r["delivery"] for r in recorded] == ["d-3", "d-2"]


@pytest.mark.redis
@settings(
    max_examples=60,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    body=st.binary(max_size=300),
    signature=st.text(max_size=80),
    delivery=st.text(max_size=40),
    event=st.sampled_from(["issue_comment", "pull_request", "ping", "x", ""]),
)
def test_forged_deliveries_never_queue_and_never_crash(
    conn: redis.Redis, body: bytes, signature: str, delivery: str, event: str
) -> None:
    answer = receiver(conn).receive(
        {"x-hub-signature-256": signature, "x-github-delivery": delivery, "x-github-event": event},
        body,
    )
    assert answer.status == 401
    assert queued(conn) == []


@settings(max_examples=200, derandomize=True, database=None)
@given(st.text(max_size=200))
def test_mentioned_is_total_and_removes_the_mention(text: str) -> None:
    said = mentioned(text, "@agents")
    if said is not None:
        assert "@agents" not in said.lower().replace("@agents-", "").replace("@agents_", "")


@settings(max_examples=100, derandomize=True, database=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=20),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner),
        max_leaves=10,
    ),
    st.sampled_from(["check_suite", "check_run", "status"]),
)
def test_completed_sha_takes_any_payload(payload: Any, event: str) -> None:
    sha = ci_events.completed_sha(event, payload if isinstance(payload, dict) else {})
    assert sha is None or isinstance(sha, str)


@pytest.mark.redis
def test_a_ci_webhook_wakes_the_watch_of_its_commit(conn: redis.Redis) -> None:
    store = RunStore(conn)
    wait = ci_events.waiter(conn, store.prefix, "acme/api", "abc")
    assert not ci_events.webhooks_seen(conn, store.prefix, "acme/api")
    said = ci_events.note_ci_event(
        store,
        "acme/api",
        "check_suite",
        {"action": "completed", "check_suite": {"head_sha": "abc"}},
    )
    assert said == "check_suite completed on acme/api@abc: its CI watch is woken"
    assert ci_events.webhooks_seen(conn, store.prefix, "acme/api")
    # An hour-long wait returns at once: the note is there (and is taken).
    wait(3600)
    assert not conn.exists(ci_events.note_key(store.prefix, "acme/api", "abc"))
    pending = ci_events.note_ci_event(
        store, "acme/api", "check_run", {"action": "created", "check_run": {"head_sha": "abc"}}
    )
    assert pending == "check_run on acme/api: not completed yet"
