"""Odd slash-command arguments and repository names, through the real surface (signed
HTTP to the bolt app, the emulator as Slack, real Redis): every one gets an answer, and
no name that breaks GitHub's rules makes a run, with or without an allow-list. The rows
join the bad-input figure."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from tests.bot.conftest import ALICE, GENERAL, Harness, open_harness
from tests.reliability.figures import Table
from tests.reliability.surface import bot_replies, ephemeral_texts, runs_created

pytestmark = pytest.mark.redis

TABLE = Table(
    "bad-input",
    "Bad input: what the user sees",
    ["input", "where the user sees it", "exact message"],
    order=70,
    part="slack",
)
record_table = TABLE.fixture()


@pytest.fixture
def listed(real_redis_conn: redis.Redis) -> Iterator[Harness]:
    with open_harness(real_redis_conn, allowed_repos=["acme/*"]) as h:
        yield h


@pytest.fixture
def unlisted(real_redis_conn: redis.Redis) -> Iterator[Harness]:
    with open_harness(real_redis_conn, allowed_repos=[]) as h:
        yield h


def test_run_ids_no_int_accepts_get_an_answer(listed: Harness) -> None:
    h = listed
    words = ["²", "٣", "\uff19", "#" + "9" * 40, "1.5", "-3"]
    for word in words:
        h.emu.slash(ALICE, GENERAL, "/agents", f"cancel {word}")
    h.settle()
    told = ephemeral_texts(h, ALICE)
    assert len(told) == len(words), told
    for word, answer in zip(words, told, strict=True):
        assert answer.startswith(f"`{word[:40]}` is not a run id; try `/agents cancel 42`."), answer
    row_words = {"²": "a superscript two", "\uff19": "a full-width nine"}
    for word, answer in zip(words, told, strict=True):
        if word in row_words:
            TABLE.add(f"`/agents cancel {word}` ({row_words[word]})", "ephemeral", answer)


@pytest.mark.parametrize(
    ("fixture", "name", "allow"),
    [
        ("listed", "acme/..", "allow-list `acme/*`"),
        ("listed", "acme/.", "allow-list `acme/*`"),
        ("unlisted", "../etc", "no allow-list"),
        ("unlisted", "-acme/api", "no allow-list"),
    ],
)
def test_repository_names_outside_githubs_rules_make_no_run(
    fixture: str, name: str, allow: str, request: pytest.FixtureRequest
) -> None:
    h: Harness = request.getfixturevalue(fixture)
    ts, delivery = h.emu.mention(ALICE, GENERAL, f"in {name}: fix it")
    assert delivery.status == 200
    h.settle()
    assert runs_created(h) == 0
    (answer,) = bot_replies(h, GENERAL, ts)
    told = str(answer["text"])
    assert told.startswith(f"`{name}` doesn't look like a repository name (")
    TABLE.add(f"repository `{name}` ({allow})", "thread reply", told)


@pytest.mark.parametrize("name", ["acme/..", "acme/.", "-acme/api"])
def test_a_channel_default_outside_githubs_rules_is_refused(listed: Harness, name: str) -> None:
    """``/agents repo acme/..``: the allow-list glob ``acme/*`` matches it, so only the
    name's rules keep it from becoming the channel's default."""
    h = listed
    h.emu.slash(ALICE, GENERAL, "/agents", f"repo {name}")
    h.settle()
    (told,) = ephemeral_texts(h, ALICE)
    assert told.startswith(f"`{name}` doesn't look like a repository name"), told
    assert h.services.channel_repos.get(GENERAL) == "acme/api"  # the operator's, unchanged
    if name == "acme/..":
        TABLE.add(f"`/agents repo {name}` (allow-list `acme/*`)", "ephemeral", told)
