"""The Twilio stub calls the app back over real HTTP, signed like Twilio."""

from __future__ import annotations

import time
from urllib.parse import parse_qs

import pytest
from twilio.request_validator import RequestValidator

from contact_center.agents.models import User
from contact_center.customers.services import create_customer
from contact_center.extensions import db
from contact_center.ivr.calls import get_twilio_client
from contact_center.routing import services as routing
from contact_center.routing.models import Interaction
from tests.conftest import AUTH_TOKEN, PUBLIC_BASE_URL, call_sid

STATUS_URL = PUBLIC_BASE_URL + "/webhooks/twilio/voice/status"


def _fresh(model, id_):
    db.session.expire_all()
    return db.session.get(model, id_)


def _eventually(check, timeout: float = 15.0):
    """Wait (generously) for the server threads to get somewhere; never asserts speed."""
    deadline = time.monotonic() + timeout
    while True:
        db.session.expire_all()
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.05)


@pytest.fixture
def stub(twilio_stub, live_server):
    twilio_stub.state.webhook_base_url = live_server.url
    return twilio_stub


def test_post_status_reaches_the_status_webhook_signed(app, stub, live_call):
    interaction, alice, _ = live_call
    code, body = stub.post_status(call_sid(1), "completed", duration=42, status_callback=STATUS_URL)
    assert code == 200 and "<Response" in body
    interaction = _fresh(Interaction, interaction.id)
    assert interaction.status == "ended" and interaction.outcome == "answered"
    assert interaction.duration_s == 42
    assert routing.get_store().load(alice.id, "voice") == 0
    # What went over the wire: the form Twilio sends, signed for the public URL.
    url, form, status, _ = stub.state.callbacks[-1]
    assert url == STATUS_URL and status == 200
    assert form["CallSid"] == call_sid(1) and form["CallStatus"] == "completed"
    assert form["SequenceNumber"] == "0" and form["CallDuration"] == "42"
    signature = RequestValidator(AUTH_TOKEN).compute_signature(url, form)
    assert RequestValidator(AUTH_TOKEN).validate(url, form, signature)


def test_a_stub_with_the_wrong_token_is_refused(app, stub, live_call):
    interaction, _, _ = live_call
    stub.state.auth_token = "not-the-token"  # noqa: S105
    try:
        code, _ = stub.post_status(call_sid(1), "completed", status_callback=STATUS_URL)
    finally:
        stub.state.auth_token = AUTH_TOKEN
    assert code == 403
    assert _fresh(Interaction, interaction.id).status == "active"


def test_the_consulted_leg_reports_its_end(client, app, stub, live_call, create_user, auth_header):
    interaction, alice, _ = live_call
    bob = create_user("bob")
    routing.set_agent_status(bob, "available")
    response = client.post(
        f"/api/v1/interactions/{interaction.id}/consult",
        json={"agent_id": bob.id},
        headers=auth_header(alice),
    )
    assert response.status_code == 200
    leg = _fresh(Interaction, interaction.id).consult_call_sid
    code, _ = stub.post_status(leg, "no-answer")
    assert code == 200
    interaction = _fresh(Interaction, interaction.id)
    assert interaction.consult_agent_id is None
    assert routing.get_store().load(bob.id, "voice") == 0


