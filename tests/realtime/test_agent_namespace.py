"""The /agent namespace: who may connect, and bad events get a failed ack."""

from __future__ import annotations

import pytest

from contact_center.extensions import socketio


def test_connection_without_credentials_is_refused(app, client):
    socket = socketio.test_client(app, namespace="/agent", flask_test_client=client)
    assert not socket.is_connected("/agent")


@pytest.mark.parametrize("auth", [{"token": "wrong"}, {"token": 42}, {"nothing": 1}])
def test_bad_tokens_are_refused(app, client, auth):
    socket = socketio.test_client(app, namespace="/agent", auth=auth, flask_test_client=client)
    assert not socket.is_connected("/agent")


def test_connect_sends_current_status(create_user, agent_socket):
    socket = agent_socket(create_user("alice"))
    status = [e["args"][0] for e in socket.get_received("/agent") if e["name"] == "status"]
    assert status[0]["status"] == "offline"
    assert status[0]["since"].endswith("Z")


def test_supervisors_may_use_the_agent_console(create_user, agent_socket):
    assert agent_socket(create_user("sam", role="supervisor")).is_connected("/agent")


@pytest.mark.parametrize(
    ("event", "payload", "code"),
    [
        ("set_status", {"status": "busy"}, "validation_error"),
        ("set_status", {}, "validation_error"),
        ("set_status", "available", "bad_request"),
        ("set_status", None, "bad_request"),
        ("accept", {}, "validation_error"),
        ("accept", {"reservation_id": 5}, "validation_error"),
        ("accept", {"reservation_id": "nope"}, "not_found"),
        ("reject", {"reservation_id": "x" * 100}, "validation_error"),
        ("complete", {"interaction_id": "1"}, "validation_error"),
        ("complete", {"interaction_id": 999}, "not_found"),
        ("wrapup_done", {"interaction_id": None}, "validation_error"),
    ],
)
def test_invalid_events_get_a_failed_ack_and_change_nothing(
    create_user, agent_socket, event, payload, code
):
    from contact_center.extensions import db

    alice = create_user("alice")
    socket = agent_socket(alice)
    socket.get_received("/agent")
    ack = socket.emit(event, payload, namespace="/agent", callback=True)
    assert ack["ok"] is False
    assert ack["error"]["code"] == code
    assert ack["error"]["message"]
    db.session.refresh(alice)
    assert alice.status == "offline"
    assert [e for e in socket.get_received("/agent") if e["name"] == "status"] == []


def test_revoked_token_ends_the_socket_rights_at_once(create_user, agent_socket):
    from contact_center.agents.models import ApiToken
    from contact_center.agents.services import revoke_token
    from contact_center.extensions import db

    alice = create_user("alice")
    socket = agent_socket(alice)
    assert socket.emit("set_status", {"status": "away"}, namespace="/agent", callback=True)["ok"]
    for record in db.session.scalars(db.select(ApiToken)):
        revoke_token(record)
    ack = socket.emit("set_status", {"status": "available"}, namespace="/agent", callback=True)
    assert ack["ok"] is False and ack["error"]["code"] == "unauthorized"
    db.session.refresh(alice)
    assert alice.presence == "away"


def test_sign_out_ends_console_sockets(app, client, create_user):
    from tests.conftest import PASSWORD

    create_user("alice")
    page = client.get("/login").get_data(as_text=True)
    csrf = page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    client.post("/login", data={"username": "alice", "password": PASSWORD, "csrf_token": csrf})
    socket = socketio.test_client(app, namespace="/agent", flask_test_client=client)
    assert socket.is_connected("/agent")
    assert socket.emit("set_status", {"status": "away"}, namespace="/agent", callback=True)["ok"]
    console = client.get("/agent").get_data(as_text=True)
    csrf = console.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    assert client.post("/logout", data={"csrf_token": csrf}).status_code == 302
    ack = socket.emit("set_status", {"status": "available"}, namespace="/agent", callback=True)
    assert ack["ok"] is False and ack["error"]["code"] == "unauthorized"
    assert client.get("/agent").status_code == 302  # the page needs a new login too
