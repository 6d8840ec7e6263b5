"""Blind transfer to an agent and warm transfer (consult, then complete or cancel)."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from contact_center.agents.models import User
from contact_center.extensions import db
from contact_center.routing import services as routing
from contact_center.routing.models import Interaction, Reservation
from tests.conftest import VOICE, call_sid


def _fresh(model, id_):
    db.session.expire_all()
    return db.session.get(model, id_)


def _load(user: User) -> int:
    return routing.get_store().load(user.id, "voice")


def _status(user: User) -> str:
    return _fresh(User, user.id).status


def _fire_timers(after_s: float) -> None:
    routing.run_due_timers(now=time.time() + after_s, limit=1000)
    db.session.expire_all()


def _hung_up(stub) -> set[str]:
    """CallSids the app asked Twilio to hang up."""
    return {
        r.call_sid
        for r in stub.state.requests
        if r.conference_sid is None and r.call_sid and r.form.get("Status") == "completed"
    }


def _participant_updates(stub, call_sid_: str) -> list[dict[str, str]]:
    return [r.form for r in stub.state.requests if r.conference_sid and r.call_sid == call_sid_]


def _participant_creates(stub) -> list[dict[str, str]]:
    return [
        r.form
        for r in stub.state.requests
        if r.conference_sid and r.call_sid is None and r.method == "POST"
    ]


def _events(socket, name: str) -> list[dict]:
    return [e["args"][0] for e in socket.get_received("/agent") if e["name"] == name]


# ---------------------------------------------------------------- blind transfer to an agent


def test_blind_transfer_to_an_agent_offers_them_once_then_the_queue(
    client, live_call, auth_header, twilio_stub, twilio_post, create_user
):
    interaction, alice, _ = live_call
    carol = create_user("carol")
    routing.set_agent_status(carol, "available")  # free longer than anyone after the transfer
    bob = create_user("bob")
    routing.set_agent_status(bob, "available")
    alice_leg = interaction.agent_call_sid
    moved = client.post(
        f"/api/v1/interactions/{interaction.id}/transfer",
        json={"agent_id": bob.id},
        headers=auth_header(alice),
    )
    assert moved.status_code == 200, moved.get_json()
    assert moved.get_json()["agent_id"] is None
    interaction = _fresh(Interaction, interaction.id)
    assert interaction.agent_id is None and interaction.preferred_agent_id == bob.id
    # Only bob is offered it, although carol has waited longer for work.
    offer = routing.pending_offer(bob)
    assert offer is not None and offer.interaction_id == interaction.id
    assert offer.decision["step"] == "preferred agent"
    assert routing.pending_offer(carol) is None
    # The transferring agent's leg hung up and their capacity is free (no wrap-up here).
    assert alice_leg in _hung_up(twilio_stub)
    assert _load(alice) == 0 and _status(alice) == "available"
    redirects = [r for r in twilio_stub.state.requests if r.call_sid == call_sid(1)]
    assert redirects[-1].form["Url"].endswith(f"/webhooks/twilio/voice/requeue/{interaction.id}")
    requeue = twilio_post(f"{VOICE}/requeue/{interaction.id}", {"CallSid": call_sid(1)})
    assert b"<Enqueue" in requeue.data and b"General" in requeue.data
    # Bob declines: the queue takes it at once (no second offer to bob).
    routing.reject(bob, offer.id)
    db.session.expire_all()
    assert routing.pending_offer(bob) is None
    fallback = routing.pending_offer(carol)
    assert fallback is not None and fallback.interaction_id == interaction.id
    assert fallback.decision["step"] != "preferred agent"
    interaction = _fresh(Interaction, interaction.id)
    assert interaction.preferred_until is None and not interaction.preferred_single_offer
    routing.accept(carol, fallback.id)
    assert _fresh(Interaction, interaction.id).agent_id == carol.id


def test_transfer_to_an_agent_who_is_not_free_in_time_goes_to_the_queue(
    client, live_call, auth_header, create_user
):
    interaction, alice, _ = live_call
    bob = create_user("bob")
    routing.set_agent_status(bob, "away")  # signed in, not taking calls
    carol = create_user("carol")
    routing.set_agent_status(carol, "available")
    moved = client.post(
        f"/api/v1/interactions/{interaction.id}/transfer",
        json={"agent_id": bob.id},
        headers=auth_header(alice),
    )
    assert moved.status_code == 200, moved.get_json()
    assert routing.pending_offer(carol) is None  # waiting for bob
    assert _fresh(Interaction, interaction.id).status == "queued"
    _fire_timers(routing.PREFERRED_AGENT_S + 1)
    offer = routing.pending_offer(carol)
    assert offer is not None and offer.interaction_id == interaction.id


def test_transfer_wrapup_holds_the_transferring_agent_and_survives_a_rebuild(
    client, live_call, auth_header, create_user, agent_socket
):
    interaction, alice, socket = live_call
    interaction.queue.wrapup_s = 30
    db.session.commit()
    bob = create_user("bob")
    routing.set_agent_status(bob, "available")
    socket.get_received("/agent")
    moved = client.post(
        f"/api/v1/interactions/{interaction.id}/transfer",
        json={"agent_id": bob.id},
        headers=auth_header(alice),
    )
    assert moved.status_code == 200
    ended = _events(socket, "interaction_ended")
    assert ended[-1]["status"] == "wrapup" and ended[-1]["outcome"] == "transferred"
    assert _status(alice) == "wrapup" and _load(alice) == 1
    routing.rebuild_state(force=True)
    assert _load(alice) == 1 and _status(alice) == "wrapup"
    # A new call is not offered to alice during her wrap-up.
    arrived = routing.create_interaction(
        channel="voice", queue=interaction.queue, external_id=call_sid(7)
    )
    assert (
        db.session.scalar(
            sa.select(Reservation).where(
                Reservation.interaction_id == arrived.id, Reservation.agent_id == alice.id
            )
        )
        is None
    )
    _fire_timers(31)
    assert _load(alice) == 1  # the new call is hers now that wrap-up is over
    offer = routing.pending_offer(_fresh(User, alice.id))
    assert offer is not None and offer.interaction_id == arrived.id
    assert _fresh(Interaction, interaction.id).handoff_agent_id is None


def test_wrapup_done_ends_a_transfer_wrapup_early(client, live_call, auth_header, create_user):
    interaction, alice, socket = live_call
    interaction.queue.wrapup_s = 300
    db.session.commit()
    queue_id = interaction.queue_id
    assert (
        client.post(
            f"/api/v1/interactions/{interaction.id}/transfer",
            json={"queue_id": queue_id},
            headers=auth_header(alice),
        ).status_code
        == 200
    )
    assert _status(alice) == "wrapup"
    ack = socket.emit(
        "wrapup_done", {"interaction_id": interaction.id}, namespace="/agent", callback=True
    )
    assert ack["ok"] is True, ack
    assert _fresh(Interaction, interaction.id).handoff_wrapup_until is None
    # Free again, alice is the one agent of the queue the call waits in: it rings for her.
    offer = routing.pending_offer(_fresh(User, alice.id))
    assert offer is not None and offer.interaction_id == interaction.id
    assert _load(alice) == 1


@pytest.mark.parametrize(
    "body",
    [{}, {"queue_id": 1, "agent_id": 1}, {"agent_id": "2"}, {"queue_id": None, "agent_id": None}],
)
def test_transfer_needs_exactly_one_target(client, live_call, auth_header, twilio_stub, body):
    interaction, alice, _ = live_call
    before = len(twilio_stub.state.requests)
    response = client.post(
        f"/api/v1/interactions/{interaction.id}/transfer", json=body, headers=auth_header(alice)
    )
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["error"]["code"] == "validation_error"
    assert len(twilio_stub.state.requests) == before
    interaction = _fresh(Interaction, interaction.id)
    assert interaction.status == "active" and interaction.agent_id == alice.id
    assert _load(alice) == 1


def test_transfer_to_an_offline_or_unknown_agent_changes_nothing(
    client, live_call, auth_header, twilio_stub, create_user
):
    interaction, alice, _ = live_call
    bob = create_user("bob")  # never signed in: offline
    before = len(twilio_stub.state.requests)
    url = f"/api/v1/interactions/{interaction.id}/transfer"
    offline = client.post(url, json={"agent_id": bob.id}, headers=auth_header(alice))
    assert offline.status_code == 409, offline.get_json()
    assert offline.get_json()["error"]["code"] == "conflict"
    unknown = client.post(url, json={"agent_id": 9999}, headers=auth_header(alice))
    assert unknown.status_code == 422
    assert "agent_id" in unknown.get_json()["error"]["fields"]
    to_self = client.post(url, json={"agent_id": alice.id}, headers=auth_header(alice))
    assert to_self.status_code == 409
    assert len(twilio_stub.state.requests) == before
    interaction = _fresh(Interaction, interaction.id)
    assert interaction.status == "active" and interaction.agent_id == alice.id
    assert interaction.preferred_agent_id is None
    assert _load(alice) == 1 and _status(alice) == "busy"


def test_only_the_calls_agent_or_a_supervisor_may_transfer(
    client, live_call, auth_header, create_user
):
    interaction, alice, _ = live_call
    bob = create_user("bob")
    routing.set_agent_status(bob, "available")
    url = f"/api/v1/interactions/{interaction.id}/transfer"
    refused = client.post(url, json={"agent_id": bob.id}, headers=auth_header(bob))
    assert refused.status_code == 404
    assert _fresh(Interaction, interaction.id).agent_id == alice.id
    sam = create_user("sam", role="supervisor")
    moved = client.post(url, json={"agent_id": bob.id}, headers=auth_header(sam))
    assert moved.status_code == 200, moved.get_json()
    assert routing.pending_offer(bob).interaction_id == interaction.id
    assert _load(alice) == 0


# ---------------------------------------------------------------- warm transfer


@pytest.fixture
def consulting(client, live_call, auth_header, create_user, agent_socket, twilio_stub):
    """Alice consults bob on her live call."""
    interaction, alice, alice_socket = live_call
    bob = create_user("bob")
    bob.voice_endpoint = "+447700900555"
    db.session.commit()
    bob_socket = agent_socket(bob)
    bob_socket.emit("set_status", {"status": "available"}, namespace="/agent", callback=True)
    bob_socket.get_received("/agent")
    response = client.post(
        f"/api/v1/interactions/{interaction.id}/consult",
        json={"agent_id": bob.id},
        headers=auth_header(alice),
    )
    assert response.status_code == 200, response.get_json()
    return _fresh(Interaction, interaction.id), alice, bob, bob_socket


def test_consult_holds_the_customer_dials_the_target_and_takes_their_capacity(
    consulting, twilio_stub, twilio_post
):
    interaction, alice, bob, bob_socket = consulting
    assert interaction.consult_agent_id == bob.id and interaction.consult_call_sid
    assert interaction.on_hold and interaction.agent_id == alice.id
    assert _participant_updates(twilio_stub, call_sid(1))[-1]["Hold"] == "true"
    created = _participant_creates(twilio_stub)[-1]
    assert created["To"] == "+447700900555"
    assert created["EndConferenceOnExit"] == "false"
    assert created["StatusCallback"].endswith("/webhooks/twilio/voice/status")
    assert _load(bob) == 1 and _status(bob) == "busy"
    consult = _events(bob_socket, "consult")
    assert consult and consult[-1]["interaction_id"] == interaction.id
    assert consult[-1]["from_agent"] == alice.display_name
    # While consulted, bob is offered nothing.
    twilio_post(VOICE, {"CallSid": call_sid(2), "From": "+447700900124", "To": "+4420"})
    assert routing.pending_offer(_fresh(User, bob.id)) is None
    # A rebuild in the middle of the consult keeps both agents' loads.
    routing.rebuild_state(force=True)
    assert _load(bob) == 1 and _load(alice) == 1
    assert _status(bob) == "busy" and routing.pending_offer(_fresh(User, bob.id)) is None


def test_consult_complete_hands_the_call_over(
    client, consulting, auth_header, twilio_stub, twilio_post
):
    interaction, alice, bob, bob_socket = consulting
    alice_leg, bob_leg = interaction.agent_call_sid, interaction.consult_call_sid
    done = client.post(
        f"/api/v1/interactions/{interaction.id}/consult/complete", headers=auth_header(alice)
    )
    assert done.status_code == 200, done.get_json()
    assert done.get_json()["agent_id"] == bob.id
    interaction = _fresh(Interaction, interaction.id)
    assert interaction.agent_id == bob.id and interaction.agent_call_sid == bob_leg
    assert interaction.consult_agent_id is None and interaction.consult_call_sid is None
    assert interaction.on_hold is False and interaction.hold_s >= 0
    assert interaction.status == "active"
    assert _participant_updates(twilio_stub, bob_leg)[-1]["EndConferenceOnExit"] == "true"
    assert _participant_updates(twilio_stub, alice_leg)[-1]["EndConferenceOnExit"] == "false"
    assert _participant_updates(twilio_stub, call_sid(1))[-1]["Hold"] == "false"
    assert alice_leg in _hung_up(twilio_stub) and bob_leg not in _hung_up(twilio_stub)
    assert _load(alice) == 0 and _status(alice) == "available"
    assert _load(bob) == 1 and _status(bob) == "busy"
    updated = _events(bob_socket, "interaction_updated")
    assert updated[-1]["agent_id"] == bob.id and updated[-1]["status"] == "active"
    again = client.post(
        f"/api/v1/interactions/{interaction.id}/consult/complete", headers=auth_header(bob)
    )
    assert again.status_code == 409
    # The customer hangs up: bob's call ends normally.
    twilio_post(
        f"{VOICE}/status",
        {"CallSid": call_sid(1), "CallStatus": "completed", "SequenceNumber": "3"},
    )
    interaction = _fresh(Interaction, interaction.id)
    assert interaction.status == "ended" and interaction.outcome == "answered"
    assert _load(bob) == 0


def test_consult_cancel_frees_the_target_and_resumes_the_customer(
    client, consulting, auth_header, twilio_stub
):
    interaction, alice, bob, bob_socket = consulting
    bob_leg = interaction.consult_call_sid
    cancelled = client.post(
        f"/api/v1/interactions/{interaction.id}/consult/cancel", headers=auth_header(alice)
    )
    assert cancelled.status_code == 200, cancelled.get_json()
    interaction = _fresh(Interaction, interaction.id)
    assert interaction.consult_agent_id is None and interaction.on_hold is False
    assert interaction.agent_id == alice.id and interaction.status == "active"
    assert bob_leg in _hung_up(twilio_stub)
    assert _participant_updates(twilio_stub, call_sid(1))[-1]["Hold"] == "false"
    assert _load(bob) == 0 and _status(bob) == "available"
    assert _load(alice) == 1
    assert _events(bob_socket, "consult_ended")[-1]["interaction_id"] == interaction.id
    for action in ("cancel", "complete"):
        response = client.post(
            f"/api/v1/interactions/{interaction.id}/consult/{action}", headers=auth_header(alice)
        )
        assert response.status_code == 409, action
        assert response.get_json()["error"]["code"] == "conflict"


def test_consult_cancel_when_the_target_leg_is_already_gone(
    client, consulting, auth_header, twilio_stub
):
    interaction, alice, bob, _ = consulting
    twilio_stub.state.gone.add(interaction.consult_call_sid)
    cancelled = client.post(
        f"/api/v1/interactions/{interaction.id}/consult/cancel", headers=auth_header(alice)
    )
    assert cancelled.status_code == 200, cancelled.get_json()
    assert _load(bob) == 0


def test_the_consulted_leg_ending_ends_the_consult(consulting, twilio_post):
    interaction, alice, bob, _ = consulting
    twilio_post(
        f"{VOICE}/status",
        {"CallSid": interaction.consult_call_sid, "CallStatus": "no-answer", "SequenceNumber": "1"},
    )
    interaction = _fresh(Interaction, interaction.id)
    assert interaction.consult_agent_id is None and interaction.status == "active"
    assert _load(bob) == 0 and _status(bob) == "available"


def test_the_customer_hanging_up_mid_consult_frees_both_agents(consulting, twilio_post):
    interaction, alice, bob, _ = consulting
    twilio_post(
        f"{VOICE}/status",
        {"CallSid": call_sid(1), "CallStatus": "completed", "SequenceNumber": "2"},
    )
    interaction = _fresh(Interaction, interaction.id)
    assert interaction.status == "ended" and interaction.consult_agent_id is None
    assert interaction.on_hold is False
    assert _load(bob) == 0 and _load(alice) == 0


def test_illegal_moves_during_a_consult(client, consulting, auth_header, create_user, twilio_stub):
    interaction, alice, bob, _ = consulting
    carol = create_user("carol")
    routing.set_agent_status(carol, "available")
    before = len(twilio_stub.state.requests)
    base = f"/api/v1/interactions/{interaction.id}"
    for path, body in (
        ("/consult", {"agent_id": carol.id}),
        ("/hold", {"hold": False}),
        ("/transfer", {"agent_id": carol.id}),
    ):
        response = client.post(base + path, json=body, headers=auth_header(alice))
        assert response.status_code == 409, (path, response.get_json())
    assert len(twilio_stub.state.requests) == before
    interaction = _fresh(Interaction, interaction.id)
    assert interaction.consult_agent_id == bob.id and interaction.on_hold
    assert _load(carol) == 0 and _load(bob) == 1
    # Bob is consulted, not the call's agent: he cannot complete it himself.
    assert client.post(base + "/consult/complete", headers=auth_header(bob)).status_code == 404


def test_consult_refusals_change_nothing(client, live_call, auth_header, create_user, twilio_stub):
    interaction, alice, _ = live_call
    offline = create_user("olga")
    no_calls = create_user("nick", capacity={"voice": 0, "email": 3})
    routing.set_agent_status(no_calls, "available")
    before = len(twilio_stub.state.requests)
    url = f"/api/v1/interactions/{interaction.id}/consult"
    for target, status in ((offline, 409), (no_calls, 409), (alice, 409)):
        response = client.post(url, json={"agent_id": target.id}, headers=auth_header(alice))
        assert response.status_code == status, (target.username, response.get_json())
        assert response.get_json()["error"]["code"] == "conflict"
    assert client.post(url, json={"agent_id": 4242}, headers=auth_header(alice)).status_code == 422
    assert client.post(url, json={}, headers=auth_header(alice)).status_code == 422
    assert len(twilio_stub.state.requests) == before
    interaction = _fresh(Interaction, interaction.id)
    assert interaction.consult_agent_id is None and not interaction.on_hold
    assert _load(no_calls) == 0 and _load(offline) == 0


def test_supervisor_may_run_a_consult(client, live_call, auth_header, create_user):
    interaction, alice, _ = live_call
    bob = create_user("bob")
    routing.set_agent_status(bob, "available")
    sam = create_user("sam", role="supervisor")
    base = f"/api/v1/interactions/{interaction.id}"
    assert (
        client.post(base + "/consult", json={"agent_id": bob.id}, headers=auth_header(sam))
    ).status_code == 200
    assert client.post(base + "/consult/complete", headers=auth_header(sam)).status_code == 200
    assert _fresh(Interaction, interaction.id).agent_id == bob.id


def test_twilio_refusing_the_consult_leg_is_a_502_that_changes_nothing(
    client, live_call, auth_header, create_user, twilio_stub
):
    interaction, alice, _ = live_call
    bob = create_user("bob")
    routing.set_agent_status(bob, "available")
    twilio_stub.state.refuse.add("participant-create")
    response = client.post(
        f"/api/v1/interactions/{interaction.id}/consult",
        json={"agent_id": bob.id},
        headers=auth_header(alice),
    )
    assert response.status_code == 502, response.get_json()
    assert response.get_json()["error"]["code"] == "upstream_error"
    interaction = _fresh(Interaction, interaction.id)
    assert interaction.consult_agent_id is None and interaction.on_hold is False
    # The customer was put on hold for the consult, then taken off it again.
    holds = [form["Hold"] for form in _participant_updates(twilio_stub, call_sid(1))]
    assert holds == ["true", "false"]
    assert _load(bob) == 0 and _status(bob) == "available"
