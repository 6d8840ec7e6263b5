"""Configuration: embedded defaults, environment, refusals."""

from __future__ import annotations

import pytest

from contact_center import config


def test_environment_values_are_coerced():
    values = config.from_environment(
        {"SMTP_PORT": "2525", "DEMO_SIMULATOR": "1", "REDIS_URL": "redis://x", "UNRELATED": "y"}
    )
    assert values == {"SMTP_PORT": 2525, "DEMO_SIMULATOR": True, "REDIS_URL": "redis://x"}


def test_real_backends_need_a_secret_key(tmp_path):
    values = config.default_config(str(tmp_path))
    values["DATABASE_URL"] = "postgresql://db/cc"
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        config.finalise(values)


def test_embedded_mode_gets_a_random_secret_and_sqlite(tmp_path):
    values = config.finalise(config.default_config(str(tmp_path)))
    assert len(values["SECRET_KEY"]) == 64
    assert values["SQLALCHEMY_DATABASE_URI"].startswith("sqlite:///")
    assert values["SOCKETIO_MESSAGE_QUEUE"] is None


def test_postgres_urls_use_psycopg_and_redis_is_the_message_queue(tmp_path):
    values = config.default_config(str(tmp_path))
    values.update(SECRET_KEY="s", DATABASE_URL="postgres://u@h/db", REDIS_URL="redis://r:6379/0")
    values = config.finalise(values)
    assert values["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u@h/db"
    assert values["SOCKETIO_MESSAGE_QUEUE"] == "redis://r:6379/0"
    assert values["SOCKETIO_CHANNEL"] == "contact-center-db0"


@pytest.mark.parametrize(
    ("url", "channel", "expected"),
    [
        ("redis://r:6379/3", None, "contact-center-db3"),
        ("redis://r:6379", None, "contact-center-db0"),
        ("rediss://:pw@r:6380/12?ssl_cert_reqs=none", None, "contact-center-db12"),
        ("redis://r:6379/3", "desk-eu", "desk-eu"),
        ("redis+sentinel://:pw@s1:26379,s2:26379/5/cc", None, "contact-center-db5"),
    ],
)
def test_deployments_sharing_a_redis_get_socketio_channels_of_their_own(
    tmp_path, url, channel, expected
):
    """Pub/sub ignores the database number: two deployments on one Redis (databases 3 and
    4, say) would otherwise see each other's offers and board events."""
    values = config.default_config(str(tmp_path))
    values.update(SECRET_KEY="s", REDIS_URL=url, SOCKETIO_CHANNEL=channel)
    assert config.finalise(values)["SOCKETIO_CHANNEL"] == expected


@pytest.mark.parametrize(
    ("hops", "expected"), [(0, ("127.0.0.1", "http")), (1, ("203.0.113.9", "https"))]
)
def test_forwarded_headers_count_only_behind_a_trusted_proxy(tmp_path, hops, expected):
    """Behind nginx the client's address and scheme come from X-Forwarded-*; without
    PROXY_FIX_HOPS anyone could claim any address through them."""
    from flask import request

    from contact_center import create_app

    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}",
            "REDIS_URL": None,
            "PROXY_FIX_HOPS": hops,
        }
    )
    app.add_url_rule("/whoami", "whoami", lambda: f"{request.remote_addr} {request.scheme}")
    response = app.test_client().get(
        "/whoami",
        headers={"X-Forwarded-For": "198.51.100.1, 203.0.113.9", "X-Forwarded-Proto": "https"},
    )
    assert response.text == " ".join(expected)
