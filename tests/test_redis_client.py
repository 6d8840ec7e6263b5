"""REDIS_URL: a plain server, or a master found through Redis Sentinel."""

from __future__ import annotations

import pytest
import redis.sentinel
from socketio import RedisManager
from socketio.redis_manager import parse_redis_sentinel_url

from contact_center import create_app
from contact_center.redis_client import parse_sentinel_url

SENTINEL_URL = "redis+sentinel://:s%40cret@sentinel-a:26379,10.0.0.7:26380/4/cc-master"


def test_a_sentinel_url_names_the_sentinels_the_master_and_its_database():
    sentinels, master, options = parse_sentinel_url(SENTINEL_URL)
    assert sentinels == [("sentinel-a", 26379), ("10.0.0.7", 26380)]
    assert master == "cc-master"
    assert options == {"db": 4, "password": "s@cret"}


def test_socketio_reads_the_same_sentinel_url_the_same_way():
    """One REDIS_URL serves both the app and the Socket.IO message queue."""
    sentinels, master, options = parse_sentinel_url("redis+sentinel://u:pw@h1:1,h2:2/3/m")
    assert parse_redis_sentinel_url("redis+sentinel://u:pw@h1:1,h2:2/3/m") == (
        sentinels,
        master,
        options,
    )


@pytest.mark.parametrize(
    "url",
    [
        "redis://r:6379/0",
        "redis+sentinel://s1:26379/0",  # no master name
        "redis+sentinel://s1:26379/mymaster",  # no database
        "redis+sentinel://s1,s2:26379/0/mymaster",  # a sentinel without its port
    ],
)
def test_incomplete_sentinel_urls_are_refused(url):
    with pytest.raises(ValueError, match="(?i)sentinel"):
        parse_sentinel_url(url)


def test_the_app_asks_the_sentinels_for_its_master(tmp_path):
    """Both clients (text, and bytes for RQ) and the Socket.IO message queue follow the
    master; nothing connects yet."""
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "s",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}",
            "REDIS_URL": SENTINEL_URL,
            "SOCKETIO_MESSAGE_QUEUE": SENTINEL_URL,
        }
    )
    manager = app.extensions["socketio"].server.manager
    assert isinstance(manager, RedisManager)  # not Kombu's, which Flask-SocketIO would pick
    assert manager.redis_url == SENTINEL_URL
    assert manager.channel == "contact-center-db4"
    for name, decoded in (("redis", True), ("redis_raw", False)):
        pool = app.extensions[name].connection_pool
        assert isinstance(pool, redis.sentinel.SentinelConnectionPool)
        assert pool.service_name == "cc-master"
        assert pool.connection_kwargs["db"] == 4
        assert pool.connection_kwargs["password"] == "s@cret"
        assert pool.connection_kwargs.get("decode_responses", False) is decoded
        hosts = [
            c.connection_pool.connection_kwargs["host"] for c in pool.sentinel_manager.sentinels
        ]
        assert hosts == ["sentinel-a", "10.0.0.7"]
