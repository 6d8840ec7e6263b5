"""The Redis client: a real server when REDIS_URL is set, else an in-process fakeredis.

`REDIS_URL` may name a Redis behind Sentinel: `redis+sentinel://[[user]:password@]host:port,
host:port/<db>/<master name>`, python-socketio's format, so the same URL serves as the
Socket.IO message queue. The password is the master's; the sentinels are asked without one.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

import fakeredis
import redis
import redis.sentinel
from flask import Flask, current_app

SENTINEL_SCHEME = "redis+sentinel"


def parse_sentinel_url(url: str) -> tuple[list[tuple[str, int]], str, dict[str, Any]]:
    """The sentinels, the master's name and the connection options a Sentinel URL gives."""
    parsed = urlsplit(url)
    if parsed.scheme != SENTINEL_SCHEME:
        raise ValueError(f"not a {SENTINEL_SCHEME}:// URL")
    sentinels = []
    for address in parsed.netloc.rpartition("@")[2].split(","):
        host, _, port = address.rpartition(":")
        # Every address needs its port: python-socketio, which reads the same URL, requires it.
        if not host or not port.isdigit():
            raise ValueError(f"a sentinel address needs host:port, not {address!r}")
        sentinels.append((host.strip("[]"), int(port)))
    parts = parsed.path.strip("/").split("/")
    if len(parts) != 2 or not parts[0].isdigit() or not parts[1]:
        raise ValueError("a Sentinel URL ends in /<db>/<master name>, e.g. /0/mymaster")
    options: dict[str, Any] = {"db": int(parts[0])}
    if parsed.username:
        options["username"] = unquote(parsed.username)
    if parsed.password:
        options["password"] = unquote(parsed.password)
    return sentinels, parts[1], options


def _clients(url: str) -> tuple[redis.Redis, redis.Redis]:
    if urlsplit(url).scheme != SENTINEL_SCHEME:
        return redis.Redis.from_url(url, decode_responses=True), redis.Redis.from_url(url)
    sentinels, master, options = parse_sentinel_url(url)
    # The options apply to the master's connections; each command finds the current master
    # through the sentinels, so a failover costs the commands in flight, not a restart.
    sentinel = redis.sentinel.Sentinel(sentinels, **options)
    return sentinel.master_for(master, decode_responses=True), sentinel.master_for(master)


def init_redis(app: Flask) -> None:
    """Create the app's Redis clients (lazily connecting; no network here).

    RQ stores pickled jobs, so it gets a second client on the same server that returns bytes.
    """
    url = app.config.get("REDIS_URL")
    if url:
        client, raw = _clients(url)
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
