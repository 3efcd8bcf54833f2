"""Call a flaky function again until it succeeds."""

from retrying.retry import MAX_ATTEMPTS, RetryError, call_with_retry

__all__ = ["MAX_ATTEMPTS", "RetryError", "call_with_retry"]
