"""The fake Messages API answers in the anthropic SDK's own types, field for field.

Every answer it gives (each scripted reply in ``examples/transcripts``, the error
statuses, a request it cannot serve) is fetched through the real SDK and the product's
model client, and the JSON it sent is held to the SDK's types: ``Message`` for a reply
and ``ErrorResponse`` for an error. A field the type requires and the fake left out, a
wrong type, or a field the type does not declare fails. A streamed answer is not
checked: the product never asks for one (``messages.create`` without ``stream``), and
the fake serves none.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import pytest
from anthropic.types import Message
from anthropic.types.shared import ErrorResponse

from fakes.anthropic import Disconnect, Failure, FakeMessagesAPI, load_script, message, text
from fakes.anthropic import tool_use as tool_call
from jobs.agent.config import ModelRetry
from jobs.agent.model import AnthropicModel, anthropic_client
from process.exceptions import ModelRejected, ModelUnavailable
from tests.fakes.contract import violations

ROOT = Path(__file__).resolve().parents[3]
SCRIPTS = sorted((ROOT / "examples" / "transcripts").rglob("*.script.json"))
API_KEY = "sk-ant-contract"
REQUEST: dict[str, Any] = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 256,
    "messages": [{"role": "user", "content": "make the retry limit configurable"}],
}

#: What the API reference shows in every non-streamed Message, even when null; the SDK
#: types let these default, so their presence is pinned here.
ALWAYS_SENT = {"id", "type", "role", "model", "content", "stop_reason", "stop_sequence", "usage"}


def answer_violations(status: int, body: dict[str, Any]) -> list[str]:
    if status == 200:
        missing = sorted(ALWAYS_SENT - set(body))
        return [f"/{key}: always sent, missing" for key in missing] + violations(Message, body)
    return violations(ErrorResponse, body)


def contract_violations(api: FakeMessagesAPI) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for i, (status, body) in enumerate(api.answers):
        problems = answer_violations(status, body)
        if problems:
            found[f"answer {i} ({status})"] = problems
    return found


@pytest.fixture
def api() -> Iterator[FakeMessagesAPI]:
    with FakeMessagesAPI(api_key=API_KEY) as fake:
        yield fake


def model(api: FakeMessagesAPI, *, retries: int = 0) -> AnthropicModel:
    client = anthropic_client(api_key=API_KEY, base_url=api.base_url, timeout=10.0)
    return AnthropicModel(
        client, retry=ModelRetry(max_retries=retries, initial_delay=0.0), sleep=lambda s: None
    )


def test_the_scripts_exist() -> None:
    assert len(SCRIPTS) >= 4, SCRIPTS


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.name for p in SCRIPTS])
def test_every_scripted_reply_is_a_message_as_the_sdk_types_it(
    api: FakeMessagesAPI, script: Path
) -> None:
    replies = load_script(script)
    api.add(*replies)
    client = model(api)
    for reply in replies:
        if isinstance(reply, dict):
            client.complete(REQUEST)
        else:
            with pytest.raises((ModelRejected, ModelUnavailable)):
                client.complete(REQUEST)
    assert len(api.answers) == sum(not isinstance(r, Disconnect) for r in replies)
    assert contract_violations(api) == {}


def test_every_kind_of_reply_and_error_is_shaped_as_the_sdk_types_it(
    api: FakeMessagesAPI,
) -> None:
    api.add(
        message(text("Done."), cache_read_tokens=40, cache_write_tokens=7),
        message(text("Let me look."), tool_call("toolu_01", "read_file", {"path": "a.py"})),
        message(text("cut"), stop_reason="max_tokens"),
        Failure(429, "rate_limit_error", headers={"retry-after": "0"}),
        Failure(529, "overloaded_error"),
        Failure(500, "api_error"),
        Failure(400, "invalid_request_error", "prompt is too long: 210000 tokens > 200000"),
    )
    client = model(api)
    for _ in range(3):
        client.complete(REQUEST)
    for _ in range(3):
        with pytest.raises(ModelUnavailable):
            client.complete(REQUEST)
    with pytest.raises(ModelRejected):
        client.complete(REQUEST)
    with pytest.raises(ModelRejected):
        client.complete(REQUEST)  # no scripted reply left: 400
    sdk = anthropic.Anthropic(api_key="sk-ant-wrong", base_url=api.base_url, max_retries=0)
    with pytest.raises(anthropic.AuthenticationError):
        sdk.messages.create(**REQUEST)
    assert [status for status, _ in api.answers] == [200, 200, 200, 429, 529, 500, 400, 400, 401]
    assert contract_violations(api) == {}


# -- the contract can fail ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda body: body.update(temperature=1.0), "/temperature: not a field"),
        (lambda body: body["usage"].update(credits=3), "/usage/credits: not a field"),
        (lambda body: body["content"][0].update(score=0.5), "/content/0/score: not a field"),
        (lambda body: body.pop("stop_sequence"), "/stop_sequence: always sent, missing"),
        (lambda body: body["usage"].pop("output_tokens"), "/usage/output_tokens: Field required"),
        (lambda body: body.update(role="user"), "/role: Input should be 'assistant'"),
    ],
    ids=["extra", "nested-extra", "extra-in-a-block", "missing", "missing-nested", "wrong"],
)
def test_a_field_the_api_does_not_send_fails_the_contract(
    api: FakeMessagesAPI, mutate: Any, expected: str
) -> None:
    api.add(message(text("Done.")))
    model(api).complete(REQUEST)
    ((status, body),) = api.answers
    assert answer_violations(status, body) == []
    mutate(body)
    problems = answer_violations(status, body)
    assert any(expected in problem for problem in problems), problems


def test_an_error_with_a_field_the_api_does_not_send_fails_the_contract(
    api: FakeMessagesAPI,
) -> None:
    api.add(Failure(500, "api_error"))
    with pytest.raises(ModelUnavailable):
        model(api).complete(REQUEST)
    ((status, body),) = api.answers
    assert answer_violations(status, body) == []
    body["error"]["retryable"] = True
    assert answer_violations(status, body) != []
