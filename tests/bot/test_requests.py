"""Reading mentions: every way a user can phrase (or misphrase) a request."""

from __future__ import annotations

from typing import Any

import pytest

from bot.requests import Ask, Help, NoRepo, Refusal, may_ask, parse
from process.settings import BotSettings


def settings(**kw: Any) -> BotSettings:
    return BotSettings(
        _env_file=None,  # type: ignore[call-arg]
        slack_bot_token="xoxb-test",
        slack_signing_secret="secret",
        **kw,
    )


@pytest.mark.parametrize(
    ("text", "repo", "ask"),
    [
        (
            "<@UBOT> in acme/api: make the retry limit configurable",
            "acme/api",
            "make the retry limit configurable",
        ),
        ("<@UBOT> IN acme/api:fix it", "acme/api", "fix it"),
        ("<@UBOT> repo:acme/web bump the timeout", "acme/web", "bump the timeout"),
        ("<@UBOT> bump the timeout repo:acme/web", "acme/web", "bump the timeout"),
        ("<@UBOT> in acme/api.git: x", "acme/api", "x"),
        ("<@UBOT|agents> in `acme/api`: x", "acme/api", "x"),
    ],
)
def test_repository_syntaxes(text: str, repo: str, ask: str) -> None:
    assert parse(text, channel="C1", settings=settings()) == Ask(repo=repo, text=ask)


def test_channel_default_repository() -> None:
    s = settings(channel_repos={"C1": "acme/api"})
    assert parse("<@UBOT> fix the flaky test", channel="C1", settings=s) == Ask(
        "acme/api", "fix the flaky test"
    )
    # No default: the bot asks which repository (a picker) with the request kept.
    assert parse("<@UBOT> fix the flaky test", channel="C2", settings=s) == NoRepo(
        "fix the flaky test"
    )


@pytest.mark.parametrize("text", ["<@UBOT>", "<@UBOT>   ", "<@UBOT> help", "<@UBOT> HELP"])
def test_empty_or_help_gets_usage(text: str) -> None:
    assert parse(text, channel="C1", settings=settings()) == Help()


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("<@UBOT> in acme: do x", "doesn't look like a repository name"),
        ("<@UBOT> in acme/api:", "What should I change in `acme/api`?"),
        ("<@UBOT> in acme/api: " + "x" * 5000, "at most 4,000"),
    ],
)
def test_bad_requests_say_how_to_fix(text: str, fragment: str) -> None:
    result = parse(text, channel="C1", settings=settings())
    assert isinstance(result, Refusal)
    assert fragment in result.message


def test_allow_list() -> None:
    s = settings(allowed_repos=["acme/*", "other/one"])
    assert isinstance(parse("<@U> in acme/api: x", channel="C", settings=s), Ask)
    assert isinstance(parse("<@U> in other/one: x", channel="C", settings=s), Ask)
    refusal = parse("<@U> in evil/repo: x", channel="C", settings=s)
    assert isinstance(refusal, Refusal)
    assert "not on this bot's allow-list" in refusal.message
    assert "AGENTS_ALLOWED_REPOS" in refusal.message


def test_user_and_channel_allow_lists() -> None:
    s = settings(allowed_users=["U1"], allowed_channels=["C1"])
    assert may_ask("U1", "C1", is_dm=False, settings=s) is None
    assert may_ask("U1", "D9", is_dm=True, settings=s) is None
    user = may_ask("U2", "C1", is_dm=False, settings=s)
    assert user is not None
    assert "AGENTS_ALLOWED_USERS" in user.message
    channel = may_ask("U1", "C2", is_dm=False, settings=s)
    assert channel is not None
    assert "AGENTS_ALLOWED_CHANNELS" in channel.message
    assert may_ask("anyone", "anywhere", is_dm=False, settings=settings()) is None
