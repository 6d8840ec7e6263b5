"""The IVR over signed webhooks: every node kind, bad input, retries, versions, hang-ups.

TwiML is parsed as XML and checked by element, never compared as a string.
"""

from __future__ import annotations

import copy
import json
import xml.etree.ElementTree as ET
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa

from contact_center.extensions import db
from contact_center.ivr import flows
from contact_center.routing import services as routing
from contact_center.routing.models import Interaction, Queue
from contact_center.sla.calendars import WEEKDAYS
from contact_center.webhook_receipts import WebhookReceipt
from tests.conftest import PUBLIC_BASE_URL, call_sid

VOICE = "/webhooks/twilio/voice"
ALWAYS_OPEN = {day: [["00:00", "24:00"]] for day in WEEKDAYS}


def _definition(**hours) -> dict:
    definition = json.loads(flows.DEFAULT_FLOW_PATH.read_text(encoding="utf-8"))
    definition["nodes"]["hours"]["schedule"] = hours.get("schedule", ALWAYS_OPEN)
    # No public holidays either: "always open" must not close on a bank holiday.
    definition["nodes"]["hours"].pop("country", None)
    definition["nodes"]["hours"].pop("subdivision", None)
    return definition


@pytest.fixture
def flow(app):
    for name, skills in (("General", {}), ("Cards", {"product:cards": 2})):
        routing.create_queue(
            name=name, channels=["voice"], required_skills=skills, is_default=name == "General"
        )
    db.session.commit()
    return flows.save_flow(_definition(), activate=True)


def _xml(response) -> ET.Element:
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.content_type.startswith("text/xml")
    return ET.fromstring(response.data)  # noqa: S314  (our own TwiML)


def _gather_url(root: ET.Element) -> tuple[str, dict]:
    gather = root.find("Gather")
    assert gather is not None, ET.tostring(root)
    parts = urlsplit(gather.get("action"))
    return parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()}


def _press(twilio_post, root: ET.Element, n: int, **params) -> ET.Element:
    path, query = _gather_url(root)
    return _xml(twilio_post(path, {"CallSid": call_sid(n), **params}, query=query))


def _call(twilio_post, n: int, caller: str = "+447700900123") -> ET.Element:
    return _xml(twilio_post(VOICE, {"CallSid": call_sid(n), "From": caller, "To": "+4420"}))


def _interaction(n: int) -> Interaction:
    db.session.expire_all()
    return db.session.scalar(sa.select(Interaction).where(Interaction.external_id == call_sid(n)))


def test_language_then_menu_then_queue(flow, twilio_post):
    root = _call(twilio_post, 1)
    says = [say.text for say in root.findall("Say")]
    assert says[0].startswith("Thank you for calling")
    path, query = _gather_url(root)
    assert path == f"{VOICE}/gather/{flow.id}/language" and query == {"attempt": "1"}
    assert root.find("Gather").get("input") == "dtmf"
    assert _interaction(1).status == "ivr"

    menu = _press(twilio_post, root, 1, Digits="2")  # Mandarin
    assert _interaction(1).required_skills == {"lang:zh": 3}
    assert _gather_url(menu)[0].endswith("/menu")
    assert menu.find("Gather").get("input") == "dtmf speech"

    queued = _press(twilio_post, menu, 1, SpeechResult="Cards.")
    enqueue = queued.find("Enqueue")
    assert enqueue.text == "Cards"
    assert enqueue.get("waitUrl") == f"{PUBLIC_BASE_URL}{VOICE}/wait"
    interaction = _interaction(1)
    assert interaction.status == "queued" and interaction.queue.name == "Cards"
    assert interaction.required_skills == {"lang:zh": 3, "product:cards": 2}
    assert interaction.priority == 1
    assert routing.get_store().location(interaction.id) is not None


