"""Injected failures: 429 with Retry-After, 5xx, error codes, dropped connections."""

from __future__ import annotations

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
)

from fakes.slack import SlackEmulator


def test_429_then_success_with_the_rate_limit_retry_handler(emu: SlackEmulator) -> None:
    client = WebClient(
        token=emu.bot_token,
        base_url=emu.api_url,
        retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=2)],
    )
    ts = client.chat_postMessage(channel="C_GENERAL", text="v1")["ts"]
    emu.fail_next("chat.update", status=429, retry_after=1)
    answer = client.chat_update(channel="C_GENERAL", ts=ts, text="v2")
    assert answer["ok"] is True
    calls = emu.calls("chat.update")
    assert [(c.status, c.injected) for c in calls] == [(429, True), (200, False)]
    assert calls[0].response == {"ok": False, "error": "ratelimited"}
    assert emu.message("C_GENERAL", ts)["text"] == "v2"  # type: ignore[index]


def test_429_without_a_retry_handler_raises_with_retry_after(emu: SlackEmulator) -> None:
    client = WebClient(token=emu.bot_token, base_url=emu.api_url)
    emu.fail_next("chat.postMessage", status=429, retry_after=7)
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel="C_GENERAL", text="x")
    assert exc.value.response.status_code == 429
    assert exc.value.response.headers["Retry-After"] == "7"
    assert exc.value.response["error"] == "ratelimited"


def test_failures_count_down_and_match_any_method(emu: SlackEmulator) -> None:
    client = WebClient(token=emu.bot_token, base_url=emu.api_url)
    emu.fail_next("*", status=500, count=2)
    for _ in range(2):
        with pytest.raises(SlackApiError) as exc:
            client.auth_test()
        assert exc.value.response.status_code == 500
    assert client.auth_test()["ok"] is True


def test_an_error_code_with_http_200(emu: SlackEmulator) -> None:
    client = WebClient(token=emu.bot_token, base_url=emu.api_url)
    emu.fail_next("chat.postMessage", error="is_archived")
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel="C_GENERAL", text="x")
    assert exc.value.response.status_code == 200
    assert exc.value.response["error"] == "is_archived"


def test_a_dropped_connection_is_retried_by_the_connection_handler(emu: SlackEmulator) -> None:
    client = WebClient(
        token=emu.bot_token,
        base_url=emu.api_url,
        retry_handlers=[ConnectionErrorRetryHandler(max_retry_count=1)],
    )
    emu.fail_next("chat.postMessage", drop=True)
    assert client.chat_postMessage(channel="C_GENERAL", text="x")["ok"] is True
    calls = emu.calls("chat.postMessage")
    assert [c.error for c in calls] == ["connection dropped", None]


def test_a_dropped_connection_without_retries_raises(emu: SlackEmulator) -> None:
    client = WebClient(token=emu.bot_token, base_url=emu.api_url, retry_handlers=[])
    emu.fail_next("chat.postMessage", drop=True)
    with pytest.raises(OSError, match="Remote end closed"):
        client.chat_postMessage(channel="C_GENERAL", text="x")


def test_built_in_rate_limit_per_channel(emu: SlackEmulator) -> None:
    client = WebClient(token=emu.bot_token, base_url=emu.api_url)
    emu.add_channel("C_OTHER", "other")
    emu.rate_limit("chat.postMessage", per_seconds=60, burst=1)
    client.chat_postMessage(channel="C_GENERAL", text="first")
    client.chat_postMessage(channel="C_OTHER", text="another channel is fine")
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel="C_GENERAL", text="too soon")
    assert exc.value.response.status_code == 429
    assert int(exc.value.response.headers["Retry-After"]) >= 1


def test_fail_next_needs_a_failure() -> None:
    with SlackEmulator() as emu, pytest.raises(ValueError, match="give an error"):
        emu.fail_next("chat.update")
