from __future__ import annotations

import pytest
from retrying import MAX_ATTEMPTS, RetryError, call_with_retry


class Flaky:
    """Fails ``failures`` times, then returns "ok"."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionError(f"failure {self.calls}")
        return "ok"


def no_sleep(seconds: float) -> None:
    pass


def test_returns_the_first_success() -> None:
    flaky = Flaky(failures=0)
    assert call_with_retry(flaky, sleep=no_sleep) == "ok"
    assert flaky.calls == 1


def test_retries_until_it_succeeds() -> None:
    flaky = Flaky(failures=2)
    assert call_with_retry(flaky, sleep=no_sleep) == "ok"
    assert flaky.calls == 3


def test_gives_up_after_the_limit() -> None:
    flaky = Flaky(failures=10)
    with pytest.raises(RetryError) as caught:
        call_with_retry(flaky, sleep=no_sleep)
    assert flaky.calls == MAX_ATTEMPTS
    assert caught.value.attempts == MAX_ATTEMPTS
    assert isinstance(caught.value.__cause__, ConnectionError)


def test_backs_off_exponentially() -> None:
    slept: list[float] = []
    with pytest.raises(RetryError):
        call_with_retry(Flaky(failures=10), delay=0.5, sleep=slept.append)
    assert slept == [0.5, 1.0]