def test_invalid_digits_and_silence_retry_then_fail_over(flow, twilio_post):
    root = _call(twilio_post, 2)
    menu = _press(twilio_post, root, 2, Digits="1")
    wrong = _press(twilio_post, menu, 2, Digits="7")
    assert wrong.find("Say").text == "Sorry, that is not one of the options."
    assert _gather_url(wrong)[1] == {"attempt": "2"}
    silent = _press(twilio_post, wrong, 2)
    assert silent.find("Say").text == "Sorry, I did not hear you."
    assert _gather_url(silent)[1] == {"attempt": "3"}
    gave_up = _press(twilio_post, silent, 2, Digits="8")  # retries used up: on_failure
    assert gave_up.find("Enqueue").text == "General"


def test_retried_gather_gets_the_same_answer_and_changes_nothing(flow, twilio_post):
    root = _call(twilio_post, 3)
    path, query = _gather_url(root)
    first = twilio_post(path, {"CallSid": call_sid(3), "Digits": "2"}, query=query)
    receipts = db.session.scalar(sa.select(sa.func.count()).select_from(WebhookReceipt))
    again = twilio_post(path, {"CallSid": call_sid(3), "Digits": "2"}, query=query)
    assert again.data == first.data
    assert db.session.scalar(sa.select(sa.func.count()).select_from(WebhookReceipt)) == receipts


def test_unknown_node_never_loses_the_caller(flow, twilio_post):
    _call(twilio_post, 4)
    root = _xml(
        twilio_post(
            f"{VOICE}/gather/{flow.id}/no-such-node",
            {"CallSid": call_sid(4)},
            query={"step": "enter"},
        )
    )
    assert root.find("Enqueue").text == "General"
    assert _interaction(4).status == "queued"


def test_voicemail_records_and_keeps_the_recording(flow, twilio_post):
    root = _call(twilio_post, 5)
    menu = _press(twilio_post, root, 5, Digits="1")
    record = _press(twilio_post, menu, 5, Digits="3")
    element = record.find("Record")
    assert element.get("maxLength") == "120"
    assert element.get("recordingStatusCallback") == f"{PUBLIC_BASE_URL}{VOICE}/recording"
    action = urlsplit(element.get("action"))
    url = "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1"
    query = {k: v[0] for k, v in parse_qs(action.query).items()}
    assert query == {"step": "recorded"}
    done = _xml(
        twilio_post(action.path, {"CallSid": call_sid(5), "RecordingUrl": url}, query=query)
    )
    assert done.find("Hangup") is not None
    assert _interaction(5).outcome == "voicemail"
    callback = {
        "CallSid": call_sid(5),
        "RecordingSid": "RE" + "a" * 32,
        "RecordingUrl": url + "?final",
        "RecordingStatus": "completed",
    }
    assert twilio_post(f"{VOICE}/recording", callback).status_code == 200
    assert _interaction(5).recording_url == url + "?final"


def test_transfer_dials_out(flow, twilio_post):
    menu = _press(twilio_post, _call(twilio_post, 6), 6, Digits="1")
    transfer = _press(twilio_post, menu, 6, Digits="9")
    assert transfer.find("Dial/Number").text == "+442079460000"
    assert _interaction(6).outcome == "transferred"


def test_closed_hours_go_to_the_closed_branch(app, twilio_post):
    flows.save_flow(_definition(schedule={}), activate=True)
    root = _call(twilio_post, 7)
    assert "We are closed" in " ".join(say.text for say in root.findall("Say"))
    assert root.find("Record") is not None


def test_a_call_keeps_its_flow_version(flow, twilio_post):
    root = _call(twilio_post, 8)
    changed = copy.deepcopy(_definition())
    changed["nodes"]["language"]["options"] = {"1": "en"}
    changed["nodes"]["language"]["prompt"] = "Press 1 for English."
    flows.save_flow(changed, activate=True)
    menu = _press(twilio_post, root, 8, Digits="2")  # valid in the version the call started on
    assert _interaction(8).required_skills == {"lang:zh": 3}
    assert _gather_url(menu)[0] == f"{VOICE}/gather/{flow.id}/menu"


