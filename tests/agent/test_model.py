"""AnthropicModel through the real SDK: retries of transient failures, and clear errors."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fakes.anthropic import Disconnect, Failure, FakeMessagesAPI, message, text, tool_use
from jobs.agent.config import AgentConfig, ModelRetry
from jobs.agent.loop import run_agent
from jobs.agent.model import (
    AnthropicModel,
    ModelResponse,
    RetryNotice,
    anthropic_client,
    retry_after,
)
from jobs.agent.prompt import Task
from jobs.agent.recorders import MemoryRecorder
from process.exceptions import ModelRejected, ModelUnavailable, PromptTooLong
from runs.events import ModelRetried
from sandboxes.local_sandbox import LocalSandbox
from tests.agent.conftest import API_KEY, Sleeps

TASK = Task(repo="acme/retrying", request="make the retry limit configurable")
REQUEST = {
    "model": "claude-sonnet-5-5",
    "max_tokens": 100,
    "messages": [{"role": "user", "content": "hi"}],
}
FINISH = message(tool_use("toolu_f", "finish", {"summary": "done"}))


@pytest.fixture
def steady_model(api: FakeMessagesAPI, sleeps: Sleeps) -> Iterator[AnthropicModel]:
    """Backoff without jitter, so the waits can be asserted exactly."""
    client = anthropic_client(api_key=API_KEY, base_url=api.base_url, timeout=30)
    try:
        yield AnthropicModel(
            client,
            retry=ModelRetry(max_retries=3, initial_delay=1.0, max_delay=60.0),
            sleep=sleeps,
            jitter=lambda: 1.0,
        )
    finally:
        client.close()


def test_a_429_then_success_completes_the_run(
    api: FakeMessagesAPI,
    model: AnthropicModel,
    sandbox: LocalSandbox,
    sleeps: Sleeps,
    config: AgentConfig,
) -> None:
    api.add(Failure(429, "rate_limit_error", "slow down", {"retry-after": "0"}), FINISH)
    recorder = MemoryRecorder()
    result = run_agent(TASK, sandbox=sandbox, model=model, recorder=recorder, config=config)
    assert result.summary == "done"
    assert len(api.requests) == 2
    assert api.requests[0].body == api.requests[1].body
    assert sleeps == [0.0]
    retry = recorder.events[0]
    assert isinstance(retry, ModelRetried)
    assert (retry.status, retry.attempt, retry.max_retries) == (429, 1, 3)
    assert retry.error == "429 rate_limit_error: slow down"


@pytest.mark.parametrize(
    ("headers", "wait"),
    [
        ({"retry-after": "7"}, 7.0),
        ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5),
        ({"retry-after": "3600"}, 60.0),  # honoured up to max_delay
    ],
)
def test_retry_after_is_honoured(
    api: FakeMessagesAPI,
    steady_model: AnthropicModel,
    sleeps: Sleeps,
    headers: dict[str, str],
    wait: float,
) -> None:
    api.add(Failure(429, "rate_limit_error", headers=headers), message(text("ok")))
    assert steady_model.complete(REQUEST).text == "ok"
    assert sleeps == [wait]


def test_overload_5xx_and_dropped_connections_back_off(
    api: FakeMessagesAPI, steady_model: AnthropicModel, sleeps: Sleeps
) -> None:
    api.add(
        Failure(529, "overloaded_error", "Overloaded"),
        Disconnect(),
        Failure(503, "api_error"),
        message(text("ok")),
    )
    notices: list[RetryNotice] = []
    response = steady_model.complete(REQUEST, on_retry=notices.append)
    assert response.text == "ok"
    assert sleeps == [1.0, 2.0, 4.0]
    assert [n.status for n in notices] == [529, None, 503]
    assert notices[1].error.startswith("connection failed")


def test_retries_are_bounded(
    api: FakeMessagesAPI, model: AnthropicModel, sandbox: LocalSandbox, config: AgentConfig
) -> None:
    api.add(*[Failure(529, "overloaded_error", "Overloaded") for _ in range(10)])
    recorder = MemoryRecorder()
    with pytest.raises(ModelUnavailable) as caught:
        run_agent(TASK, sandbox=sandbox, model=model, recorder=recorder, config=config)
    assert caught.value.attempts == 4
    assert len(api.requests) == 4
    assert "still failed after 4 attempts (529 overloaded_error: Overloaded)" in str(caught.value)
    assert [e.attempt for e in recorder.events] == [1, 2, 3]
    assert recorder.stops[0][0] == "model_unavailable"


def test_a_401_fails_the_run_naming_the_api_key_setting(
    api: FakeMessagesAPI, sandbox: LocalSandbox, config: AgentConfig, sleeps: Sleeps
) -> None:
    api.add(FINISH)
    client = anthropic_client(api_key="sk-ant-wrong", base_url=api.base_url, timeout=30)
    recorder = MemoryRecorder()
    try:
        with pytest.raises(ModelRejected) as caught:
            run_agent(
                TASK,
                sandbox=sandbox,
                model=AnthropicModel(client, sleep=sleeps),
                recorder=recorder,
                config=config,
            )
    finally:
        client.close()
    err = caught.value
    assert (err.status, err.setting) == (401, "ANTHROPIC_API_KEY")
    assert "set ANTHROPIC_API_KEY to a valid API key" in str(err)
    assert len(api.requests) == 1
    assert sleeps == []
    assert recorder.stops == [("model_rejected", str(err))]


@pytest.mark.parametrize(
    ("failure", "setting", "says"),
    [
        (
            Failure(403, "permission_error", "not allowed"),
            "ANTHROPIC_API_KEY",
            "not allowed to use",
        ),
        (Failure(404, "not_found_error", "model: claude-x"), "AGENTS_MODEL_*", "was not found"),
        (
            Failure(400, "invalid_request_error", "max_tokens: 99999 > 64000"),
            "AGENTS_MAX_OUTPUT_TOKENS",
            "set AGENTS_MAX_OUTPUT_TOKENS",
        ),
        (
            Failure(400, "invalid_request_error", "Your credit balance is too low"),
            "ANTHROPIC_API_KEY",
            "needs credit",
        ),
        (Failure(400, "invalid_request_error", "messages: bad"), None, "bug in the agent loop"),
        (
            Failure(500, "api_error", "boom", {"x-should-retry": "false"}),
            None,
            "asked not to be retried",
        ),
    ],
)
def test_errors_a_retry_cannot_fix_are_not_retried(
    api: FakeMessagesAPI,
    model: AnthropicModel,
    sleeps: Sleeps,
    failure: Failure,
    setting: str | None,
    says: str,
) -> None:
    api.add(failure)
    with pytest.raises(ModelRejected) as caught:
        model.complete(REQUEST)
    assert caught.value.status == failure.status
    assert caught.value.setting == setting
    assert says in str(caught.value)
    assert len(api.requests) == 1
    assert sleeps == []


@pytest.mark.parametrize(
    "failure",
    [
        Failure(400, "invalid_request_error", "prompt is too long: 210000 tokens > 200000"),
        # Names max_tokens, but is about the prompt: not a bad AGENTS_MAX_OUTPUT_TOKENS.
        Failure(
            400,
            "invalid_request_error",
            "input length and `max_tokens` exceed context limit: 195000 + 8192 > 200000",
        ),
        Failure(413, "request_too_large", "Request exceeds the maximum allowed size"),
    ],
)
def test_a_prompt_that_does_not_fit_is_told_apart(
    api: FakeMessagesAPI, model: AnthropicModel, sleeps: Sleeps, failure: Failure
) -> None:
    api.add(failure)
    with pytest.raises(PromptTooLong) as caught:
        model.complete(REQUEST)
    assert caught.value.status == failure.status
    assert caught.value.setting is None
    assert caught.value.reason == "context_window"
    assert len(api.requests) == 1
    assert sleeps == []


def test_retry_after_parses_seconds_milliseconds_and_dates() -> None:
    assert retry_after(None) is None
    assert retry_after({}) is None
    assert retry_after({"retry-after": "2.5"}) == 2.5
    assert retry_after({"retry-after-ms": "250"}) == 0.25
    assert retry_after({"retry-after": "soon"}) is None
    past = retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"})
    assert past is not None
    assert past < 0


def test_responses_round_trip_through_the_api_shape() -> None:
    body = {
        "id": "msg_1",
        "model": "claude-sonnet-5-5",
        "content": [{"type": "text", "text": "hi", "citations": None}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 3, "output_tokens": 4, "cache_read_input_tokens": None},
    }
    response = ModelResponse.from_api(body)
    assert response.content == [{"type": "text", "text": "hi"}]
    assert response.usage.cache_read_tokens == 0
    assert ModelResponse.from_api(response.to_api()) == response
