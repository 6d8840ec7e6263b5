"""An agent's working loop over the /agent socket: offers, reject, accept, complete, wrap-up."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from contact_center.extensions import db
from contact_center.routing import services as routing
from contact_center.routing.models import Interaction, Reservation
from tests.conftest import call_sid

VOICE = "/webhooks/twilio/voice"


def _received(socket, name):
    return [e["args"][0] for e in socket.get_received("/agent") if e["name"] == name]


def _emit(socket, event, payload):
    return socket.emit(event, payload, namespace="/agent", callback=True)


def _available(socket) -> list[dict]:
    """Go available; returns the offers that arrived at once."""
    socket.get_received("/agent")
    ack = _emit(socket, "set_status", {"status": "available"})
    assert ack["ok"] is True, ack
    return _received(socket, "offer")


def _call(twilio_post, n: int, caller: str = "+447700900001") -> Interaction:
    response = twilio_post(VOICE, {"CallSid": call_sid(n), "From": caller, "To": "+4412345"})
    assert response.status_code == 200
    return db.session.scalar(sa.select(Interaction).where(Interaction.external_id == call_sid(n)))


@pytest.fixture
def queue(app):
    queue = routing.default_queue()
    db.session.commit()
    return queue


def test_reject_over_the_socket_offers_it_on(queue, create_user, agent_socket, twilio_post):
    alice, bob = create_user("alice"), create_user("bob")
    alice_socket, bob_socket = agent_socket(alice), agent_socket(bob)
    _available(alice_socket)
    first = _call(twilio_post, 1)
    second = _call(twilio_post, 2)
    offer = _received(alice_socket, "offer")[0]
    assert offer["interaction"]["id"] == first.id
    ack = _emit(alice_socket, "reject", {"reservation_id": offer["reservation_id"], "reason": "x"})
    assert ack["ok"] is True
    # Alice is the only agent, so the first caller (still first in line) comes back to her.
    assert [o["interaction"]["id"] for o in _received(alice_socket, "offer")] == [first.id]
    assert [o["interaction"]["id"] for o in _available(bob_socket)] == [second.id]
    rejected = db.session.get(Reservation, offer["reservation_id"])
    assert rejected.status == "rejected" and rejected.reason == "x"


def test_going_offline_returns_a_pending_offer(queue, create_user, agent_socket, twilio_post):
    alice = create_user("alice")
    socket = agent_socket(alice)
    _available(socket)
    interaction = _call(twilio_post, 1)
    offer = _received(socket, "offer")[0]
    ack = _emit(socket, "set_status", {"status": "offline"})
    assert ack["ok"] is True and ack["status"] == "offline"
    assert _received(socket, "offer_revoked")[0]["reservation_id"] == offer["reservation_id"]
    db.session.refresh(interaction)
    assert interaction.status == "queued"
    assert routing.get_store().location(interaction.id) is not None


def test_closing_the_console_returns_the_offer(queue, create_user, agent_socket, twilio_post):
    alice, bob = create_user("alice"), create_user("bob")
    alice_socket, bob_socket = agent_socket(alice), agent_socket(bob)
    _available(alice_socket)
    _available(bob_socket)
    interaction = _call(twilio_post, 1)
    offer = _received(alice_socket, "offer")[0]
    alice_socket.disconnect("/agent")
    assert db.session.get(Reservation, offer["reservation_id"]).status == "revoked"
    assert [o["interaction"]["id"] for o in _received(bob_socket, "offer")] == [interaction.id]


def test_accepting_twice_or_someone_elses_offer_fails(
    queue, create_user, agent_socket, twilio_post
):
    alice, bob = create_user("alice"), create_user("bob")
    alice_socket, bob_socket = agent_socket(alice), agent_socket(bob)
    _available(alice_socket)
    _call(twilio_post, 1)
    offer = _received(alice_socket, "offer")[0]
    stolen = _emit(bob_socket, "accept", {"reservation_id": offer["reservation_id"]})
    assert stolen["ok"] is False and stolen["error"]["code"] == "not_found"
    first = _emit(alice_socket, "accept", {"reservation_id": offer["reservation_id"]})
    second = _emit(alice_socket, "accept", {"reservation_id": offer["reservation_id"]})
    assert first["ok"] is True
    assert second["ok"] is False and second["error"]["code"] == "conflict"


def test_complete_and_wrapup_over_the_socket(
    queue, create_user, agent_socket, twilio_post, twilio_stub
):
    queue.wrapup_s = 30
    db.session.commit()
    alice = create_user("alice")
    socket = agent_socket(alice)
    _available(socket)
    interaction = _call(twilio_post, 1)
    offer = _received(socket, "offer")[0]
    _emit(socket, "accept", {"reservation_id": offer["reservation_id"]})
    early = _emit(socket, "wrapup_done", {"interaction_id": interaction.id})
    assert early["ok"] is False and early["error"]["code"] == "conflict"
    done = _emit(
        socket,
        "complete",
        {"interaction_id": interaction.id, "disposition": "resolved", "notes": "Card unblocked."},
    )
    assert done["ok"] is True and done["interaction"]["status"] == "wrapup"
    assert twilio_stub.wait_for(
        lambda r: r.call_sid == call_sid(1) and r.form.get("Status") == "completed"
    )
    db.session.refresh(alice)
    assert alice.status == "wrapup"
    ack = _emit(socket, "wrapup_done", {"interaction_id": interaction.id})
    assert ack["ok"] is True and ack["status"] == "available"
    db.session.refresh(interaction)
    assert interaction.status == "ended"
    assert interaction.disposition == "resolved" and interaction.notes == "Card unblocked."


def test_away_during_a_call_means_no_offers_after_it(queue, create_user, agent_socket, twilio_post):
    alice = create_user("alice")
    socket = agent_socket(alice)
    _available(socket)
    interaction = _call(twilio_post, 1)
    offer = _received(socket, "offer")[0]
    _emit(socket, "accept", {"reservation_id": offer["reservation_id"]})
    ack = _emit(socket, "set_status", {"status": "away", "reason": "break next"})
    assert ack["ok"] is True and ack["status"] == "busy" and ack["presence"] == "away"
    _emit(socket, "complete", {"interaction_id": interaction.id})
    _call(twilio_post, 2)
    assert _received(socket, "offer") == []


def test_reconnect_gets_held_work_and_ringing_offer(queue, create_user, agent_socket, twilio_post):
    queue.channels = ["voice", "email"]
    db.session.commit()
    alice = create_user("alice")
    socket = agent_socket(alice)
    _available(socket)
    first = _call(twilio_post, 1)
    offer = _received(socket, "offer")[0]
    assert offer["timeout_s"] == queue.offer_timeout_s and offer["server_time"].endswith("Z")
    _emit(socket, "accept", {"reservation_id": offer["reservation_id"]})
    socket.disconnect("/agent")
    again = agent_socket(alice)
    events = again.get_received("/agent")
    names = [e["name"] for e in events]
    assert names[:2] == ["status", "current"]
    current = events[1]["args"][0]["interactions"]
    assert [c["interaction"]["id"] for c in current] == [first.id]
    assert current[0]["reservation_id"] == offer["reservation_id"]
    assert "offer" not in names  # nothing ringing


def test_caller_joining_the_conference_updates_the_console(
    queue, create_user, agent_socket, twilio_post
):
    alice = create_user("alice")
    socket = agent_socket(alice)
    _available(socket)
    interaction = _call(twilio_post, 1)
    offer = _received(socket, "offer")[0]
    _emit(socket, "accept", {"reservation_id": offer["reservation_id"]})
    socket.get_received("/agent")
    twilio_post(
        f"/webhooks/twilio/voice/connect/{offer['reservation_id']}",
        {"CallSid": call_sid(1)},
        query={"leg": "caller"},
    )
    updates = _received(socket, "interaction_updated")
    assert [u["status"] for u in updates] == ["active"]
    assert updates[0]["id"] == interaction.id


def test_screen_pop_leaves_out_the_call_being_offered(
    queue, create_user, agent_socket, twilio_post
):
    from contact_center.customers.services import create_customer

    create_customer({"name": "Wei Zhang", "phones": ["+447700900001"]})
    alice = create_user("alice")
    socket = agent_socket(alice)
    _available(socket)
    _call(twilio_post, 1)
    offer = _received(socket, "offer")[0]
    assert offer["screen_pop"]["customer"]["name"] == "Wei Zhang"
    assert offer["screen_pop"]["recent_interactions"] == []
