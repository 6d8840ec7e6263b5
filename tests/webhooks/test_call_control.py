"""Call control on the conference: hold, blind transfer, supervisor listen/whisper/barge."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from contact_center.extensions import db
from contact_center.routing import services as routing
from contact_center.routing.models import Queue
from tests.conftest import ACCOUNT_SID, VOICE, call_sid


def _participant_updates(stub):
    return [r for r in stub.state.requests if r.conference_sid and r.call_sid]


def test_hold_and_resume_counts_hold_time(client, live_call, auth_header, twilio_stub, create_user):
    interaction, alice, _ = live_call
    url = f"/api/v1/interactions/{interaction.id}/hold"
    held = client.post(url, json={"hold": True}, headers=auth_header(alice))
    assert held.status_code == 200, held.get_json()
    update = _participant_updates(twilio_stub)[-1]
    assert update.call_sid == call_sid(1) and update.form["Hold"] == "true"
    assert update.path.startswith(f"/2010-04-01/Accounts/{ACCOUNT_SID}/Conferences/CF")
    lookups = [r for r in twilio_stub.state.requests if r.conference_sid is None and r.query]
    assert lookups[-1].query["FriendlyName"] == f"cc-interaction-{interaction.id}"
    db.session.refresh(interaction)
    assert interaction.on_hold is True
    assert client.post(url, json={"hold": False}, headers=auth_header(alice)).status_code == 200
    assert _participant_updates(twilio_stub)[-1].form["Hold"] == "false"
    db.session.refresh(interaction)
    assert interaction.on_hold is False and interaction.hold_s >= 0
    # Someone else's call: not found; bad body: 422.
    bob = create_user("bob")
    assert client.post(url, json={"hold": True}, headers=auth_header(bob)).status_code == 404
    assert client.post(url, json={"hold": "maybe"}, headers=auth_header(alice)).status_code == 422


def test_blind_transfer_frees_the_agent_and_requeues_the_caller(
    client, live_call, auth_header, twilio_stub, twilio_post, create_user
):
    interaction, alice, socket = live_call
    bob = create_user("bob")
    routing.set_agent_status(bob, "available")
    billing = db.session.scalar(sa.select(Queue).where(Queue.name == "Billing"))
    moved = client.post(
        f"/api/v1/interactions/{interaction.id}/transfer",
        json={"queue_id": billing.id},
        headers=auth_header(alice),
    )
    assert moved.status_code == 200, moved.get_json()
    db.session.refresh(interaction)
    assert interaction.queue_id == billing.id and interaction.agent_id is None
    # Offered on at once: bob has been free longer than alice, who has just been freed.
    pending = routing.pending_offer(bob)
    assert interaction.status == "offered" and pending.interaction_id == interaction.id
    assert routing.held_interactions(alice) == []
    assert routing.get_store().load(alice.id, "voice") == 0
    redirect = twilio_stub.wait_for(
        lambda r: r.call_sid == call_sid(1) and "requeue" in r.form.get("Url", "")
    )
    assert redirect
    assert twilio_stub.wait_for(
        lambda r: r.call_sid == interaction.agent_call_sid and r.form.get("Status") == "completed"
    )
    routing.reject(bob, pending.id)  # bob declines: the caller waits in Billing
    routing.set_agent_status(bob, "away")
    routing.set_agent_status(db.session.get(type(bob), alice.id), "away")
    requeue = twilio_post(f"{VOICE}/requeue/{interaction.id}", {"CallSid": call_sid(1)})
    assert b"<Enqueue" in requeue.data and b"Billing" in requeue.data
    db.session.refresh(alice)
    assert alice.status == "away"
    assert client.post(
        f"/api/v1/interactions/{interaction.id}/transfer",
        json={"queue_id": 999},
        headers=auth_header(alice),
    ).status_code in (404, 422)


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("listen", {"Muted": "true"}),
        ("whisper", {"Coaching": "true"}),
        ("barge", {"Muted": "false"}),
    ],
)
def test_supervisor_monitoring(
    client, live_call, auth_header, twilio_stub, create_user, mode, expected
):
    interaction, alice, _ = live_call
    sam = create_user("sam", role="supervisor")
    sam.voice_endpoint = "+447700900999"
    db.session.commit()
    joined = client.post(
        f"/api/v1/interactions/{interaction.id}/monitor",
        json={"mode": mode},
        headers=auth_header(sam),
    )
    assert joined.status_code == 201, joined.get_json()
    created = [
        r
        for r in twilio_stub.state.requests
        if r.conference_sid and r.call_sid is None and r.method == "POST"
    ][-1]
    assert created.form["To"] == "+447700900999"
    for key, value in expected.items():
        assert created.form[key] == value
    if mode == "whisper":
        assert created.form["CallSidToCoach"] == interaction.agent_call_sid
    assert (
        client.post(
            f"/api/v1/interactions/{interaction.id}/monitor",
            json={"mode": mode},
            headers=auth_header(alice),
        ).status_code
        == 403
    )


def test_no_call_control_before_the_call_is_connected(client, app, create_user, auth_header):
    queue = routing.create_queue(name="General", channels=["email"], is_default=True)
    db.session.commit()
    sup = create_user("sam", role="supervisor")
    email = routing.create_interaction(channel="email", queue=queue, external_id="m1")
    response = client.post(
        f"/api/v1/interactions/{email.id}/hold", json={"hold": True}, headers=auth_header(sup)
    )
    assert response.status_code == 409
