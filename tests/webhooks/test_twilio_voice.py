"""Twilio Voice webhooks: signatures, validation, idempotency, abandon, wait, connect."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from contact_center.board import live
from contact_center.extensions import db
from contact_center.routing import services as routing
from contact_center.routing.models import Interaction, Reservation
from contact_center.webhook_receipts import WebhookReceipt
from tests.conftest import PUBLIC_BASE_URL, call_sid, sign

VOICE = "/webhooks/twilio/voice"


def _count(model) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def _call(n: int, **extra) -> dict[str, str]:
    return {"CallSid": call_sid(n), "From": "+442079460018", "To": "+441234567890", **extra}


@pytest.mark.parametrize(
    "path",
    [
        VOICE,
        f"{VOICE}/wait",
        f"{VOICE}/enqueue-result",
        f"{VOICE}/status",
        f"{VOICE}/connect/abc?leg=caller",
    ],
)
def test_every_voice_webhook_refuses_unsigned_and_forged(twilio_post, path):
    params = _call(1, CallStatus="completed", QueueResult="hangup")
    assert twilio_post(path, params, signature=None).status_code == 403
    assert twilio_post(path, params, signature="Zm9yZ2Vk").status_code == 403
    assert _count(Interaction) == 0
    assert _count(WebhookReceipt) == 0


def test_signature_covers_the_parameters(client):
    params = _call(1)
    signature = sign(PUBLIC_BASE_URL + VOICE, params)
    tampered = {**params, "From": "+15550000000"}
    response = client.post(VOICE, data=tampered, headers={"X-Twilio-Signature": signature})
    assert response.status_code == 403
    assert _count(Interaction) == 0


def test_without_auth_token_voice_is_refused(app_config, twilio_stub):
    from contact_center import create_app

    app_config["TWILIO_AUTH_TOKEN"] = None
    app = create_app(app_config)
    response = app.test_client().post(VOICE, data=_call(1), headers={"X-Twilio-Signature": "x"})
    assert response.status_code == 403


@pytest.mark.parametrize(
    "params",
    [{"From": "+442079460018"}, {"CallSid": "not-a-sid"}, {"CallSid": "CA" + "z" * 32}],
)
def test_malformed_incoming_call_is_400_and_writes_nothing(twilio_post, params):
    response = twilio_post(VOICE, params)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "bad_request"
    assert "CallSid" in response.get_json()["error"]["fields"]
    assert _count(Interaction) == 0
    assert _count(WebhookReceipt) == 0


def test_malformed_status_callback_is_400_and_changes_nothing(twilio_post):
    twilio_post(VOICE, _call(1))
    response = twilio_post(f"{VOICE}/status", _call(1, CallStatus="exploded"))
    assert response.status_code == 400
    assert _count(WebhookReceipt) == 1  # the incoming call's only
    assert "CallStatus" in response.get_json()["error"]["fields"]


def test_unknown_caller_is_queued_with_suggestions(twilio_post):
    response = twilio_post(VOICE, _call(2, From="+447700900999"))
    assert response.status_code == 200
    interaction = db.session.scalar(sa.select(Interaction))
    assert interaction.customer_id is None
    assert interaction.status == "queued"


def test_abandon_while_waiting_removes_from_queue(twilio_post):
    from contact_center.routing.services import get_store, queue_position

    twilio_post(VOICE, _call(3))
    interaction = db.session.scalar(sa.select(Interaction))
    assert queue_position(interaction) == 1
    wait = twilio_post(f"{VOICE}/wait", {"CallSid": call_sid(3), "QueuePosition": "1"})
    assert b"number 1 in the queue" in wait.data
    status = _call(3, CallStatus="completed", SequenceNumber="1")
    assert twilio_post(f"{VOICE}/status", status).status_code == 200
    db.session.refresh(interaction)
    assert interaction.status == "ended"
    assert interaction.outcome == "abandoned"
    assert get_store().waiting(interaction.queue_id) == []
    # A retried callback replays the answer and changes nothing.
    receipts = _count(WebhookReceipt)
    assert twilio_post(f"{VOICE}/status", status).status_code == 200
    assert _count(WebhookReceipt) == receipts


def test_enqueue_result_hangup_abandons(twilio_post):
    twilio_post(VOICE, _call(4))
    result = twilio_post(f"{VOICE}/enqueue-result", _call(4, QueueResult="hangup"))
    assert result.status_code == 200
    interaction = db.session.scalar(sa.select(Interaction))
    assert interaction.outcome == "abandoned"


def test_status_for_unknown_call_is_accepted_and_ignored(twilio_post):
    response = twilio_post(f"{VOICE}/status", _call(5, CallStatus="completed", SequenceNumber="0"))
    assert response.status_code == 200
    assert _count(Interaction) == 0


def test_connect_for_unknown_reservation_hangs_up_politely(twilio_post):
    response = twilio_post(
        f"{VOICE}/connect/nope", {"CallSid": call_sid(6)}, query={"leg": "caller"}
    )
    assert response.status_code == 200
    assert b"<Hangup" in response.data
    bad_leg = twilio_post(f"{VOICE}/connect/nope", {"CallSid": call_sid(6)}, query={"leg": "boss"})
    assert bad_leg.status_code == 400


def test_a_caller_gone_before_the_redirect_is_abandoned_not_answered(
    twilio_post, create_user, agent_socket, twilio_stub
):
    alice = create_user("alice")
    socket = agent_socket(alice)
    socket.emit("set_status", {"status": "available"}, namespace="/agent", callback=True)
    twilio_stub.state.gone.add(call_sid(7))  # the caller hung up before the redirect
    twilio_post(VOICE, _call(7))
    reservation = db.session.scalar(sa.select(Reservation))
    ack = socket.emit(
        "accept", {"reservation_id": reservation.id}, namespace="/agent", callback=True
    )
    assert ack["ok"] is False and ack["error"]["code"] == "conflict"
    assert "hung up" in ack["error"]["message"]
    interaction = db.session.scalar(sa.select(Interaction))
    db.session.refresh(interaction)
    assert (interaction.status, interaction.outcome) == ("ended", "abandoned")
    assert interaction.answered_at is None
    db.session.refresh(alice)
    assert routing.agent_status_payload(alice)["status"] == "available"  # free, no wrap-up
    today = live.snapshot()["queues"][0]["today"]
    assert (today["answered"], today["abandoned"]) == (0, 1)
    # Twilio's own report of the hang-up, arriving after, changes nothing.
    twilio_post(
        f"{VOICE}/status", _call(7, CallStatus="completed", SequenceNumber="2", CallDuration="0")
    )
    db.session.refresh(interaction)
    assert (interaction.status, interaction.outcome) == ("ended", "abandoned")
    assert live.snapshot()["queues"][0]["today"]["abandoned"] == 1


def test_wait_announces_position_and_estimated_wait(twilio_post, create_user, agent_socket):
    alice = create_user("alice")
    socket = agent_socket(alice)
    socket.emit("set_status", {"status": "available"}, namespace="/agent", callback=True)
    twilio_post(VOICE, _call(10))
    offer = next(e["args"][0] for e in socket.get_received("/agent") if e["name"] == "offer")
    socket.emit(
        "accept", {"reservation_id": offer["reservation_id"]}, namespace="/agent", callback=True
    )
    twilio_post(VOICE, _call(11))
    wait = twilio_post(f"{VOICE}/wait", {"CallSid": call_sid(11), "QueuePosition": "1"})
    # One agent staffed, default 180 s handle time: (1 - 0.5) x 180 s = 90 s.
    assert b"You are number 1 in the queue. Your estimated wait is about 2 minutes." in wait.data


def _leave(twilio_post, n: int, digit: str):
    options = twilio_post(f"{VOICE}/wait", {"CallSid": call_sid(n)})
    assert b"press 1" in options.data and b"/webhooks/twilio/voice/wait-option" in options.data
    left = twilio_post(f"{VOICE}/wait-option", {"CallSid": call_sid(n), "Digits": digit})
    assert b"<Leave" in left.data
    return twilio_post(f"{VOICE}/enqueue-result", _call(n, QueueResult="leave"))


def test_callback_request_keeps_the_place(twilio_post):
    twilio_post(VOICE, _call(20))
    twilio_post(VOICE, _call(21))
    result = _leave(twilio_post, 21, "1")
    assert b"call you back" in result.data and b"<Hangup" in result.data
    original = db.session.scalar(
        sa.select(Interaction).where(Interaction.external_id == call_sid(21))
    )
    assert original.outcome == "callback" and original.left_at_position == 2
    callback = db.session.scalar(sa.select(Interaction).where(Interaction.channel == "callback"))
    assert callback.origin_interaction_id == original.id
    assert callback.queue_score == original.queue_score and callback.status == "queued"
    from contact_center.routing.services import queue_position

    assert queue_position(callback) == 2  # still behind call 20, as before


def test_voicemail_option_while_waiting(twilio_post):
    twilio_post(VOICE, _call(22))
    result = _leave(twilio_post, 22, "2")
    assert b"<Record" in result.data
    interaction = db.session.scalar(sa.select(Interaction))
    assert interaction.outcome == "voicemail"


def test_other_keys_keep_the_caller_waiting(twilio_post):
    twilio_post(VOICE, _call(23))
    stay = twilio_post(f"{VOICE}/wait-option", {"CallSid": call_sid(23), "Digits": "5"})
    assert b"<Leave" not in stay.data
    assert db.session.scalar(sa.select(Interaction)).status == "queued"


def test_max_wait_leads_to_voicemail(twilio_post):
    from datetime import timedelta

    twilio_post(VOICE, _call(24))
    interaction = db.session.scalar(sa.select(Interaction))
    interaction.queue.max_wait_s = 60
    interaction.enqueued_at = interaction.enqueued_at - timedelta(seconds=61)
    db.session.commit()
    left = twilio_post(f"{VOICE}/wait", {"CallSid": call_sid(24)})
    assert b"<Leave" in left.data
    result = twilio_post(f"{VOICE}/enqueue-result", _call(24, QueueResult="leave"))
    assert b"<Record" in result.data


def test_known_customer_who_abandons_gets_a_callback(twilio_post):
    from contact_center.customers.services import create_customer

    create_customer({"name": "Known", "phones": ["+442079460018"]})
    twilio_post(VOICE, _call(25))
    twilio_post(f"{VOICE}/status", _call(25, CallStatus="completed", SequenceNumber="1"))
    abandoned = db.session.scalar(sa.select(Interaction).where(Interaction.channel == "voice"))
    assert abandoned.outcome == "abandoned" and abandoned.left_at_position == 1
    callback = db.session.scalar(sa.select(Interaction).where(Interaction.channel == "callback"))
    assert callback.status == "queued" and callback.customer_id == abandoned.customer_id


def test_accepted_callback_calls_the_agent_then_the_customer(
    twilio_post, create_user, agent_socket, twilio_stub
):
    from contact_center.customers.services import create_customer

    create_customer({"name": "Known", "phones": ["+442079460018"]})
    twilio_post(VOICE, _call(26))
    _leave(twilio_post, 26, "1")
    alice = create_user("alice")
    socket = agent_socket(alice)
    socket.emit("set_status", {"status": "available"}, namespace="/agent", callback=True)
    offer = next(e["args"][0] for e in socket.get_received("/agent") if e["name"] == "offer")
    assert offer["interaction"]["channel"] == "callback"
    assert offer["screen_pop"]["customer"]["name"] == "Known"
    socket.emit(
        "accept", {"reservation_id": offer["reservation_id"]}, namespace="/agent", callback=True
    )
    dials = twilio_stub.wait_for(lambda r: r.call_sid is None and "To" in r.form)
    assert [d.form["To"] for d in dials] == ["client:alice", "+442079460018"]
    callback = db.session.get(Interaction, offer["interaction"]["id"])
    db.session.refresh(callback)
    assert callback.external_id and callback.external_id.startswith("CA")
    twilio_post(
        f"/webhooks/twilio/voice/connect/{offer['reservation_id']}",
        {"CallSid": callback.external_id},
        query={"leg": "caller"},
    )
    db.session.refresh(callback)
    assert callback.status == "active"
    twilio_post(
        f"{VOICE}/status",
        {
            "CallSid": callback.external_id,
            "CallStatus": "completed",
            "SequenceNumber": "4",
            "CallDuration": "42",
        },
    )
    db.session.refresh(callback)
    assert callback.outcome == "answered" and callback.duration_s == 42
