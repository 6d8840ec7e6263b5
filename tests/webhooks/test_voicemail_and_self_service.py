"""Voicemails become tickets (with recording and transcription); callers hear a ticket's status."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import sqlalchemy as sa

from contact_center.audit import AuditEvent
from contact_center.customers.services import create_customer
from contact_center.extensions import db
from contact_center.tickets import services as tickets
from contact_center.tickets.models import Ticket, TicketMessage
from tests.conftest import call_sid
from tests.webhooks.test_ivr import VOICE, _call, _gather_url, _interaction, _press, _xml, flow

__all__ = ["flow"]  # the fixture, shared with the IVR tests
RECORDING = "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE" + "a" * 32


def _recording_sid(n: int) -> str:
    return "RE" + f"{n:032x}"


def _recording_callback(twilio_post, n: int, status: str = "completed", url: str = RECORDING):
    return twilio_post(
        f"{VOICE}/recording",
        {
            "CallSid": call_sid(n),
            "RecordingSid": _recording_sid(n),
            "RecordingUrl": url,
            "RecordingStatus": status,
        },
    )


def _transcription(twilio_post, n: int, text: str, status: str = "completed"):
    return twilio_post(
        f"{VOICE}/transcription",
        {
            "CallSid": call_sid(n),
            "RecordingSid": _recording_sid(n),
            "TranscriptionStatus": status,
            "TranscriptionText": text,
        },
    )


def _count(model) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def _to_menu(twilio_post, n: int, caller: str = "+447700900123"):
    language = _call(twilio_post, n, caller)
    return _press(twilio_post, language, n, Digits="1")


def test_ivr_voicemail_becomes_one_ticket_with_recording_and_transcription(
    flow, twilio_post, client, create_user, auth_header
):
    customer = create_customer({"name": "Mei Chen", "phones": ["+447700900123"]})
    db.session.commit()
    record = _press(twilio_post, _to_menu(twilio_post, 1), 1, Digits="3")
    element = record.find("Record")
    assert element is not None
    assert element.get("transcribe") == "true"
    assert element.get("transcribeCallback") == f"http://cc.test{VOICE}/transcription"
    assert element.get("recordingStatusCallback") == f"http://cc.test{VOICE}/recording"

    path, query = _xml_action(element)
    goodbye = _xml(
        twilio_post(path, {"CallSid": call_sid(1), "RecordingUrl": RECORDING}, query=query)
    )
    assert goodbye.find("Hangup") is not None
    interaction = _interaction(1)
    assert interaction.outcome == "voicemail" and interaction.ticket_id is not None

    # Twilio's status callback for the same recording, then a retry: still one ticket.
    for _ in range(2):
        assert _recording_callback(twilio_post, 1).status_code == 200
    assert _count(Ticket) == 1 and _count(TicketMessage) == 1
    ticket = db.session.get(Ticket, interaction.ticket_id)
    assert ticket.customer_id == customer.id and ticket.channel == "voice"
    assert ticket.status == "new" and ticket.subject == "Voicemail from Mei Chen"
    assert ticket.messages[0].kind == "voicemail"
    assert ticket.messages[0].recording_url == RECORDING

    assert _transcription(twilio_post, 1, "Please call me about my card.").status_code == 200
    assert _transcription(twilio_post, 1, "A different text on retry.").status_code == 200
    db.session.expire_all()
    assert ticket.messages[0].body == "Please call me about my card."

    agent = create_user("alice")
    detail = client.get(f"/api/v1/tickets/{ticket.id}", headers=auth_header(agent)).get_json()
    assert detail["number"] == ticket.number
    assert detail["messages"][0]["recording_url"] == RECORDING
    assert detail["messages"][0]["body"] == "Please call me about my card."
    history = client.get(
        f"/api/v1/customers/{customer.id}/history", headers=auth_header(agent)
    ).get_json()
    assert [t["number"] for t in history["open_tickets"]] == [ticket.number]
    audit_actions = db.session.scalars(sa.select(AuditEvent.action)).all()
    assert audit_actions == ["ticket.created"]


def _xml_action(element) -> tuple[str, dict]:
    parts = urlsplit(element.get("action"))
    return parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()}


def test_recording_callback_before_the_action_still_gives_one_ticket(flow, twilio_post):
    record = _press(twilio_post, _to_menu(twilio_post, 2), 2, Digits="3").find("Record")
    # The recording callback can arrive while the caller is still in the voicemail node.
    assert _recording_callback(twilio_post, 2).status_code == 200
    assert _count(Ticket) == 0  # not a voicemail yet: the caller may still be recording
    path, query = _xml_action(record)
    twilio_post(path, {"CallSid": call_sid(2), "RecordingUrl": RECORDING}, query=query)
    assert _count(Ticket) == 1
    ticket = db.session.scalar(sa.select(Ticket))
    assert ticket.messages[0].recording_url == RECORDING
    assert ticket.subject.startswith("Voicemail from +44***")  # an unknown caller, masked


def test_voicemail_left_through_the_fallback_becomes_a_ticket(app, twilio_post):
    fallback = _xml(twilio_post(f"{VOICE}/fallback", {"CallSid": call_sid(3)}))
    assert fallback.find("Record").get("transcribeCallback").endswith("/transcription")
    assert _recording_callback(twilio_post, 3).status_code == 200
    interaction = _interaction(3)
    assert interaction.outcome == "voicemail"
    ticket = db.session.get(Ticket, interaction.ticket_id)
    assert ticket.messages[0].recording_url == RECORDING


def test_malformed_transcription_is_400_and_unsigned_403(flow, twilio_post):
    bad = twilio_post(
        f"{VOICE}/transcription",
        {"CallSid": call_sid(4), "RecordingSid": "nope", "TranscriptionStatus": "completed"},
    )
    assert bad.status_code == 400
    assert "RecordingSid" in bad.get_json()["error"]["fields"]
    response = twilio_post(
        f"{VOICE}/transcription",
        {
            "CallSid": call_sid(4),
            "RecordingSid": _recording_sid(4),
            "TranscriptionStatus": "completed",
        },
        signature="forged",
    )
    assert response.status_code == 403


def test_caller_hears_a_tickets_status_then_the_menu_again(flow, twilio_post):
    ticket = tickets.create_ticket("Card not arrived", "email")
    ticket.status = "pending"
    db.session.commit()
    ask = _press(twilio_post, _to_menu(twilio_post, 5), 5, Digits="4")
    gather = ask.find("Gather")
    assert gather.get("finishOnKey") == "#" and gather.get("numDigits") is None
    assert _gather_url(ask)[0] == f"{VOICE}/gather/{flow.id}/ticket_status"

    answer = _press(twilio_post, ask, 5, Digits=f"{ticket.number}#")
    spoken = " ".join(say.text for say in answer.findall("Say"))
    assert " ".join(ticket.number) in spoken
    assert "waiting for information from you" in spoken
    assert _gather_url(answer)[0] == f"{VOICE}/gather/{flow.id}/menu"  # back to the menu
    assert _interaction(5).status == "ivr"


def test_unknown_ticket_number_is_retried_then_the_caller_is_queued(flow, twilio_post):
    ask = _press(twilio_post, _to_menu(twilio_post, 6), 6, Digits="4")
    for attempt in (2, 3):
        ask = _press(twilio_post, ask, 6, Digits="99999#")
        assert "could not find a ticket" in ask.find("Say").text
        assert _gather_url(ask)[1] == {"attempt": str(attempt)}
    queued = _press(twilio_post, ask, 6, Digits="99999#")
    assert queued.find("Enqueue").text == "General"
    assert _interaction(6).status == "queued"


def test_a_caller_hears_only_their_own_customers_tickets(flow, twilio_post):
    caller = create_customer({"name": "Mei Chen", "phones": ["+447700900321"]})
    other = create_customer({"name": "Ola Berg", "phones": ["+447700900999"]})
    theirs = tickets.create_ticket("Card not arrived", "email", customer_id=caller.id)
    someone_elses = tickets.create_ticket("Address change", "email", customer_id=other.id)
    db.session.commit()
    ask = _press(twilio_post, _to_menu(twilio_post, 30, caller="+447700900321"), 30, Digits="4")
    refused = _press(twilio_post, ask, 30, Digits=f"{someone_elses.number}#")
    assert "could not find a ticket" in refused.find("Say").text
    answer = _press(twilio_post, refused, 30, Digits=f"{theirs.number}#")
    assert " ".join(theirs.number) in " ".join(say.text for say in answer.findall("Say"))
    # An unidentified caller hears no customer's ticket either.
    ask = _press(twilio_post, _to_menu(twilio_post, 31, caller="+447700900555"), 31, Digits="4")
    refused = _press(twilio_post, ask, 31, Digits=f"{theirs.number}#")
    assert "could not find a ticket" in refused.find("Say").text
