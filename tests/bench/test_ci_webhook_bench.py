"""The CI-webhook benchmark's hop, run once, faster: the webhook watch makes fewer forge
calls than the polling one, and both are counted from what the fake GitHub served."""

from __future__ import annotations

import pytest
import redis

from bench import ci_webhook
from jobs import ci_events


@pytest.mark.redis
def test_a_ci_webhook_watch_makes_fewer_forge_calls_than_polling(
    real_redis_conn: redis.Redis,
) -> None:
    result = ci_webhook.run(real_redis_conn, 1, scale=0.004)
    (figure,) = result.figures
    (polled,) = figure.baseline or []
    (hooked,) = figure.samples
    # Each read of the checks is two requests (check runs, combined status). Polling
    # reads about once per poll interval of the CI's duration (a little less: each read
    # takes time too); the webhook watch once at the start, once per fallback interval,
    # and once when the webhook wakes it.
    ci, poll = ci_webhook.CI_SECONDS, ci_webhook.POLL_SECONDS
    fallback = poll * ci_events.WEBHOOK_POLL_FACTOR
    assert polled >= ci // poll
    assert hooked % 2 == 0
    assert 4 <= hooked <= 2 * (ci // fallback + 2)
    assert hooked < polled
    assert figure.met
    assert "| CI webhook, fallback poll every 120 s |" in result.details
