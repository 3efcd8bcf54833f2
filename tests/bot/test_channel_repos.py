"""Channel default repositories and the repository picker, through the real bolt app over
signed HTTP, the Slack emulator as Slack, on real Redis."""

from __future__ import annotations

import time
from typing import Any

import fakeredis
import pytest

from bot.channel_repos import ChannelRepos, PendingAsk, PendingAsks
from bot.repo_picker import ACTION_PICK_REPO, repo_options, token_of
from bot.requests import NoRepo, Refusal, parse
from process.settings import BotSettings
from tests.bot.conftest import ALICE, BOB, GENERAL, Harness, post_raw
from tests.bot.test_surface import runs_created

RANDOM = "C_RANDOM"


def ephemeral_texts(h: Harness, user: str) -> list[str]:
    return [str(e["text"]) for e in h.emu.ephemerals(user)]


def picker(h: Harness, channel: str, root_ts: str) -> dict[str, Any]:
    (message,) = [
        m
        for m in h.emu.thread(channel, root_ts)
        if m["ts"] != root_ts and m.get("bot_id") and "Which repository" in str(m["text"])
    ]
    return message


@pytest.mark.redis
@pytest.mark.parametrize("harness", [{"allowed_repos": ["acme/*", "tools/cli"]}], indirect=True)
def test_repo_round_trip_and_a_mention_without_a_repository_uses_it(harness: Harness) -> None:
    h = harness
    h.emu.add_channel(RANDOM, "random")
    h.emu.slash(ALICE, RANDOM, "/agents", "repo")
    h.emu.slash(ALICE, RANDOM, "/agents", "repo evil/app")
    h.emu.slash(ALICE, RANDOM, "/agents", "repo not-a-repo")
    h.emu.slash(ALICE, RANDOM, "/agents", "repo acme/web")
    h.emu.slash(BOB, RANDOM, "/agents", "repo")
    h.settle()
    none, outside, malformed, set_it = ephemeral_texts(h, ALICE)
    assert none.startswith("This channel has no default repository")
    assert "`evil/app` is not on this bot's allow-list" in outside
    assert "doesn't look like a repository name" in malformed
    assert set_it.startswith("This channel's default repository is now `acme/web`")
    (shown,) = ephemeral_texts(h, BOB)
    assert shown == f"This channel's default repository is `acme/web` (set by <@{ALICE}>)."

    ts, _ = h.emu.mention(BOB, RANDOM, "make the retry limit configurable")
    h.settle()
    run = h.services.store.find_by_thread(RANDOM, ts)
    assert run is not None
    assert (run.repo, run.request, run.requester) == (
        "acme/web",
        "make the retry limit configurable",
        BOB,
    )
    # A channel's own default wins over the operator's; clearing it brings that back.
    h.emu.slash(ALICE, GENERAL, "/agents", "repo")
    h.emu.slash(ALICE, GENERAL, "/agents", "repo tools/cli")
    h.emu.slash(ALICE, GENERAL, "/agents", "repo clear")
    h.settle()
    operator, ours, cleared = ephemeral_texts(h, ALICE)[4:]
    assert operator == (
        "This channel's default repository is `acme/api` (from AGENTS_CHANNEL_REPOS)."
    )
    assert "now `tools/cli`" in ours
    assert cleared == (
        "Cleared this channel's default repository. The operator's default, `acme/api` "
        "(AGENTS_CHANNEL_REPOS), applies."
    )


@pytest.mark.redis
@pytest.mark.parametrize(
    "harness", [{"allowed_repos": ["acme/*", "tools/cli"], "channel_repos": {}}], indirect=True
)
def test_no_default_asks_with_a_picker_filtered_by_the_allow_list(harness: Harness) -> None:
    h = harness
    h.emu.add_channel(RANDOM, "random")
    ts, _ = h.emu.mention(ALICE, RANDOM, "fix the flaky test")
    h.settle()
    assert runs_created(h) == 0
    message = picker(h, RANDOM, ts)
    assert "fix the flaky test" in message["text"]

    offered = h.emu.suggest(ALICE, RANDOM, message["ts"], ACTION_PICK_REPO)
    assert [o["value"] for o in offered] == ["tools/cli"]  # owner/* can't be listed
    typed = h.emu.suggest(ALICE, RANDOM, message["ts"], ACTION_PICK_REPO, "acme/api")
    assert [o["value"] for o in typed] == ["acme/api"]
    assert h.emu.suggest(ALICE, RANDOM, message["ts"], ACTION_PICK_REPO, "evil/app") == []

    # Someone else's pick changes nothing.
    h.emu.select_option(BOB, RANDOM, message["ts"], ACTION_PICK_REPO, typed[0])
    h.settle()
    assert runs_created(h) == 0
    assert ephemeral_texts(h, BOB) == [
        f"Only <@{ALICE}> (who asked) can pick the repository for this request. "
        "Nothing was changed."
    ]
    # A forged pick outside the allow-list is refused too, and the request still waits.
    forged = {"text": {"type": "plain_text", "text": "evil/app"}, "value": "evil/app"}
    h.emu.select_option(ALICE, RANDOM, message["ts"], ACTION_PICK_REPO, forged)
    h.settle()
    assert runs_created(h) == 0
    assert "`evil/app` is not on this bot's allow-list" in ephemeral_texts(h, ALICE)[-1]

    picked = h.emu.select_option(ALICE, RANDOM, message["ts"], ACTION_PICK_REPO, typed[0])
    h.settle()
    # The same pick delivered again (a retry, or a second client): still one run.
    again = post_raw(
        picked.url,
        picked.body,
        "application/x-www-form-urlencoded",
        secret=h.emu.signing_secret,
        timestamp=int(time.time()),
    )
    assert again == 200
    h.settle()
    assert runs_created(h) == 1
    run = h.services.store.find_by_thread(RANDOM, ts)
    assert run is not None
    assert (run.repo, run.request, run.requester) == ("acme/api", "fix the flaky test", ALICE)
    assert h.emu.reactions(RANDOM, ts) == {"eyes": [h.emu.bot_user_id]}
    replies = [m for m in h.emu.thread(RANDOM, ts) if m["ts"] != ts and m.get("bot_id")]
    assert replies[0]["ts"] == message["ts"]  # the picker, then what was picked
    assert replies[1]["text"] == f"<@{ALICE}> picked `acme/api`."
    assert any(m["ts"] == run.status_ts for m in replies)
    assert ephemeral_texts(h, ALICE)[-1].startswith("That request was already started")
    assert h.emu.warnings == []