def test_hanging_up_in_the_ivr(flow, twilio_post):
    _call(twilio_post, 9)
    twilio_post(
        f"{VOICE}/status",
        {"CallSid": call_sid(9), "CallStatus": "completed", "SequenceNumber": "1"},
    )
    assert _interaction(9).outcome == "hung_up_in_ivr"


@pytest.mark.parametrize(
    ("params", "query", "field"),
    [
        ({"Digits": "12345678901234567890123"}, {}, "Digits"),
        ({"Digits": "abc"}, {}, "Digits"),
        ({}, {"attempt": "0"}, "attempt"),
        ({}, {"step": "dance"}, "step"),
    ],
)
def test_malformed_gather_input_is_refused(flow, twilio_post, params, query, field):
    _call(twilio_post, 10)
    response = twilio_post(
        f"{VOICE}/gather/{flow.id}/menu", {"CallSid": call_sid(10), **params}, query=query
    )
    assert response.status_code == 400
    assert field in response.get_json()["error"]["fields"]
    assert _interaction(10).status == "ivr"


def test_gather_for_an_unknown_call_hangs_up(flow, twilio_post):
    root = _xml(twilio_post(f"{VOICE}/gather/{flow.id}/menu", {"CallSid": call_sid(11)}))
    assert root.find("Hangup") is not None


def test_full_path_through_the_ivr_to_an_agent(
    flow, twilio_post, create_user, agent_socket, twilio_stub
):
    cards = db.session.scalar(sa.select(Queue).where(Queue.name == "Cards"))
    agent = create_user("wei", skills={"lang:zh": 4, "product:cards": 3})
    socket = agent_socket(agent)
    socket.emit("set_status", {"status": "available"}, namespace="/agent", callback=True)
    root = _call(twilio_post, 12)
    menu = _press(twilio_post, root, 12, Digits="2")
    _press(twilio_post, menu, 12, Digits="1")
    offers = [e["args"][0] for e in socket.get_received("/agent") if e["name"] == "offer"]
    assert [o["interaction"]["queue"] for o in offers] == [cards.name]
    ack = socket.emit(
        "accept", {"reservation_id": offers[0]["reservation_id"]}, namespace="/agent", callback=True
    )
    assert ack["ok"] is True
    assert twilio_stub.wait_for(lambda r: r.call_sid == call_sid(12) and "Url" in r.form)


def test_flow_admin_api(client, create_user, auth_header):
    admin, agent = create_user("ada", role="admin"), create_user("al")
    bad = copy.deepcopy(_definition())
    bad["nodes"]["menu"]["options"]["4"] = "missing"
    refused = client.post("/api/v1/ivr/flows", headers=auth_header(admin), json={"definition": bad})
    assert refused.status_code == 422
    assert "menu" in refused.get_json()["error"]["fields"]["nodes"]
    created = client.post(
        "/api/v1/ivr/flows",
        headers=auth_header(admin),
        json={"definition": _definition(), "activate": True},
    )
    assert created.status_code == 201 and created.get_json()["is_active"] is True
    assert (
        client.post(
            "/api/v1/ivr/flows", headers=auth_header(agent), json={"definition": _definition()}
        ).status_code
        == 403
    )
    listed = client.get("/api/v1/ivr/flows", headers=auth_header(admin)).get_json()
    assert [(f["name"], f["version"]) for f in listed] == [("main", 1)]


