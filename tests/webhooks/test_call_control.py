"""Call control on the conference: hold, transfer, listen/whisper/barge, recording."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
import sqlalchemy as sa

from contact_center.audit import trail
from contact_center.extensions import db
from contact_center.routing import services as routing
from contact_center.routing.models import Interaction, Queue, Reservation
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
    [entry] = [
        e for e in trail("interaction", interaction.id) if e.action == "interaction.monitored"
    ]
    assert entry.actor_id == sam.id
    assert entry.after["mode"] == mode and entry.after["agent_id"] == alice.id
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


def _recorded_queue(interaction: Interaction, consent: str | None = None) -> None:
    interaction.queue.record_calls = True
    interaction.queue.recording_consent = consent
    db.session.commit()


def test_recorded_queue_plays_consent_and_records_the_conference(live_call, twilio_post):
    interaction, _, _ = live_call
    _recorded_queue(interaction, "We record calls to train our staff.")
    reservation_id = interaction_reservation(interaction)
    for leg, says in (
        ("caller", ["We record calls to train our staff."]),
        ("agent", ["Call from an unknown caller, General queue."]),
    ):
        response = twilio_post(
            f"{VOICE}/connect/{reservation_id}", {"CallSid": call_sid(1)}, query={"leg": leg}
        )
        root = ET.fromstring(response.data)  # noqa: S314  (our own TwiML)
        assert [s.text for s in root.findall("Say")] == says
        conference = root.find("Dial/Conference")
        assert conference.get("record") == "record-from-start"
        assert conference.get("recordingStatusCallback") == (
            f"http://cc.test{VOICE}/recording?interaction={interaction.id}"
        )

    # The conference's recording has no CallSid: the URL names the interaction.
    done = twilio_post(
        f"{VOICE}/recording",
        {
            "RecordingSid": "RE" + "b" * 32,
            "RecordingUrl": "https://api.twilio.com/rec/RE1",
            "RecordingStatus": "completed",
        },
        query={"interaction": str(interaction.id)},
    )
    assert done.status_code == 200
    db.session.refresh(interaction)
    assert interaction.recording_url == "https://api.twilio.com/rec/RE1"
    neither = twilio_post(
        f"{VOICE}/recording",
        {
            "RecordingSid": "RE" + "c" * 32,
            "RecordingUrl": "https://x.test/r",
            "RecordingStatus": "completed",
        },
    )
    assert neither.status_code == 400


def interaction_reservation(interaction: Interaction) -> str:
    return db.session.scalar(
        sa.select(Reservation.id).where(
            Reservation.interaction_id == interaction.id, Reservation.status == "accepted"
        )
    )


def test_unrecorded_queue_has_no_consent_and_no_recording(live_call, twilio_post):
    interaction, _, _ = live_call
    response = twilio_post(
        f"{VOICE}/connect/{interaction_reservation(interaction)}",
        {"CallSid": call_sid(1)},
        query={"leg": "caller"},
    )
    root = ET.fromstring(response.data)  # noqa: S314
    assert root.findall("Say") == []
    assert root.find("Dial/Conference").get("record") is None


def test_pause_and_resume_recording_is_audited(
    client, live_call, auth_header, twilio_stub, create_user
):
    interaction, alice, _ = live_call
    url = f"/api/v1/interactions/{interaction.id}/recording"
    not_recorded = client.post(url, json={"paused": True}, headers=auth_header(alice))
    assert not_recorded.status_code == 409
    _recorded_queue(interaction)

    paused = client.post(url, json={"paused": True}, headers=auth_header(alice))
    assert paused.status_code == 200, paused.get_json()
    assert paused.get_json()["recording_paused"] is True
    update = [r for r in twilio_stub.state.requests if "/Recordings/" in r.path][-1]
    assert update.path.endswith("/Recordings/Twilio.CURRENT.json")
    assert update.form == {"Status": "paused", "PauseBehavior": "skip"}
    again = client.post(url, json={"paused": True}, headers=auth_header(alice))
    assert again.status_code == 200
    assert len([r for r in twilio_stub.state.requests if "/Recordings/" in r.path]) == 1

    resumed = client.post(url, json={"paused": False}, headers=auth_header(alice))
    assert resumed.get_json()["recording_paused"] is False
    assert [r for r in twilio_stub.state.requests if "/Recordings/" in r.path][-1].form[
        "Status"
    ] == "in-progress"
    entries = trail("interaction", interaction.id)
    assert [(e.action, e.actor_id, e.after) for e in entries] == [
        ("recording.paused", alice.id, {"recording_paused": True}),
        ("recording.resumed", alice.id, {"recording_paused": False}),
    ]

    # Bad input and someone else's call change nothing.
    bob = create_user("bob")
    assert client.post(url, json={"paused": "yes"}, headers=auth_header(alice)).status_code == 422
    assert client.post(url, json={"paused": True}, headers=auth_header(bob)).status_code == 404
    assert len(trail("interaction", interaction.id)) == 2


def _status(twilio_post, sid: str, status: str, sequence: int):
    return twilio_post(
        f"{VOICE}/status",
        {"CallSid": sid, "CallStatus": status, "SequenceNumber": str(sequence)},
    )


def test_status_callbacks_record_when_each_leg_rang_and_was_picked_up(live_call, twilio_post):
    interaction, _, _ = live_call
    agent_leg = interaction.agent_call_sid
    assert _status(twilio_post, agent_leg, "ringing", 1).status_code == 200
    assert _status(twilio_post, agent_leg, "in-progress", 2).status_code == 200
    db.session.refresh(interaction)
    assert interaction.agent_ringing_at is not None
    assert interaction.agent_connected_at >= interaction.agent_ringing_at
    assert interaction.ringing_at is None and interaction.connected_at is None
    first_pickup = interaction.agent_connected_at

    # A repeated event (a new sequence number) keeps the first time.
    _status(twilio_post, agent_leg, "in-progress", 3)
    _status(twilio_post, call_sid(1), "in-progress", 1)
    db.session.refresh(interaction)
    assert interaction.agent_connected_at == first_pickup
    assert interaction.connected_at is not None

    # The agent's leg ending does not end the customer's call; the customer's leg does.
    _status(twilio_post, agent_leg, "completed", 4)
    db.session.refresh(interaction)
    assert interaction.status == "active"
    _status(twilio_post, call_sid(1), "completed", 2)
    db.session.refresh(interaction)
    assert interaction.status in ("wrapup", "ended") and interaction.outcome == "answered"
    payload = routing.interaction_payload(interaction)
    assert payload["agent_connected_at"].endswith("Z") and payload["ringing_at"] is None


def test_post_call_survey_keeps_the_callers_rating(live_call, twilio_post):
    interaction, _, _ = live_call
    interaction.queue.post_call_survey = True
    db.session.commit()
    connect = twilio_post(
        f"{VOICE}/connect/{interaction_reservation(interaction)}",
        {"CallSid": call_sid(1)},
        query={"leg": "caller"},
    )
    dial = ET.fromstring(connect.data).find("Dial")  # noqa: S314
    survey_url = f"{VOICE}/survey/{interaction.id}"
    assert dial.get("action") == f"http://cc.test{survey_url}"

    ask = ET.fromstring(twilio_post(survey_url, {"CallSid": call_sid(1)}).data)  # noqa: S314
    assert ask.find("Gather").get("numDigits") == "1"
    wrong = ET.fromstring(  # noqa: S314
        twilio_post(survey_url, {"CallSid": call_sid(1), "Digits": "9"}).data
    )
    assert wrong.find("Gather").get("action").endswith("?attempt=2")
    for _ in range(2):  # a retried delivery answers the same and changes nothing
        rated = twilio_post(survey_url, {"CallSid": call_sid(1), "Digits": "4"})
        assert b"Thank you for your rating" in rated.data
    db.session.refresh(interaction)
    assert interaction.satisfaction == 4
    stranger = twilio_post(survey_url, {"CallSid": call_sid(2), "Digits": "1"})
    assert b"<Hangup" in stranger.data
    db.session.refresh(interaction)
    assert interaction.satisfaction == 4
