"""The Redis that one-process commands (``agents demo``, ``agents run``) keep runs in.

A server when ``REDIS_URL`` is set; otherwise an in-memory one, so both commands work
on a machine with no Redis at all.
"""

from __future__ import annotations

import os

import redis

from process.logs import mask_url


def open_redis() -> tuple[redis.Redis, str]:
    """The connection, and where it points, for the command to say."""
    url = os.environ.get("REDIS_URL")
    if url:
        return redis.Redis.from_url(url, socket_connect_timeout=3), f"Redis at {mask_url(url)}"
    import fakeredis

    return fakeredis.FakeRedis(), "an in-memory Redis (set REDIS_URL to use a server)"
