"""A request the database cannot serve in time (every pooled connection busy, or the server
out of reach) is refused as unavailable, 503 with Retry-After or a socket ack saying so, and
changes nothing; the next request once a connection is free is served as usual."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from contact_center.agents.models import User
from contact_center.extensions import db
from contact_center.routing.models import Interaction
from tests.conftest import call_sid
from tests.invariants import assert_invariants
from webhooks.deferred import drain, pending


@pytest.fixture
def app_config(app_config):
    # One connection, waited for one second: the test holds it to starve requests.
    return {**app_config, "DB_POOL_SIZE": 1, "DB_MAX_OVERFLOW": 0, "DB_POOL_TIMEOUT_S": 1}


@pytest.fixture
def pool_held(app):
    """Hold the pool's only connection while the test runs its block."""

    class Holder:
        def __enter__(self):
            db.session.remove()  # the test's own session gives its connection back
            self.connection = db.engine.connect()
            return self

        def __exit__(self, *exc_info):
            self.connection.close()

    return Holder


def test_api_answers_503_with_retry_after(app, client, create_user, auth_header, pool_held):
    supervisor = create_user("sam", role="supervisor")
    headers = auth_header(supervisor)
    with pool_held():
        response = client.get("/api/v1/queues", headers=headers)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.get_json()["error"]["code"] == "unavailable"
    # The connection is free again: the same request is served.
    assert client.get("/api/v1/queues", headers=headers).status_code == 200
    db.session.remove()  # the pool's one connection, for the check
    assert_invariants(app)


def test_socket_event_is_acked_unavailable_and_changes_nothing(
    app, create_user, agent_socket, pool_held
):
    agent = create_user("ana", role="agent", capacity={"voice": 1})
    socket = agent_socket(agent)
    with pool_held():
        ack = socket.emit("set_status", {"status": "available"}, namespace="/agent", callback=True)
    assert ack["ok"] is False
    assert ack["error"]["code"] == "unavailable"
    db.session.remove()
    assert db.session.scalar(sa.select(User.presence).where(User.id == agent.id)) != "available"
    ack = socket.emit("set_status", {"status": "available"}, namespace="/agent", callback=True)
    assert ack["ok"] is True
    db.session.remove()
    assert db.session.scalar(sa.select(User.presence).where(User.id == agent.id)) == "available"
    db.session.remove()
    assert_invariants(app)


def test_voice_webhook_answers_the_fallback_and_is_recorded_later(app, twilio_post, pool_held):
    params = {"CallSid": call_sid(1), "From": "+447700900123", "To": "+442071838750"}
    with pool_held():
        response = twilio_post("/webhooks/twilio/voice", params)
        # Twilio does not retry a 5xx: the caller hears the fallback, the call is kept.
        assert response.status_code == 200
        assert "<Record" in response.get_data(as_text=True)
        assert pending(app.extensions["redis"]) == 1
    assert count_calls() == 0
    assert drain(app) == 1
    assert count_calls() == 1
    assert drain(app) == 0
    assert_invariants(app)


def count_calls() -> int:
    """The call's rows, read on the pool's one connection and given back at once."""
    db.session.remove()
    try:
        return db.session.scalar(
            sa.select(sa.func.count())
            .select_from(Interaction)
            .where(Interaction.external_id == call_sid(1))
        )
    finally:
        db.session.remove()