def test_a_plan_asked_without_a_repository_still_plans_once_one_is_picked(
    harness: Harness,
) -> None:
    h = harness
    h.emu.add_channel(RANDOM, "random")
    ts, _ = h.emu.mention(ALICE, RANDOM, "plan: fix the flaky test")
    h.settle()
    message = picker(h, RANDOM, ts)
    (typed,) = h.emu.suggest(ALICE, RANDOM, message["ts"], ACTION_PICK_REPO, "acme/api")
    h.emu.select_option(ALICE, RANDOM, message["ts"], ACTION_PICK_REPO, typed)
    h.settle()
    run = h.services.store.find_by_thread(RANDOM, ts)
    assert run is not None
    assert (run.repo, run.request, run.plan_asked) == ("acme/api", "fix the flaky test", True)


def settings(**overrides: Any) -> BotSettings:
    values: dict[str, Any] = {"slack_bot_token": "xoxb-1", "slack_app_token": "xapp-1"}
    values.update(overrides)
    return BotSettings(_env_file=None, **values)  # type: ignore[call-arg]


def test_parse_uses_the_channel_default_then_the_settings_then_asks() -> None:
    s = settings(channel_repos={"C1": "acme/api"})
    text = "<@UBOT> fix the flaky test"
    assert parse(text, channel="C1", settings=s, default_repo="acme/web").repo == "acme/web"  # type: ignore[union-attr]
    assert parse(text, channel="C1", settings=s).repo == "acme/api"  # type: ignore[union-attr]
    assert parse(text, channel="C2", settings=s) == NoRepo(text="fix the flaky test")
    long = parse("<@UBOT> " + "x" * 5000, channel="C2", settings=s)
    assert isinstance(long, Refusal)
    assert "5,000 characters" in long.message


def test_repo_options_only_offer_allowed_names_containing_the_typed_text() -> None:
    allowed = ["acme/*", "tools/cli", "tools/c?i"]
    known = ["acme/api", "ACME/API", "evil/app", "tools/cli", "bad name/x"]
    values = [o["value"] for o in repo_options("", allowed=allowed, known=known)]
    assert values == ["tools/cli", "acme/api"]
    assert [o["value"] for o in repo_options("API", allowed=allowed, known=known)] == ["acme/api"]
    assert [o["value"] for o in repo_options("acme/new", allowed=allowed, known=[])] == ["acme/new"]
    assert repo_options("evil/app", allowed=allowed, known=known) == []
    anything = repo_options("", allowed=[], known=[f"o/r{i}" for i in range(150)])
    assert len(anything) == 100
    long_name = "o/" + "n" * 100
    (option,) = repo_options(long_name, allowed=[], known=[])
    assert option["value"] == long_name
    assert len(option["text"]["text"]) == 75


def test_pending_asks_are_taken_once_and_tokens_are_checked() -> None:
    conn = fakeredis.FakeRedis()
    asks = PendingAsks(conn, prefix="t")
    token = asks.keep(PendingAsk("U1", "C1", "1.0", "1.0", "do it"))
    assert token_of(f"agents_repo_picker:{token}") == token
    assert token_of(f"other:{token}") is None
    assert token_of("agents_repo_picker:a:b") is None
    assert asks.peek(token) == PendingAsk("U1", "C1", "1.0", "1.0", "do it")
    assert asks.take(token) is not None
    assert asks.take(token) is None
    repos = ChannelRepos(conn, prefix="t", configured={"C9": "acme/ops"})
    repos.set("C1", "acme/api", by="U1")
    assert repos.known() == ["acme/api", "acme/ops"]
    assert repos.clear("C1")
    assert not repos.clear("C1")