def test_click_to_call_end_to_end_with_calls_advancing_by_themselves(
    client, app, stub, create_user, auth_header
):
    stub.state.auto_advance = True
    alice = create_user("alice")
    routing.set_agent_status(alice, "available")
    ann = create_customer({"name": "Ann Example", "phones": ["+447700900200"], "emails": []})
    started = client.post(f"/api/v1/customers/{ann.id}/call", json={}, headers=auth_header(alice))
    assert started.status_code == 201, started.get_json()
    interaction_id = started.get_json()["id"]
    # The agent's leg answers, its TwiML rings the customer, who answers too: live.
    live = _eventually(lambda: _fresh(Interaction, interaction_id).status == "active")
    assert live, _fresh(Interaction, interaction_id).status
    interaction = _fresh(Interaction, interaction_id)
    # The stub keeps the TwiML once the app's answer is back: the call may be live before.
    assert _eventually(lambda: "twiml" in stub.state.calls.get(interaction.external_id, {}))
    agent_call = stub.state.calls[interaction.agent_call_sid]
    customer_call = stub.state.calls[interaction.external_id]
    assert agent_call["to"] == "client:alice" and customer_call["to"] == "+447700900200"
    assert f"cc-interaction-{interaction_id}" in agent_call["twiml"]
    assert f"cc-interaction-{interaction_id}" in customer_call["twiml"]
    # The agent's webhook was fetched once, signed for the public URL, and answered 200.
    fetched = [c for c in stub.state.callbacks if "/outbound/" in c[0]]
    assert sorted(parse_qs(c[0].split("?")[1])["leg"][0] for c in fetched) == ["agent", "customer"]
    assert all(c[0].startswith(PUBLIC_BASE_URL) and c[2] == 200 for c in fetched)
    # The customer hangs up after 42 s.
    code, _ = stub.post_status(interaction.external_id, "completed", duration=42)
    assert code == 200
    interaction = _fresh(Interaction, interaction_id)
    assert interaction.status == "ended" and interaction.outcome == "answered"
    assert interaction.duration_s == 42
    assert _fresh(User, alice.id).status == "available"
    assert routing.get_store().load(alice.id, "voice") == 0


def test_auto_advance_posts_the_events_asked_for(app, stub):
    """A call created with StatusCallbackEvent gets those callbacks, numbered in order."""
    stub.state.auto_advance = True
    call = get_twilio_client().calls.create(
        to="+447700900300",
        from_="+15005550006",
        url=PUBLIC_BASE_URL + "/webhooks/twilio/voice/fallback",
        status_callback=STATUS_URL,
        status_callback_event=["initiated", "ringing", "answered", "completed"],
    )
    answered = stub.wait_for_callback(lambda c: "/fallback" in c[0])
    assert answered and answered[0][2] == 200 and "<Record" in answered[0][3]
    statuses = [
        (c[1]["CallStatus"], c[1]["SequenceNumber"])
        for c in stub.state.callbacks
        if c[1]["CallSid"] == call.sid and c[0] == STATUS_URL
    ]
    assert statuses == [("initiated", "0"), ("ringing", "1"), ("in-progress", "2")]


def test_a_caller_who_hung_up_cannot_be_redirected_and_one_redirected_cannot_hang_up(app, stub):
    client = get_twilio_client()
    stub.incoming("CA" + "a" * 32, "+447700900001", "+441632960000", STATUS_URL)
    stub.incoming("CA" + "b" * 32, "+447700900002", "+441632960000", STATUS_URL)
    seen = []
    stub.state.on_update = lambda sid, form: seen.append((sid, form.get("Url")))
    assert stub.hang_up("CA" + "a" * 32) is True
    with pytest.raises(Exception, match="404|not found"):
        client.calls("CA" + "a" * 32).update(url=PUBLIC_BASE_URL + "/x", method="POST")
    client.calls("CA" + "b" * 32).update(url=PUBLIC_BASE_URL + "/connect", method="POST")
    assert seen == [("CA" + "b" * 32, PUBLIC_BASE_URL + "/connect")]
    assert stub.hang_up("CA" + "b" * 32) is False  # already in the conference


def test_a_long_run_keeps_only_the_latest_requests(app, stub):
    stub.state.max_recorded = 5
    client = get_twilio_client()
    for index in range(30):
        stub.incoming(f"CA{index:032d}", "+447700900001", "+441632960000", STATUS_URL)
        client.calls(f"CA{index:032d}").fetch()
    assert 5 <= len(stub.state.requests) <= 10
    assert stub.state.requests[-1].call_sid == f"CA{29:032d}"


def test_callbacks_go_round_the_web_processes(twilio_stub):
    """As Twilio's callbacks reach a load balancer: each web process takes its turn."""
    twilio_stub.state.webhook_base_url = "http://127.0.0.1:1001"
    twilio_stub.state.more_webhook_urls = ("http://127.0.0.1:1002",)
    url = "http://desk.example/webhooks/twilio/voice/status?leg=agent"
    targets = [twilio_stub._target(url) for _ in range(4)]
    assert {target.split("/webhooks")[0] for target in targets} == {
        "http://127.0.0.1:1001",
        "http://127.0.0.1:1002",
    }
    assert targets[0] != targets[1] and targets[0] == targets[2]
    assert all(target.endswith("/webhooks/twilio/voice/status?leg=agent") for target in targets)
