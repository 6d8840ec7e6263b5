"""The agent's leg rings the endpoint they chose: browser, phone or SIP.

The agent leg is a Twilio REST call whose `To` is the address (`client:<identity>` for the
Voice SDK in the browser, an E.164 number, a `sip:` URI: Twilio's Calls API dials all
three), and whose TwiML (`/voice/connect/...?leg=agent`, or `/voice/outbound/...?leg=agent`
for click-to-call) puts it in the interaction's conference. Both are checked at Twilio's
boundary: the REST stub's recorded requests and the TwiML the leg is given.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from urllib.parse import parse_qs, urlsplit

import pytest

from contact_center.customers.services import create_customer
from contact_center.extensions import db
from contact_center.routing import services as routing
from contact_center.routing.models import Interaction
from tests.conftest import ACCOUNT_SID, PUBLIC_BASE_URL, VOICE, call_sid

CALLER_ID = "+15005550006"
ENDPOINTS = [
    pytest.param({"kind": "browser"}, "client:alice", id="browser"),
    pytest.param({"kind": "phone", "address": "07911 123456"}, "+447911123456", id="phone"),
    pytest.param(
        {"kind": "sip", "address": "sip:alice@pbx.example.com;transport=tls"},
        "sip:alice@pbx.example.com;transport=tls",
        id="sip",
    ),
]


@pytest.fixture
def app_config(app_config):
    return {**app_config, "TWILIO_CALLER_ID": CALLER_ID}


def _created_calls(stub) -> list:
    return [r for r in stub.state.requests if r.call_sid is None and r.path.endswith("/Calls.json")]


def _url(form: dict[str, str]) -> tuple[str, dict[str, str]]:
    parts = urlsplit(form["Url"])
    return parts.path, {k: v[-1] for k, v in parse_qs(parts.query).items()}


def _choose(client, auth_header, user, body) -> None:
    response = client.patch("/api/v1/agents/me/endpoint", json=body, headers=auth_header(user))
    assert response.status_code == 200, response.get_json()


def _conference_leg(twiml: bytes, interaction_id: int) -> ET.Element:
    root = ET.fromstring(twiml)  # noqa: S314  (our own TwiML)
    conference = root.find("Dial/Conference")
    assert conference is not None, twiml
    assert conference.text == f"cc-interaction-{interaction_id}"
    assert conference.get("endConferenceOnExit") == "true"
    return root


@pytest.mark.parametrize(("choice", "address"), ENDPOINTS)
def test_an_accepted_call_rings_the_chosen_endpoint(
    client, auth_header, create_user, agent_socket, twilio_post, twilio_stub, choice, address
):
    create_customer({"name": "Ann Example", "phones": ["+442079460018"]})
    routing.create_queue(name="General", channels=["voice"], is_default=True)
    db.session.commit()
    alice = create_user("alice")
    _choose(client, auth_header, alice, choice)
    socket = agent_socket(alice)
    socket.emit("set_status", {"status": "available"}, namespace="/agent", callback=True)
    twilio_post(VOICE, {"CallSid": call_sid(1), "From": "+442079460018", "To": "+4420"})
    offer = next(e["args"][0] for e in socket.get_received("/agent") if e["name"] == "offer")
    ack = socket.emit(
        "accept", {"reservation_id": offer["reservation_id"]}, namespace="/agent", callback=True
    )
    assert ack["ok"] is True, ack

    (leg,) = twilio_stub.wait_for(lambda r: r.call_sid is None and "To" in r.form)
    assert leg.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json"
    assert leg.form["To"] == address
    assert leg.form["From"] == CALLER_ID
    path, query = _url(leg.form)
    assert path == f"{VOICE}/connect/{offer['reservation_id']}" and query == {"leg": "agent"}
    assert leg.form["StatusCallback"] == f"{PUBLIC_BASE_URL}{VOICE}/status"

    twiml = twilio_post(
        f"{VOICE}/connect/{offer['reservation_id']}", {"CallSid": call_sid(2)}, query=query
    )
    assert twiml.status_code == 200
    root = _conference_leg(twiml.data, offer["interaction"]["id"])
    assert root.find("Say").text == "Call from Ann Example, General queue."


@pytest.mark.parametrize(("choice", "address"), ENDPOINTS)
def test_click_to_call_rings_the_chosen_endpoint_first(
    client, auth_header, create_user, twilio_post, twilio_stub, choice, address
):
    ann = create_customer({"name": "Ann Example", "phones": ["+442079460018"]})
    alice = create_user("alice")
    routing.set_agent_status(alice, "available")
    _choose(client, auth_header, alice, choice)

    started = client.post(f"/api/v1/customers/{ann.id}/call", json={}, headers=auth_header(alice))
    assert started.status_code == 201, started.get_json()
    interaction_id = started.get_json()["id"]
    (leg,) = _created_calls(twilio_stub)
    assert leg.form["To"] == address and leg.form["From"] == CALLER_ID
    path, query = _url(leg.form)
    assert path == f"{VOICE}/outbound/{interaction_id}" and query == {"leg": "agent"}

    agent_sid = db.session.get(Interaction, interaction_id).agent_call_sid
    twiml = twilio_post(f"{VOICE}/outbound/{interaction_id}", {"CallSid": agent_sid}, query=query)
    root = _conference_leg(twiml.data, interaction_id)
    assert root.find("Say").text == "Calling Ann Example."
    # The agent is in: now, and only now, the customer is dialled.
    assert [r.form["To"] for r in _created_calls(twilio_stub)] == [address, "+442079460018"]


def test_a_call_the_browser_places_itself_dials_no_one(twilio_post, twilio_stub):
    params = {"CallSid": call_sid(3), "From": "client:alice", "To": "+442079460018"}
    assert twilio_post(f"{VOICE}/client", params, signature=None).status_code == 403
    response = twilio_post(f"{VOICE}/client", params)
    assert response.status_code == 200
    root = ET.fromstring(response.data)  # noqa: S314  (our own TwiML)
    assert [child.tag for child in root] == ["Say", "Hangup"]
    assert "customer" in root.find("Say").text
    assert _created_calls(twilio_stub) == []
    assert twilio_post(f"{VOICE}/client", {"From": "client:alice"}).status_code == 400
