"""Every text a user can type gets a defined answer: the mention parser returns a request,
the usage text or a refusal; ``/agents`` answers every argument with a result or its
usage line; a repository name either follows GitHub's rules or is refused, and one
that is accepted cannot climb out of a directory."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator

import fakeredis
import pytest
from hypothesis import given
from hypothesis import strategies as st
from slack_sdk import WebClient

from bot.clean import clean_text
from bot.listeners.commands.agents import _run_id, handle_command
from bot.requests import MAX_REQUEST_CHARS, Ask, Help, NoRepo, Refusal, parse
from bot.services import Services
from process.repo_names import is_repo_name, is_repo_pattern, repo_problem
from process.settings import BotSettings

SETTINGS = BotSettings(  # type: ignore[call-arg]
    _env_file=None,
    slack_bot_token="xoxb-hostile",
    slack_signing_secret="s",
    channel_repos={"C_DEFAULT": "acme/api"},
    allowed_repos=["acme/*"],
    approvers=["U_CAROL"],
    queue="hostile",
)
GITHUB_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9._-]{1,100}")

#: Text users type, and text nobody types: any code point, surrogates included.
anything = st.text(st.characters(codec=None), max_size=300)
words = st.sampled_from(["in", "repo:", "acme/api", "acme/..", "../etc", ":", "`", "<@U1>", " "])
mentionish = st.lists(st.one_of(words, anything), max_size=8).map(" ".join)


@given(st.one_of(anything, mentionish), st.sampled_from(["C_DEFAULT", "C_OTHER", "D1"]))
def test_every_mention_gets_a_request_usage_or_refusal(text: str, channel: str) -> None:
    answer = parse(text, channel=channel, settings=SETTINGS)
    assert isinstance(answer, Ask | Help | NoRepo | Refusal)
    if isinstance(answer, Refusal):
        assert answer.message.strip()
    if isinstance(answer, NoRepo):  # the picker asks for the repository
        assert answer.text
        assert len(answer.text) <= MAX_REQUEST_CHARS
    if isinstance(answer, Ask):
        assert is_repo_name(answer.repo)
        assert answer.repo.lower().startswith("acme/")
        assert answer.text
        assert len(answer.text) <= MAX_REQUEST_CHARS


@pytest.fixture(scope="module")
def services() -> Iterator[Services]:
    connection = fakeredis.FakeRedis()
    # /agents answers from the store; the client is never called.
    client = WebClient(token="xoxb-hostile", base_url="http://127.0.0.1:9/")
    yield Services.from_settings(SETTINGS, connection, client)
    connection.close()


@given(
    st.one_of(
        anything,
        st.sampled_from(["status", "cancel", "help"]).flatmap(
            lambda verb: st.one_of(anything, st.text(st.characters(categories=["Nd", "No"]))).map(
                lambda arg: f"{verb} {arg}"
            )
        ),
    )
)
def test_every_slash_command_gets_an_answer(services: Services, text: str) -> None:
    fallback, blocks = handle_command("U_MALLORY", text, services)
    assert fallback.strip()
    assert blocks


@given(anything)
def test_a_run_id_is_ascii_digits_or_nothing(word: str) -> None:
    value = _run_id(word)
    digits = word.lstrip("#")
    if value is None:
        assert not (digits.isascii() and digits.isdigit() and len(digits) <= 12)
    else:
        assert value == int(digits)


@given(st.one_of(anything, st.from_regex(GITHUB_NAME, fullmatch=True), mentionish))
def test_an_accepted_repository_name_follows_githubs_rules(name: str) -> None:
    if repo_problem(name) is not None:
        return
    assert GITHUB_NAME.fullmatch(name)
    _owner, repo = name.split("/")
    assert repo not in (".", "..")
    assert posixpath.normpath(name) == name
    assert not name.startswith("/")
    assert ".." not in name.split("/")
    assert is_repo_pattern(name)


@given(anything)
def test_cleaned_text_is_storable(text: str) -> None:
    cleaned = clean_text(text)
    cleaned.encode("utf-8")  # would raise on a lone surrogate
    assert "\x00" not in cleaned
