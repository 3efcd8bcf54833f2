"""The model interface, and the real one: Anthropic's Messages API through the SDK.

The loop builds Messages API request bodies (plain JSON) and gets back a
:class:`ModelResponse` (plain JSON content blocks plus usage). Keeping both sides plain
JSON is what lets a transcript record and replay a run exactly.
"""

from __future__ import annotations

import email.utils
import logging
import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from jobs.agent.config import ModelRetry
from jobs.agent.pricing import Usage
from process.exceptions import ModelRejected, ModelUnavailable, PromptTooLong

if TYPE_CHECKING:  # the SDK takes seconds to import: see :func:`anthropic_client`
    import anthropic

log = logging.getLogger(__name__)

Request = dict[str, Any]
Block = dict[str, Any]

#: How the API says a prompt does not fit: "prompt is too long: 210000 tokens > 200000
#: maximum", or "input length and `max_tokens` exceed context limit: 195000 + 8192 >
#: 200000" (which must not be read as a bad max_tokens setting).
_CONTEXT_FULL = re.compile(r"prompt is too long|exceed(s|ed)? (the )?context (limit|window)")

#: Statuses worth another attempt: timeouts, lock conflicts, rate limits, overload, 5xx.
RETRYABLE_STATUSES = frozenset({408, 409, 429})


@dataclass(frozen=True)
class ModelResponse:
    """One assistant message, as the API returned it."""

    content: list[Block]
    stop_reason: str
    usage: Usage
    model: str
    id: str = ""

    @property
    def tool_calls(self) -> list[Block]:
        return [block for block in self.content if block.get("type") == "tool_use"]

    @property
    def text(self) -> str:
        return "\n".join(b["text"] for b in self.content if b.get("type") == "text")

    def to_api(self) -> dict[str, Any]:
        """The response in the Messages API's JSON shape (how transcripts store it)."""
        return {
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": self.content,
            "stop_reason": self.stop_reason,
            "stop_sequence": None,
            "usage": {
                "input_tokens": self.usage.input_tokens,
                "output_tokens": self.usage.output_tokens,
                "cache_creation_input_tokens": self.usage.cache_write_tokens,
                "cache_read_input_tokens": self.usage.cache_read_tokens,
            },
        }

    @classmethod
    def from_api(cls, body: dict[str, Any]) -> ModelResponse:
        """Parse a Messages API response body (missing cache counts mean zero)."""
        usage = body.get("usage") or {}
        return cls(
            id=str(body.get("id", "")),
            model=str(body["model"]),
            content=[_clean_block(block) for block in body["content"]],
            stop_reason=str(body["stop_reason"]),
            usage=Usage(
                input_tokens=usage.get("input_tokens") or 0,
                output_tokens=usage.get("output_tokens") or 0,
                cache_write_tokens=usage.get("cache_creation_input_tokens") or 0,
                cache_read_tokens=usage.get("cache_read_input_tokens") or 0,
            ),
        )


def _clean_block(block: dict[str, Any]) -> Block:
    """Drop null fields (``citations: null``, ``caller: null``) the API need not get back."""
    return {key: value for key, value in block.items() if value is not None}


@dataclass(frozen=True)
class RetryNotice:
    """A transient failure that is about to be retried."""

    attempt: int
    max_retries: int
    wait_seconds: float
    status: int | None
    error: str


OnRetry = Callable[[RetryNotice], None]


class Model(Protocol):
    """Anything that answers a Messages API request body with an assistant message."""

    def complete(self, request: Request, *, on_retry: OnRetry | None = None) -> ModelResponse:
        """One model call. Raises :class:`~process.exceptions.ModelError` when it fails for good."""
        ...


def anthropic_client(
    *, api_key: str, base_url: str | None = None, timeout: float = 600.0
) -> anthropic.Anthropic:
    """An SDK client for :class:`AnthropicModel`, with the SDK's own retries turned off.

    ``AnthropicModel`` retries itself, so each retry is recorded as an event and the
    number of attempts stays bounded by one policy. Close the client when done.

    The SDK is imported here, not with this module: importing it takes seconds of CPU
    (its pydantic types), which every worker, CLI command and test process that never
    calls the real API would pay. A worker on the real API imports it before forking
    its work horses (:func:`jobs.worker.start_worker`).
    """
    import anthropic

    return anthropic.Anthropic(api_key=api_key, base_url=base_url, timeout=timeout, max_retries=0)


