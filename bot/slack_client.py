"""The Slack Web API client: retries 429 (honouring Retry-After), 5xx and dropped
connections, so neither a listener nor the reporter gives up on a passing fault."""

from __future__ import annotations

from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)


def web_client(token: str, base_url: str, *, max_retries: int = 5) -> WebClient:
    client = WebClient(token=token, base_url=base_url, timeout=15)
    client.retry_handlers.extend(
        [
            RateLimitErrorRetryHandler(max_retry_count=max_retries),
            ServerErrorRetryHandler(max_retry_count=max_retries),
        ]
    )
    # The default handler list already holds one ConnectionErrorRetryHandler (1 retry).
    client.retry_handlers[:] = [
        h for h in client.retry_handlers if not isinstance(h, ConnectionErrorRetryHandler)
    ] + [ConnectionErrorRetryHandler(max_retry_count=max_retries)]
    return client
