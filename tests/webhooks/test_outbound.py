"""Click-to-call: an agent calls a customer (agent's leg first, then the customer's)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa

from contact_center.agents.models import User
from contact_center.customers.services import create_customer
from contact_center.extensions import db
from contact_center.routing import services as routing
from contact_center.routing.models import Interaction
from tests.conftest import VOICE, call_sid

CALLER_ID = "+15005550006"


@pytest.fixture
def app_config(app_config):
    return {**app_config, "OUTBOUND_WRAPUP_S": 30, "TWILIO_CALLER_ID": CALLER_ID}


@pytest.fixture
def ann(app):
    return create_customer(
        {"name": "Ann Example", "phones": ["+44 7700 900200", "07700 900201"], "emails": []}
    )


@pytest.fixture
def alice(create_user):
    user = create_user("alice")
    routing.set_agent_status(user, "available")
    return user


def _fresh(model, id_):
    db.session.expire_all()
    return db.session.get(model, id_)


def _load(user: User) -> int:
    return routing.get_store().load(user.id, "voice")


def _created_calls(stub) -> list:
    return [r for r in stub.state.requests if r.call_sid is None and r.path.endswith("/Calls.json")]


def _url(form: dict[str, str]) -> tuple[str, dict[str, str]]:
    parts = urlsplit(form["Url"])
    return parts.path, {k: v[-1] for k, v in parse_qs(parts.query).items()}


def _start(client, auth_header, user, customer, body=None):
    return client.post(
        f"/api/v1/customers/{customer.id}/call", json=body or {}, headers=auth_header(user)
    )


def test_click_to_call_rings_the_agent_then_the_customer(
    client, auth_header, alice, ann, twilio_stub, twilio_post
):
    started = _start(client, auth_header, alice, ann)
    assert started.status_code == 201, started.get_json()
    payload = started.get_json()
    assert payload["direction"] == "outbound" and payload["status"] == "connecting"
    interaction = _fresh(Interaction, payload["id"])
    assert interaction.agent_id == alice.id and interaction.customer_id == ann.id
    assert interaction.to_address == "+447700900200"  # the first of her numbers
    assert _load(alice) == 1 and _fresh(User, alice.id).status == "busy"
    # The agent's leg is rung first; the customer not yet.
    (agent_leg,) = _created_calls(twilio_stub)
    assert agent_leg.form["To"] == "client:alice" and agent_leg.form["From"] == CALLER_ID
    path, query = _url(agent_leg.form)
    assert path == f"{VOICE}/outbound/{interaction.id}" and query == {"leg": "agent"}
    assert agent_leg.form["StatusCallback"].endswith(f"{VOICE}/status")
    agent_sid = interaction.agent_call_sid
    assert agent_sid and agent_sid.startswith("CA")
    # The agent answers: their leg joins the conference, and the customer is dialled.
    joined = twilio_post(f"{VOICE}/outbound/{interaction.id}", {"CallSid": agent_sid}, query=query)
    assert joined.status_code == 200
    assert f"cc-interaction-{interaction.id}".encode() in joined.data
    assert b"Calling Ann Example." in joined.data
    agent_leg_call, customer_leg = _created_calls(twilio_stub)
    assert customer_leg.form["To"] == "+447700900200" and customer_leg.form["From"] == CALLER_ID
    path, customer_query = _url(customer_leg.form)
    assert path == f"{VOICE}/outbound/{interaction.id}" and customer_query == {"leg": "customer"}
    # A retried delivery answers the same and dials no one again.
    again = twilio_post(f"{VOICE}/outbound/{interaction.id}", {"CallSid": agent_sid}, query=query)
    assert again.data == joined.data and len(_created_calls(twilio_stub)) == 2
    interaction = _fresh(Interaction, interaction.id)
    customer_sid = interaction.external_id
    assert customer_sid and customer_sid != agent_sid
    # The customer answers: the call is live.
    live = twilio_post(
        f"{VOICE}/outbound/{interaction.id}", {"CallSid": customer_sid}, query=customer_query
    )
    assert f"cc-interaction-{interaction.id}".encode() in live.data
    interaction = _fresh(Interaction, interaction.id)
    assert interaction.status == "active" and interaction.answered_at is not None
    # The customer hangs up: answered, and the agent wraps up (OUTBOUND_WRAPUP_S).
    twilio_post(
        f"{VOICE}/status",
        {
            "CallSid": customer_sid,
            "CallStatus": "completed",
            "SequenceNumber": "2",
            "CallDuration": "42",
        },
    )
    interaction = _fresh(Interaction, interaction.id)
    assert interaction.status == "wrapup" and interaction.outcome == "answered"
    assert interaction.duration_s == 42
    assert _fresh(User, alice.id).status == "wrapup" and _load(alice) == 1
    routing.wrapup_done(_fresh(User, alice.id), interaction.id)
    assert _load(alice) == 0 and _fresh(User, alice.id).status == "available"


@pytest.mark.parametrize(
    ("twilio_status", "outcome"),
    [("busy", "busy"), ("no-answer", "no_answer"), ("failed", "failed")],
)
def test_an_unanswered_customer_ends_the_call_and_frees_the_agent(
    client, auth_header, alice, ann, twilio_stub, twilio_post, twilio_status, outcome
):
    interaction_id = _start(client, auth_header, alice, ann).get_json()["id"]
    agent_sid = _fresh(Interaction, interaction_id).agent_call_sid
    twilio_post(
        f"{VOICE}/outbound/{interaction_id}", {"CallSid": agent_sid}, query={"leg": "agent"}
    )
    customer_sid = _fresh(Interaction, interaction_id).external_id
    twilio_post(
        f"{VOICE}/status",
        {"CallSid": customer_sid, "CallStatus": twilio_status, "SequenceNumber": "1"},
    )
    interaction = _fresh(Interaction, interaction_id)
    assert interaction.status == "ended" and interaction.outcome == outcome
    assert _load(alice) == 0 and _fresh(User, alice.id).status == "available"
    hung_up = [r for r in twilio_stub.state.requests if r.form.get("Status") == "completed"]
    assert [r.call_sid for r in hung_up] == [agent_sid]  # the agent waiting alone is let go


def test_the_agent_not_answering_ends_the_attempt(
    client, auth_header, alice, ann, twilio_stub, twilio_post
):
    interaction_id = _start(client, auth_header, alice, ann).get_json()["id"]
    agent_sid = _fresh(Interaction, interaction_id).agent_call_sid
    twilio_post(
        f"{VOICE}/status",
        {"CallSid": agent_sid, "CallStatus": "no-answer", "SequenceNumber": "0"},
    )
    interaction = _fresh(Interaction, interaction_id)
    assert interaction.status == "ended" and interaction.outcome == "failed"
    assert interaction.external_id is None and len(_created_calls(twilio_stub)) == 1
    assert _load(alice) == 0
    late = twilio_post(
        f"{VOICE}/outbound/{interaction_id}", {"CallSid": agent_sid}, query={"leg": "agent"}
    )
    assert b"<Hangup" in late.data and len(_created_calls(twilio_stub)) == 1


def test_a_chosen_number_must_be_the_customers(client, auth_header, alice, ann, twilio_stub):
    chosen = _start(client, auth_header, alice, ann, {"phone": "07700 900201"})
    assert chosen.status_code == 201, chosen.get_json()
    assert _fresh(Interaction, chosen.get_json()["id"]).to_address == "+447700900201"
    assert _created_calls(twilio_stub)[-1].form["To"] == "client:alice"


def test_click_to_call_refusals_change_nothing(
    client, auth_header, alice, ann, create_user, twilio_stub
):
    nobody = create_customer({"name": "No Phone", "emails": ["np@example.com"]})
    cases = [
        (ann, {"phone": "+447700900999"}, 422, "phone"),
        (ann, {"phone": "not a number"}, 422, "phone"),
        (ann, {"phone": 447700900200}, 422, "phone"),
        (nobody, {}, 422, "phone"),
    ]
    for customer, body, status, field in cases:
        response = _start(client, auth_header, alice, customer, body)
        assert response.status_code == status, (body, response.get_json())
        assert field in response.get_json()["error"]["fields"]
    missing = client.post("/api/v1/customers/999/call", json={}, headers=auth_header(alice))
    assert missing.status_code == 404
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Interaction)) == 0
    assert twilio_stub.state.requests == [] and _load(alice) == 0


def test_click_to_call_needs_free_voice_capacity(client, auth_header, alice, ann, twilio_stub):
    first = _start(client, auth_header, alice, ann)
    assert first.status_code == 201
    second = _start(client, auth_header, alice, ann)
    assert second.status_code == 409, second.get_json()
    assert second.get_json()["error"]["code"] == "conflict"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Interaction)) == 1
    assert len(_created_calls(twilio_stub)) == 1 and _load(alice) == 1


def test_an_agent_on_a_call_gets_no_offer_and_cannot_dial_out(
    client, auth_header, alice, ann, twilio_post
):
    routing.create_queue(name="General", channels=["voice"], is_default=True)
    db.session.commit()
    assert _start(client, auth_header, alice, ann).status_code == 201
    twilio_post(VOICE, {"CallSid": call_sid(5), "From": "+447700900123", "To": "+4420"})
    assert routing.pending_offer(_fresh(User, alice.id)) is None
    routing.rebuild_state(force=True)  # the outbound call's slot is rebuilt from the database
    assert _load(alice) == 1 and routing.pending_offer(_fresh(User, alice.id)) is None


def test_click_to_call_needs_a_signed_in_user(client, ann):
    assert client.post(f"/api/v1/customers/{ann.id}/call", json={}).status_code == 401


def test_twilio_refusing_the_agent_leg_is_a_502_and_frees_the_agent(
    client, auth_header, alice, ann, twilio_stub
):
    twilio_stub.state.refuse.add("call-create")
    response = _start(client, auth_header, alice, ann)
    assert response.status_code == 502, response.get_json()
    assert response.get_json()["error"]["code"] == "upstream_error"
    (attempt,) = db.session.scalars(sa.select(Interaction)).all()
    assert attempt.status == "ended" and attempt.outcome == "failed"
    assert _load(alice) == 0 and _fresh(User, alice.id).status == "available"
