"""The walking skeleton end to end: a signed call reaches an agent's screen and completes."""

from __future__ import annotations

import sqlalchemy as sa

from contact_center.customers.services import create_customer
from contact_center.extensions import db
from contact_center.routing.models import Interaction, Reservation
from tests.conftest import ACCOUNT_SID, PUBLIC_BASE_URL, call_sid


def _events(socket, name):
    return [event["args"][0] for event in socket.get_received("/agent") if event["name"] == name]


def test_call_reaches_agent_and_completes(app, create_user, agent_socket, twilio_post, twilio_stub):
    customer = create_customer(
        {"name": "Margaret Holloway", "phones": ["+44 20 7946 0018"], "tier": "A"}
    )
    alice = create_user("alice", display_name="Alice Archer", skills={"lang:en": 5})
    socket = agent_socket(alice)
    assert socket.is_connected("/agent")
    ack = socket.emit("set_status", {"status": "available"}, namespace="/agent", callback=True)
    assert ack["ok"] is True
    assert ack["status"] == "available"
    socket.get_received("/agent")

    sid = call_sid(1)
    params = {
        "CallSid": sid,
        "AccountSid": ACCOUNT_SID,
        "From": "020 7946 0018",
        "To": "+441234567890",
        "CallStatus": "ringing",
    }
    unsigned = twilio_post("/webhooks/twilio/voice", params, signature=None)
    assert unsigned.status_code == 403
    assert unsigned.get_json()["error"]["code"] == "bad_signature"
    forged = twilio_post("/webhooks/twilio/voice", params, signature="bm90IGEgc2lnbmF0dXJl")
    assert forged.status_code == 403
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Interaction)) == 0

    first = twilio_post("/webhooks/twilio/voice", params)
    assert first.status_code == 200
    assert b"<Enqueue" in first.data
    assert f'waitUrl="{PUBLIC_BASE_URL}/webhooks/twilio/voice/wait"'.encode() in first.data
    retry = twilio_post("/webhooks/twilio/voice", params)
    assert retry.status_code == 200
    assert retry.data == first.data
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Interaction)) == 1

    offers = _events(socket, "offer")
    assert len(offers) == 1
    offer = offers[0]
    assert offer["screen_pop"]["customer"]["id"] == customer.id
    assert offer["screen_pop"]["customer"]["name"] == "Margaret Holloway"
    assert offer["interaction"]["channel"] == "voice"

    ack = socket.emit(
        "accept", {"reservation_id": offer["reservation_id"]}, namespace="/agent", callback=True
    )
    assert ack["ok"] is True, ack
    redirects = twilio_stub.wait_for(lambda r: r.call_sid == sid and "Url" in r.form)
    assert redirects[0].form["Url"] == (
        f"{PUBLIC_BASE_URL}/webhooks/twilio/voice/connect/{offer['reservation_id']}?leg=caller"
    )
    assert redirects[0].path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{sid}.json"
    agent_legs = twilio_stub.wait_for(lambda r: r.call_sid is None)
    assert agent_legs[0].form["To"] == "client:alice"

    connect = twilio_post(
        f"/webhooks/twilio/voice/connect/{offer['reservation_id']}",
        {"CallSid": sid},
        query={"leg": "caller"},
    )
    assert connect.status_code == 200
    assert f"cc-interaction-{offer['interaction']['id']}".encode() in connect.data

    status = {
        "CallSid": sid,
        "CallStatus": "completed",
        "SequenceNumber": "3",
        "CallDuration": "95",
    }
    assert twilio_post("/webhooks/twilio/voice/status", status).status_code == 200
    interaction = db.session.get(Interaction, offer["interaction"]["id"])
    db.session.refresh(interaction)
    assert interaction.status == "ended"
    assert interaction.outcome == "answered"
    assert interaction.duration_s == 95
    assert interaction.agent_id == alice.id
    reservation = db.session.get(Reservation, offer["reservation_id"])
    assert reservation.status == "accepted"
