"""The routing skeleton: offers, reject, presence, skills, wrap-up, rebuild."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from contact_center.extensions import db
from contact_center.routing import services as routing
from contact_center.routing.models import Interaction, Queue, Reservation
from tests.conftest import call_sid

VOICE = "/webhooks/twilio/voice"


def _received(socket, name):
    return [e["args"][0] for e in socket.get_received("/agent") if e["name"] == name]


def _available(socket) -> list[dict]:
    """Go available; returns the offers that arrived at once."""
    socket.get_received("/agent")
    ack = socket.emit("set_status", {"status": "available"}, namespace="/agent", callback=True)
    assert ack["ok"] is True, ack
    return _received(socket, "offer")


def _call(twilio_post, n: int, caller: str = "+447700900001"):
    response = twilio_post(VOICE, {"CallSid": call_sid(n), "From": caller, "To": "+4412345"})
    assert response.status_code == 200
    return db.session.scalar(sa.select(Interaction).where(Interaction.external_id == call_sid(n)))


@pytest.fixture
def queue(app):
    queue = routing.default_queue()
    db.session.commit()
    return queue


def test_longest_idle_agent_gets_the_call(queue, create_user, agent_socket, twilio_post):
    alice, bob = create_user("alice"), create_user("bob")
    alice_socket, bob_socket = agent_socket(alice), agent_socket(bob)
    _available(alice_socket)
    _available(bob_socket)
    _call(twilio_post, 1)
    assert len(_received(alice_socket, "offer")) == 1
    assert _received(bob_socket, "offer") == []


def test_reject_returns_the_call_to_its_place_and_offers_it_on(
    queue, create_user, agent_socket, twilio_post
):
    alice, bob = create_user("alice"), create_user("bob")
    alice_socket, bob_socket = agent_socket(alice), agent_socket(bob)
    _available(alice_socket)
    first = _call(twilio_post, 1)
    second = _call(twilio_post, 2)
    offer = _received(alice_socket, "offer")[0]
    assert offer["interaction"]["id"] == first.id
    assert routing.get_store().waiting(queue.id) == [second.id]

    ack = alice_socket.emit(
        "reject",
        {"reservation_id": offer["reservation_id"], "reason": "x"},
        namespace="/agent",
        callback=True,
    )
    assert ack["ok"] is True
    # Alice is the only agent, so the first caller (still first in line) comes back to her.
    again = _received(alice_socket, "offer")
    assert [o["interaction"]["id"] for o in again] == [first.id]
    assert [o["interaction"]["id"] for o in _available(bob_socket)] == [second.id]
    rejected = db.session.get(Reservation, offer["reservation_id"])
    assert rejected.status == "rejected"
    assert rejected.reason == "x"


def test_going_offline_returns_a_pending_offer(queue, create_user, agent_socket, twilio_post):
    alice = create_user("alice")
    socket = agent_socket(alice)
    _available(socket)
    interaction = _call(twilio_post, 1)
    offer = _received(socket, "offer")[0]
    ack = socket.emit("set_status", {"status": "offline"}, namespace="/agent", callback=True)
    assert ack["ok"] is True
    assert ack["status"] == "offline"
    revoked = _received(socket, "offer_revoked")
    assert revoked[0]["reservation_id"] == offer["reservation_id"]
    db.session.refresh(interaction)
    assert interaction.status == "queued"
    assert routing.get_store().waiting(queue.id) == [interaction.id]


def test_only_qualified_agents_get_offers(app, create_user, agent_socket, twilio_post):
    routing.create_queue(
        name="Mandarin", channels=["voice"], required_skills={"lang:zh": 3}, is_default=True
    )
    db.session.commit()
    novice = create_user("novice", skills={"lang:zh": 2})
    expert = create_user("expert", skills={"lang:zh": 4})
    novice_socket = agent_socket(novice)
    _available(novice_socket)
    _call(twilio_post, 1)
    assert _received(novice_socket, "offer") == []
    assert len(_available(agent_socket(expert))) == 1


def test_premium_caller_jumps_ahead_in_score(queue, create_user, twilio_post):
    from contact_center.customers.services import create_customer

    create_customer({"name": "VIP", "phones": ["+447700900777"], "tier": "A"})
    regular = _call(twilio_post, 1, "+447700900001")
    vip = _call(twilio_post, 2, "+447700900777")
    assert routing.get_store().waiting(queue.id) == [vip.id, regular.id]


def test_complete_and_wrapup(queue, create_user, agent_socket, twilio_post, twilio_stub):
    queue.wrapup_s = 30
    db.session.commit()
    alice = create_user("alice")
    socket = agent_socket(alice)
    _available(socket)
    interaction = _call(twilio_post, 1)
    offer = _received(socket, "offer")[0]
    socket.emit(
        "accept", {"reservation_id": offer["reservation_id"]}, namespace="/agent", callback=True
    )
    early = socket.emit(
        "wrapup_done", {"interaction_id": interaction.id}, namespace="/agent", callback=True
    )
    assert early["ok"] is False
    assert early["error"]["code"] == "conflict"
    done = socket.emit(
        "complete",
        {"interaction_id": interaction.id, "disposition": "resolved", "notes": "Card unblocked."},
        namespace="/agent",
        callback=True,
    )
    assert done["ok"] is True
    assert done["interaction"]["status"] == "ended"
    hang_ups = twilio_stub.wait_for(
        lambda r: r.call_sid == call_sid(1) and r.form.get("Status") == "completed"
    )
    assert hang_ups
    db.session.refresh(alice)
    assert alice.status == "wrapup"
    ack = socket.emit(
        "wrapup_done", {"interaction_id": interaction.id}, namespace="/agent", callback=True
    )
    assert ack["ok"] is True
    assert ack["status"] == "available"
    db.session.refresh(interaction)
    assert interaction.disposition == "resolved"
    assert interaction.notes == "Card unblocked."


def test_accepting_twice_or_someone_elses_offer_fails(
    queue, create_user, agent_socket, twilio_post
):
    alice, bob = create_user("alice"), create_user("bob")
    alice_socket, bob_socket = agent_socket(alice), agent_socket(bob)
    _available(alice_socket)
    _call(twilio_post, 1)
    offer = _received(alice_socket, "offer")[0]
    stolen = bob_socket.emit(
        "accept", {"reservation_id": offer["reservation_id"]}, namespace="/agent", callback=True
    )
    assert stolen["ok"] is False
    assert stolen["error"]["code"] == "not_found"
    first = alice_socket.emit(
        "accept", {"reservation_id": offer["reservation_id"]}, namespace="/agent", callback=True
    )
    second = alice_socket.emit(
        "accept", {"reservation_id": offer["reservation_id"]}, namespace="/agent", callback=True
    )
    assert first["ok"] is True
    assert second["ok"] is False
    assert second["error"]["code"] == "conflict"


def test_busy_agent_cannot_go_available(queue, create_user, agent_socket, twilio_post):
    alice = create_user("alice")
    socket = agent_socket(alice)
    _available(socket)
    _call(twilio_post, 1)
    offer = _received(socket, "offer")[0]
    socket.emit(
        "accept", {"reservation_id": offer["reservation_id"]}, namespace="/agent", callback=True
    )
    ack = socket.emit("set_status", {"status": "away"}, namespace="/agent", callback=True)
    assert ack["ok"] is False
    assert ack["error"]["code"] == "conflict"


def test_rebuild_restores_waiting_calls_and_idle_agents(
    queue, create_user, agent_socket, twilio_post, app
):
    first = _call(twilio_post, 1)
    second = _call(twilio_post, 2)
    store = routing.get_store()
    app.extensions["redis"].flushdb()  # Redis lost everything
    assert store.waiting(queue.id) == []
    assert routing.get_store().waiting(queue.id) == [first.id, second.id]
    alice = create_user("alice")
    socket = agent_socket(alice)
    offer = _available(socket)[0]  # takes the first call
    assert offer["interaction"]["id"] == first.id
    counts = routing.rebuild_state()
    assert counts == {"waiting": 2, "agents": 1, "revoked_offers": 1}
    assert _received(socket, "offer_revoked")[0]["reservation_id"] == offer["reservation_id"]
    # After the rebuild the returned call is offered again, to the only agent.
    assert (
        db.session.scalar(
            sa.select(sa.func.count())
            .select_from(Reservation)
            .where(Reservation.status == "pending")
        )
        == 1
    )


def test_queue_model_defaults(queue):
    assert db.session.get(Queue, queue.id).offer_timeout_s == 15