class AnthropicModel:
    """The real model: ``messages.create`` with bounded retries of transient failures.

    Retries honour ``retry-after-ms`` / ``retry-after`` (capped at
    ``retry.max_delay``), otherwise back off exponentially with jitter. Errors that a
    retry cannot fix raise :class:`ModelRejected` naming the setting to change.
    """

    def __init__(
        self,
        client: anthropic.Anthropic,
        *,
        retry: ModelRetry | None = None,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.client = client
        self.retry = retry or ModelRetry()
        self._sleep = sleep
        self._jitter = jitter

    def complete(self, request: Request, *, on_retry: OnRetry | None = None) -> ModelResponse:
        import anthropic  # loaded already: the client came from it

        attempt = 0
        while True:
            try:
                message = self.client.messages.create(**request)
                return ModelResponse.from_api(message.model_dump(mode="json"))
            except anthropic.APIStatusError as err:
                if not _retryable(err):
                    raise _rejected(err, request) from err
                failure: anthropic.APIError = err
                status: int | None = err.status_code
                headers: Mapping[str, str] | None = err.response.headers
            except anthropic.APIConnectionError as err:
                failure, status, headers = err, None, None
            error = _describe(failure, status)
            if attempt >= self.retry.max_retries:
                raise ModelUnavailable(
                    f"the Messages API at {self.client.base_url} still failed after "
                    f"{attempt + 1} attempts ({error}); check ANTHROPIC_BASE_URL and "
                    "the API status, or try again later",
                    attempts=attempt + 1,
                    status=status,
                ) from failure
            attempt += 1
            wait = self._wait(attempt, headers)
            log.warning("model call failed (%s); retry %d in %.1fs", error, attempt, wait)
            if on_retry is not None:
                on_retry(RetryNotice(attempt, self.retry.max_retries, wait, status, error))
            self._sleep(wait)

    def _wait(self, attempt: int, headers: Mapping[str, str] | None) -> float:
        asked = retry_after(headers)
        if asked is not None:
            return min(max(asked, 0.0), self.retry.max_delay)
        backoff = self.retry.initial_delay * 2.0 ** (attempt - 1)
        return min(backoff, self.retry.max_delay) * (0.5 + self._jitter() / 2)


def retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds the server asked us to wait: ``retry-after-ms``, or ``retry-after`` as
    seconds or an HTTP date. None when it did not say."""
    if headers is None:
        return None
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            return float(millis) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    parsed = email.utils.parsedate_tz(value)
    if parsed is None:
        return None
    return float(email.utils.mktime_tz(parsed) - time.time())


def _retryable(err: anthropic.APIStatusError) -> bool:
    should = err.response.headers.get("x-should-retry")
    if should in ("true", "false"):
        return should == "true"
    return err.status_code in RETRYABLE_STATUSES or err.status_code >= 500


def _describe(err: anthropic.APIError, status: int | None) -> str:
    """``429 rate_limit_error: ...``, from the error body the API sends."""
    import anthropic

    if isinstance(err, anthropic.APIStatusError):
        body = err.body if isinstance(err.body, dict) else {}
        error = body.get("error")
        detail: dict[str, Any] = error if isinstance(error, dict) else {}
        kind = detail.get("type") or "error"
        return f"{status} {kind}: {detail.get('message') or err.message}"
    return f"connection failed: {err.message}"


def _rejected(err: anthropic.APIStatusError, request: Request) -> ModelRejected:
    """Turn a non-retryable API error into a message that names what to fix."""
    status, model = err.status_code, request.get("model", "?")
    detail = _describe(err, status)
    setting: str | None
    if status == 401:
        setting = "ANTHROPIC_API_KEY"
        hint = "set ANTHROPIC_API_KEY to a valid API key"
    elif status == 402:
        setting = "ANTHROPIC_API_KEY"
        hint = "the account behind ANTHROPIC_API_KEY needs credit"
    elif status == 403:
        setting = "ANTHROPIC_API_KEY"
        hint = f"ANTHROPIC_API_KEY is not allowed to use {model}; use a key that is"
    elif status == 404:
        setting = "AGENTS_MODEL_*"
        hint = f"model {model!r} was not found; set this role's AGENTS_MODEL_* to a model id"
    elif status == 413 or (status == 400 and _CONTEXT_FULL.search(detail)):
        return PromptTooLong(
            f"model call rejected ({detail}): the conversation is too large for one request",
            status=status,
            setting=None,
        )
    elif status == 400 and "credit balance" in detail:
        setting = "ANTHROPIC_API_KEY"
        hint = "the account behind ANTHROPIC_API_KEY needs credit"
    elif status == 400 and "max_tokens" in detail:
        setting = "AGENTS_MAX_OUTPUT_TOKENS"
        hint = f"set AGENTS_MAX_OUTPUT_TOKENS to a value {model} accepts"
    elif status == 400 and "model" in detail:
        setting = "AGENTS_MODEL_*"
        hint = f"set this role's AGENTS_MODEL_* to a valid model id (now {model!r})"
    elif status >= 500:
        setting = None
        hint = "the API failed and asked not to be retried"
    else:
        setting = None
        hint = "the request was malformed; this is a bug in the agent loop, please report it"
    return ModelRejected(f"model call rejected ({detail}): {hint}", status=status, setting=setting)
