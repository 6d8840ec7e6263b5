"""The Redis client: a real server when REDIS_URL is set, else an in-process fakeredis."""

from __future__ import annotations

import fakeredis
import redis
from flask import Flask, current_app


def init_redis(app: Flask) -> None:
    """Create the app's Redis client (lazily connecting; no network here)."""
    url = app.config.get("REDIS_URL")
    if url:
        client = redis.Redis.from_url(url, decode_responses=True)
    else:
        # One FakeServer per app: its data lives as long as the process.
        client = fakeredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True)
    app.extensions["redis"] = client


def get_redis() -> redis.Redis:
    """The current app's Redis client."""
    return current_app.extensions["redis"]