def test_agent_leg_hears_a_whisper_and_rings_its_endpoint(
    flow, twilio_post, create_user, agent_socket, twilio_stub
):
    from contact_center.customers.services import create_customer

    create_customer({"name": "Wei Zhang", "phones": ["+447700900123"]})
    agent = create_user("wei", skills={"lang:zh": 4, "product:cards": 3})
    agent.voice_endpoint = "sip:wei@pbx.example.com"
    db.session.commit()
    socket = agent_socket(agent)
    socket.emit("set_status", {"status": "available"}, namespace="/agent", callback=True)
    menu = _press(twilio_post, _call(twilio_post, 13), 13, Digits="2")
    _press(twilio_post, menu, 13, Digits="1")
    offer = next(e["args"][0] for e in socket.get_received("/agent") if e["name"] == "offer")
    socket.emit(
        "accept", {"reservation_id": offer["reservation_id"]}, namespace="/agent", callback=True
    )
    legs = twilio_stub.wait_for(lambda r: r.call_sid is None and "To" in r.form)
    assert legs[0].form["To"] == "sip:wei@pbx.example.com"
    leg = _xml(
        twilio_post(
            f"{VOICE}/connect/{offer['reservation_id']}",
            {"CallSid": "CA" + "f" * 32},
            query={"leg": "agent"},
        )
    )
    assert leg.find("Say").text == "Call from Wei Zhang, Cards queue."
    assert leg.find("Dial/Conference").text == f"cc-interaction-{offer['interaction']['id']}"


def test_fallback_answers_without_the_database(app_config, twilio_stub):
    from contact_center import create_app
    from tests.conftest import sign

    app_config["DATABASE_URL"] = "postgresql://nobody@127.0.0.1:1/nowhere"
    app_config["REDIS_URL"] = "redis://127.0.0.1:1/0"
    down = create_app(app_config)
    params = {"CallSid": call_sid(14), "From": "+447700900123"}
    response = down.test_client().post(
        f"{VOICE}/fallback",
        data=params,
        headers={"X-Twilio-Signature": sign(f"{PUBLIC_BASE_URL}{VOICE}/fallback", params)},
    )
    root = _xml(response)
    assert "cannot take your call" in root.find("Say").text
    assert (
        root.find("Record").get("recordingStatusCallback") == f"{PUBLIC_BASE_URL}{VOICE}/recording"
    )
    unsigned = down.test_client().post(f"{VOICE}/fallback", data=params)
    assert unsigned.status_code == 403


def test_fallback_voicemail_is_kept_when_the_database_is_back(app, twilio_post):
    callback = {
        "CallSid": call_sid(15),
        "RecordingSid": "RE" + "b" * 32,
        "RecordingUrl": "https://api.twilio.com/r/RE1",
        "RecordingStatus": "completed",
    }
    assert twilio_post(f"{VOICE}/recording", callback).status_code == 200
    interaction = _interaction(15)
    assert interaction.outcome == "voicemail"
    assert interaction.recording_url == "https://api.twilio.com/r/RE1"


def test_emergency_closure_plays_to_every_new_caller(
    flow, client, twilio_post, create_user, auth_header
):
    admin, supervisor = create_user("ada", role="admin"), create_user("sam", role="supervisor")
    message = "Our offices are closed because of a storm. Please call tomorrow."
    assert (
        client.put(
            "/api/v1/ivr/emergency", headers=auth_header(supervisor), json={"enabled": True}
        ).status_code
        == 403
    )
    assert (
        client.put(
            "/api/v1/ivr/emergency", headers=auth_header(admin), json={"enabled": "maybe"}
        ).status_code
        == 422
    )
    switched = client.put(
        "/api/v1/ivr/emergency",
        headers=auth_header(admin),
        json={"enabled": True, "message": message},
    )
    assert switched.status_code == 200
    root = _call(twilio_post, 16)
    assert root.find("Say").text == message and root.find("Hangup") is not None
    assert _interaction(16).outcome == "closed"
    client.put("/api/v1/ivr/emergency", headers=auth_header(admin), json={"enabled": False})
    assert client.get("/api/v1/ivr/emergency", headers=auth_header(supervisor)).get_json() == {
        "enabled": False,
        "message": flows.EMERGENCY_DEFAULT["message"],
    }
    assert _call(twilio_post, 17).find("Gather") is not None
