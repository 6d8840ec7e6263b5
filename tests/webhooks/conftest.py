"""Fixtures for the Twilio webhook tests: a call answered by an agent."""

from __future__ import annotations

import pytest

from contact_center.extensions import db
from contact_center.routing import services as routing
from contact_center.routing.models import Interaction
from tests.conftest import call_sid

VOICE = "/webhooks/twilio/voice"


@pytest.fixture
def live_call(app, twilio_post, create_user, agent_socket):
    """A call answered by alice, caller in the conference."""
    routing.create_queue(name="General", channels=["voice"], is_default=True)
    routing.create_queue(name="Billing", channels=["voice"])
    db.session.commit()
    alice = create_user("alice")
    socket = agent_socket(alice)
    socket.emit("set_status", {"status": "available"}, namespace="/agent", callback=True)
    twilio_post(VOICE, {"CallSid": call_sid(1), "From": "+447700900123", "To": "+4420"})
    offer = next(e["args"][0] for e in socket.get_received("/agent") if e["name"] == "offer")
    socket.emit(
        "accept", {"reservation_id": offer["reservation_id"]}, namespace="/agent", callback=True
    )
    twilio_post(
        f"{VOICE}/connect/{offer['reservation_id']}",
        {"CallSid": call_sid(1)},
        query={"leg": "caller"},
    )
    interaction = db.session.get(Interaction, offer["interaction"]["id"])
    db.session.refresh(interaction)
    assert interaction.status == "active" and interaction.agent_call_sid
    return interaction, alice, socket
