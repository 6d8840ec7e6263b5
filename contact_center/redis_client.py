"""The Redis client: a real server when REDIS_URL is set, else an in-process fakeredis."""

from __future__ import annotations

import fakeredis
import redis
from flask import Flask, current_app


def init_redis(app: Flask) -> None:
    """Create the app's Redis clients (lazily connecting; no network here).

    RQ stores pickled jobs, so it gets a second client on the same server that returns bytes.
    """
    url = app.config.get("REDIS_URL")
    if url:
        client = redis.Redis.from_url(url, decode_responses=True)
        raw = redis.Redis.from_url(url)
    else:
        # One FakeServer per app: its data lives as long as the process.
        server = fakeredis.FakeServer()
        client = fakeredis.FakeRedis(server=server, decode_responses=True)
        raw = fakeredis.FakeRedis(server=server)
    app.extensions["redis"] = client
    app.extensions["redis_raw"] = raw


def get_redis() -> redis.Redis:
    """The current app's Redis client."""
    return current_app.extensions["redis"]


def get_raw_redis() -> redis.Redis:
    """The current app's Redis client that returns bytes (for RQ)."""
    return current_app.extensions["redis_raw"]
