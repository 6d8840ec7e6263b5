"""Subject access export and erasure: `/api/v1/customers/<id>/export` and `/erase`."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from contact_center import audit
from contact_center.audit import AuditEvent
from contact_center.customers.models import Customer, CustomerIdentity, CustomerNote
from contact_center.db_types import utcnow
from contact_center.extensions import db
from contact_center.recording_deletions import RecordingDeletion, delete_recording
from contact_center.redis_client import get_redis
from contact_center.routing import services as routing
from contact_center.routing.models import Interaction, Reservation
from contact_center.tickets.models import MailAttachment, Ticket, TicketMessage
from contact_center.webhook_receipts import WebhookReceipt
from tests.conftest import ACCOUNT_SID, VOICE, call_sid
from tests.tickets.test_email_inbound import make_mail
from webhooks.deferred import FAILED_KEY

PHONE = "+447700900123"
EMAIL = "mei@example.org"
NAME = "Mei Chen"
NOTE = "Prefers calls after 5pm; hard of hearing"
MAIL_BODY = "My new card has not arrived yet, I live at 1 Acacia Avenue."
STAFF_NOTE = "Sounded upset about her divorce"
CALL_NOTES = "Asked about her late husband's account"
COMMENT = "The agent was lovely, thank you"
ROOT_CAUSE = "Courier lost the card sent to Mei at Acacia Avenue"
START = datetime(2024, 3, 5, 9, 0, tzinfo=UTC)
DAY = {"from": "2024-03-05", "to": "2024-03-05"}
PERSONAL = (PHONE, EMAIL, NAME, NOTE, "Acacia", STAFF_NOTE, CALL_NOTES, COMMENT, "Card not arr")
RECORDING_SID = "RE" + "a1" * 16
RECORDING_URL = (
    f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{RECORDING_SID}"
)
VOICEMAIL_SID = "RE" + "b2" * 16
CALLER_ID = "+15005550006"


@pytest.fixture
def app_config(app_config):
    return {**app_config, "TWILIO_CALLER_ID": CALLER_ID}


@pytest.fixture
def people(create_user, auth_header):
    alice = create_user("alice", display_name="Alice")
    return {
        "alice": alice,
        "agent": auth_header(alice),
        "supervisor": auth_header(create_user("sam", role="supervisor")),
        "admin": auth_header(create_user("ada", role="admin")),
    }


@pytest.fixture
def mei(client, people, post_mail, make_queue):
    """A customer with a note, a mailed ticket (with an attachment and an internal note), a
    complaint, and two calls on 2024-03-05 (one recorded, rated and noted)."""
    queue = make_queue("Sales")
    body = {"name": NAME, "phones": [PHONE], "emails": [EMAIL], "tags": ["vip"], "region": "North"}
    customer = client.post("/api/v1/customers", json=body, headers=people["agent"]).get_json()
    client.post(
        f"/api/v1/customers/{customer['id']}/notes", json={"text": NOTE}, headers=people["agent"]
    )
    raw = make_mail(
        sender=f"{NAME} <{EMAIL}>",
        body=MAIL_BODY,
        attachments=(("statement.pdf", b"%PDF-1.4 mei", "application/pdf"),),
    )
    assert post_mail(raw).status_code in (200, 201, 202)
    ticket = db.session.scalars(sa.select(Ticket).where(Ticket.customer_id == customer["id"])).one()
    client.post(
        f"/api/v1/tickets/{ticket.id}/notes", json={"body": STAFF_NOTE}, headers=people["agent"]
    )
    # The mail's interaction, as routing leaves it once an agent has handled it.
    mail = db.session.scalars(sa.select(Interaction).where(Interaction.channel == "email")).one()
    mail.status, mail.outcome = "ended", "answered"
    mail.created_at = mail.enqueued_at = START
    mail.answered_at, mail.ended_at = START + timedelta(minutes=5), START + timedelta(minutes=9)
    mail.agent_id, mail.queue_id = people["alice"].id, queue.id
    complaint = client.post(
        "/api/v1/complaints",
        json={
            "customer_id": customer["id"],
            "category": "card_delivery",
            "channel_received": "phone",
            "received_at": "2024-03-05T09:30:00Z",
        },
        headers=people["agent"],
    ).get_json()
    client.patch(
        f"/api/v1/complaints/{complaint['id']}",
        json={"root_cause": ROOT_CAUSE, "remedy": "Sent Mei a new card", "outcome": "upheld"},
        headers=people["agent"],
    )
    db.session.add_all(
        [
            Interaction(
                channel="voice",
                external_id="CA" + "1" * 32,
                from_address=PHONE,
                to_address="+442000000000",
                customer_id=customer["id"],
                queue_id=queue.id,
                agent_id=people["alice"].id,
                status="ended",
                outcome="answered",
                created_at=START,
                enqueued_at=START,
                answered_at=START + timedelta(seconds=12),
                ended_at=START + timedelta(seconds=192),
                duration_s=180,
                disposition="card_reissued",
                notes=CALL_NOTES,
                recording_url=RECORDING_URL,
                satisfaction=5,
                satisfaction_comment=COMMENT,
            ),
            Interaction(
                channel="voice",
                external_id="CA" + "2" * 32,
                from_address=PHONE,
                customer_id=customer["id"],
                queue_id=queue.id,
                status="ended",
                outcome="abandoned",
                created_at=START + timedelta(hours=1),
                enqueued_at=START + timedelta(hours=1),
                ended_at=START + timedelta(hours=1, seconds=40),
            ),
        ]
    )
    db.session.commit()
    return customer["id"]


def _reports(client, headers) -> dict:
    reports = {}
    for kind in ("interval", "daily", "agents", "sla", "complaints"):
        response = client.get(f"/api/v1/reports/{kind}", query_string=DAY, headers=headers)
        assert response.status_code == 200, response.get_json()
        reports[kind] = response.get_json()
    return reports


def _all_audit() -> str:
    db.session.expire_all()
    events = db.session.scalars(sa.select(AuditEvent)).all()
    return json.dumps([[e.action, e.before, e.after] for e in events])


def test_export_holds_everything_about_the_customer_and_is_audited(client, people, mei):
    response = client.get(f"/api/v1/customers/{mei}/export", headers=people["supervisor"])
    assert response.status_code == 200, response.get_json()
    doc = response.get_json()

    assert doc["customer"]["name"] == NAME
    assert {(i["kind"], i["value"]) for i in doc["customer"]["identities"]} == {
        ("phone", PHONE),
        ("email", EMAIL),
    }
    assert [n["text"] for n in doc["notes"]] == [NOTE]
    tickets = {t["subject"]: t for t in doc["tickets"]}
    mailed = tickets["Card not arrived"]
    kinds = [m["kind"] for m in mailed["messages"]]
    assert "inbound" in kinds and "note" in kinds  # internal notes are theirs to see too
    inbound = next(m for m in mailed["messages"] if m["kind"] == "inbound")
    assert MAIL_BODY in inbound["body"] and inbound["from"] == EMAIL
    assert inbound["attachments"][0]["filename"] == "statement.pdf"
    assert any(m["body"] == STAFF_NOTE for m in mailed["messages"])
    [complaint] = doc["complaints"]
    assert complaint["root_cause"] == ROOT_CAUSE and complaint["received_at"].endswith("Z")
    calls = [i for i in doc["interactions"] if i["channel"] == "voice"]
    assert calls[0]["from"] == PHONE and calls[0]["notes"] == CALL_NOTES
    assert calls[0]["queue"] == "Sales" and calls[0]["duration_s"] == 180
    assert calls[0]["created_at"] == "2024-03-05T09:00:00Z"
    assert calls[0]["recording"]["url"] == RECORDING_URL
    assert {"kind": "csat", "interaction_id": calls[0]["id"], "score": 5, "comment": COMMENT} in (
        doc["surveys"]
    )
    actions = {e["action"] for e in doc["audit"]}
    assert {"ticket.created", "complaint.registered", "complaint.updated"} <= actions

    exported = db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "customer.exported")
    ).one()
    assert exported.object_id == mei
    assert exported.actor_id is not None and exported.after["tickets"] == 2


def test_export_is_for_supervisors_and_unknown_customers_404(client, people, mei):
    assert client.get(f"/api/v1/customers/{mei}/export", headers=people["agent"]).status_code == 403
    missing = client.get(f"/api/v1/customers/{mei + 99}/export", headers=people["supervisor"])
    assert missing.status_code == 404
    assert "customer.exported" not in _all_audit()


def test_erasure_removes_the_person_and_keeps_the_figures(client, people, mei):
    before = _reports(client, people["supervisor"])
    assert sum(row["answered"] for row in before["daily"]["rows"]) > 0
    response = client.post(
        f"/api/v1/customers/{mei}/erase",
        json={"reason": "Subject request SAR-42"},
        headers=people["admin"],
    )
    assert response.status_code == 200, response.get_json()
    summary = response.get_json()
    assert summary["name"] == f"Erased customer {mei}"
    assert summary["status"] == "erased" and summary["identities"] == []
    assert summary["tags"] == [] and summary["region"] is None and summary["marketing_opt_out"]

    after = _reports(client, people["supervisor"])
    for kind in ("interval", "daily", "agents", "sla"):
        assert after[kind] == before[kind], kind
    free_text = {"root_cause", "remedy"}

    def figures(report):
        return [{k: v for k, v in row.items() if k not in free_text} for row in report["rows"]]

    assert "rows" in before["complaints"] and before["complaints"]["rows"]
    assert figures(after["complaints"]) == figures(before["complaints"])

    db.session.expire_all()
    customer = db.session.get(Customer, mei)
    assert customer.id == mei and customer.owner_id is None
    assert db.session.scalar(sa.select(sa.func.count()).select_from(CustomerIdentity)) == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(CustomerNote)) == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(MailAttachment)) == 0
    interactions = db.session.scalars(sa.select(Interaction).order_by(Interaction.id)).all()
    assert all(i.customer_id == mei for i in interactions)  # statistics keep their joins
    assert all(i.from_address is None and i.notes is None for i in interactions)
    assert all(i.recording_url is None and i.satisfaction_comment is None for i in interactions)
    call = next(i for i in interactions if i.duration_s == 180)
    assert (call.satisfaction, call.disposition, call.outcome) == (5, "card_reissued", "answered")
    for message in db.session.scalars(sa.select(TicketMessage)):
        assert message.body == "[erased]" and message.body_original is None
    assert {t.subject for t in db.session.scalars(sa.select(Ticket))} == {"[erased]"}

    audit_text = _all_audit()
    assert all(value not in audit_text for value in PERSONAL), audit_text
    erased = db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "customer.erased")
    ).one()
    assert erased.after["reason"] == "Subject request SAR-42" and erased.after["identities"] == 2
    assert erased.actor_id is not None and erased.before is None

    export = client.get(f"/api/v1/customers/{mei}/export", headers=people["supervisor"])
    text = export.get_data(as_text=True)
    assert all(value not in text for value in PERSONAL)
    found = client.get("/api/v1/customers", query_string={"q": PHONE}, headers=people["agent"])
    assert found.get_json() == []


def test_erasure_needs_a_reason_and_happens_once(client, people, mei):
    url = f"/api/v1/customers/{mei}/erase"
    missing = client.post(url, json={}, headers=people["admin"])
    assert missing.status_code == 422 and "reason" in missing.get_json()["error"]["fields"]
    assert client.post(url, json={"reason": "x" * 501}, headers=people["admin"]).status_code == 422
    db.session.expire_all()
    assert db.session.get(Customer, mei).name == NAME  # nothing changed

    assert (
        client.post(url, json={"reason": "SAR-1"}, headers=people["supervisor"]).status_code == 403
    )
    assert client.post(url, json={"reason": "SAR-1"}, headers=people["admin"]).status_code == 200
    again = client.post(url, json={"reason": "SAR-1"}, headers=people["admin"])
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "conflict"
    patched = client.patch(
        f"/api/v1/customers/{mei}", json={"emails": [EMAIL]}, headers=people["agent"]
    )
    assert patched.status_code == 409
    noted = client.post(
        f"/api/v1/customers/{mei}/notes", json={"text": "hello"}, headers=people["agent"]
    )
    assert noted.status_code == 409
    assert _all_audit().count("customer.erased") == 1


def test_erasure_waits_for_an_interaction_in_progress(client, people, mei, post_mail):
    assert post_mail(make_mail(sender=EMAIL, subject="Another thing")).status_code < 300
    refused = client.post(
        f"/api/v1/customers/{mei}/erase", json={"reason": "SAR-2"}, headers=people["admin"]
    )
    assert refused.status_code == 409
    db.session.expire_all()
    customer = db.session.get(Customer, mei)
    assert customer.name == NAME and len(customer.identities) == 2
    assert "customer.erased" not in _all_audit()


# ---------------------------------------------------------------- recordings at Twilio


def _recording_deletes(twilio_stub, sid: str) -> list:
    path = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{sid}.json"
    return [r for r in twilio_stub.state.requests if r.method == "DELETE" and r.path == path]


def _erase(client, people, customer_id: int) -> None:
    response = client.post(
        f"/api/v1/customers/{customer_id}/erase", json={"reason": "SAR-7"}, headers=people["admin"]
    )
    assert response.status_code == 200, response.get_json()


def _deletions(client, people, customer_id: int) -> dict[str, dict]:
    export = client.get(f"/api/v1/customers/{customer_id}/export", headers=people["supervisor"])
    assert export.status_code == 200
    return {d["recording_sid"]: d for d in export.get_json()["recording_deletions"]}


def _fire_timers() -> int:
    """Fire every routing timer as if its time had come (retries wait minutes)."""
    return routing.run_due_timers(now=utcnow().timestamp() + 86400)


def test_erasure_deletes_recordings_at_twilio_once_through_an_outage(
    client, people, mei, twilio_stub, run_jobs
):
    ticket = db.session.scalars(sa.select(Ticket).where(Ticket.customer_id == mei)).first()
    voicemail_url = RECORDING_URL.replace(RECORDING_SID, VOICEMAIL_SID)
    db.session.add(TicketMessage(ticket=ticket, kind="voicemail", recording_url=voicemail_url))
    db.session.commit()
    twilio_stub.state.fail_recording_deletes = 1  # Twilio's first answer is a 500

    _erase(client, people, mei)  # answered without waiting for Twilio
    assert twilio_stub.state.deleted_recordings == []
    pending = _deletions(client, people, mei)
    assert set(pending) == {RECORDING_SID, VOICEMAIL_SID}
    assert {d["status"] for d in pending.values()} == {"pending"}
    assert {d["reason"] for d in pending.values()} == {"erasure"}

    run_jobs()
    after_outage = _deletions(client, people, mei)
    failed = [d for d in after_outage.values() if d["status"] == "pending"]
    assert len(failed) == 1 and failed[0]["attempts"] == 1
    assert failed[0]["last_error"] == "HTTP 500: TwilioRestException"
    assert len(twilio_stub.state.deleted_recordings) == 1

    assert _fire_timers() >= 1  # the back-off is over: the job is queued again
    run_jobs()
    done = _deletions(client, people, mei)
    assert {d["status"] for d in done.values()} == {"deleted"}
    assert all(d["deleted_at"] and d["last_error"] is None for d in done.values())
    assert sorted(twilio_stub.state.deleted_recordings) == sorted([RECORDING_SID, VOICEMAIL_SID])
    failed_sid = failed[0]["recording_sid"]
    assert len(_recording_deletes(twilio_stub, failed_sid)) == 2  # the 500, then the 204
    other = VOICEMAIL_SID if failed_sid == RECORDING_SID else RECORDING_SID
    assert len(_recording_deletes(twilio_stub, other)) == 1

    # Done is done: neither a rebuild, nor stray timers, nor a job run again asks Twilio.
    routing.rebuild_state(force=True)
    _fire_timers()
    for deletion_id in db.session.scalars(sa.select(RecordingDeletion.id)):
        assert delete_recording(deletion_id) == "nothing to delete"
    run_jobs()
    assert len(twilio_stub.state.deleted_recordings) == 2
    assert len([r for r in twilio_stub.state.requests if r.method == "DELETE"]) == 3


def test_a_recording_twilio_no_longer_has_counts_as_deleted(
    client, people, mei, twilio_stub, run_jobs
):
    twilio_stub.state.deleted_recordings.append(RECORDING_SID)  # deleted in Twilio's console
    _erase(client, people, mei)
    run_jobs()
    assert len(_recording_deletes(twilio_stub, RECORDING_SID)) == 1  # answered 404
    row = db.session.scalars(sa.select(RecordingDeletion)).one()
    db.session.refresh(row)
    assert (row.status, row.attempts, row.customer_id) == ("deleted", 1, mei)


def test_pending_deletions_survive_a_redis_loss(client, people, mei, twilio_stub, run_jobs):
    _erase(client, people, mei)
    get_redis().flushdb()  # the queued job is lost with Redis
    assert run_jobs() is False
    assert twilio_stub.state.deleted_recordings == []
    routing.rebuild_state(force=True)  # re-arms the pending deletion
    assert _fire_timers() >= 1
    run_jobs()
    assert twilio_stub.state.deleted_recordings == [RECORDING_SID]


# ---------------------------------------------------------------- stored copies


def _place_call(client, people, customer_id: int) -> Interaction:
    """Click-to-call from Alice to the customer: the agent leg's TwiML whispers their name."""
    routing.set_agent_status(people["alice"], "available")
    started = client.post(f"/api/v1/customers/{customer_id}/call", json={}, headers=people["agent"])
    assert started.status_code == 201, started.get_json()
    return db.session.get(Interaction, started.get_json()["id"])


def test_erasure_scrubs_stored_copies_and_retried_webhooks_stay_idempotent(
    client, people, mei, twilio_post, twilio_stub
):
    # A click-to-call whose agent leg was told "Calling Mei Chen."
    call = _place_call(client, people, mei)
    agent_leg = {"CallSid": call.agent_call_sid}
    query = {"leg": "agent"}
    whisper = twilio_post(f"{VOICE}/outbound/{call.id}", agent_leg, query=query)
    assert f"Calling {NAME}.".encode() in whisper.data
    dialled = len([r for r in twilio_stub.state.requests if r.path.endswith("/Calls.json")])
    db.session.refresh(call)
    call.status, call.outcome, call.ended_at = "ended", "no_answer", utcnow()
    routing.set_agent_status(people["alice"], "offline")
    db.session.commit()
    # A real incoming call from their number, ended by its status callback.
    incoming = {"CallSid": call_sid(9), "From": PHONE, "To": "+442000000000"}
    first = twilio_post(VOICE, incoming)
    assert first.status_code == 200
    ended = {"CallSid": call_sid(9), "CallStatus": "completed", "SequenceNumber": "1"}
    assert twilio_post(f"{VOICE}/status", {**ended, "CallDuration": "30"}).status_code == 200
    # The callback offered for the abandoned call has been made.
    db.session.execute(sa.update(Interaction).values(status="ended"))
    # An agent's reason for declining, a staff change quoting them, a replay that failed.
    db.session.add(
        Reservation(
            id="r-mei-1",
            interaction_id=call.id,
            agent_id=people["alice"].id,
            status="rejected",
            expires_at=utcnow(),
            reason=f"{NAME} asked for Bob",
            decision={"step": "agent free", "note": f"caller {PHONE}"},
        )
    )
    audit.record("softphone.dialled", "user", people["alice"].id, after={"to": PHONE})
    db.session.commit()
    failed = {"path": f"{VOICE}/status", "form": [["From", PHONE]], "call_sid": call_sid(9)}
    get_redis().rpush(FAILED_KEY, json.dumps(failed))
    interactions = db.session.scalar(sa.select(sa.func.count()).select_from(Interaction))

    _erase(client, people, mei)

    db.session.expire_all()
    bodies = " ".join(db.session.scalars(sa.select(WebhookReceipt.body)))
    assert all(value not in bodies for value in (NAME, PHONE, EMAIL)), bodies
    assert "Calling [erased]." in bodies
    reservation = db.session.get(Reservation, "r-mei-1")
    assert reservation.reason == "[erased] asked for Bob"
    assert reservation.decision == {"step": "agent free", "note": "caller [erased]"}
    assert PHONE not in _all_audit() and "softphone.dialled" in _all_audit()
    assert PHONE not in " ".join(get_redis().lrange(FAILED_KEY, 0, -1))
    erased = db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "customer.erased")
    ).one()
    assert erased.after["webhook_receipts"] >= 1 and erased.after["reservations"] == 1

    # Retried deliveries get the stored (scrubbed) answers and change nothing.
    again = twilio_post(VOICE, incoming)
    assert (again.status_code, again.data) == (200, first.data)
    replayed = twilio_post(f"{VOICE}/outbound/{call.id}", agent_leg, query=query)
    assert replayed.status_code == 200
    assert b"Calling [erased]." in replayed.data and NAME.encode() not in replayed.data
    assert twilio_post(f"{VOICE}/status", {**ended, "CallDuration": "30"}).status_code == 200
    db.session.expire_all()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Interaction)) == interactions
    assert len([r for r in twilio_stub.state.requests if r.path.endswith("/Calls.json")]) == (
        dialled
    )
    calls = db.session.scalars(sa.select(Interaction).where(Interaction.channel == "voice"))
    assert all(i.from_address != PHONE and i.to_address != PHONE for i in calls)
    assert (
        db.session.scalar(
            sa.select(sa.func.count()).select_from(Customer).where(Customer.status != "erased")
        )
        == 0
    )


def test_erasure_scrubs_their_address_from_mail_headers(client, people, mei, post_mail):
    message_id = f"<20240305.{EMAIL}>"
    raw = make_mail(sender=EMAIL, subject="Re: Card", message_id=message_id)
    assert post_mail(raw).status_code < 300
    db.session.execute(sa.update(Interaction).values(status="ended"))
    db.session.commit()
    _erase(client, people, mei)
    db.session.expire_all()
    ids = [m.message_id or "" for m in db.session.scalars(sa.select(TicketMessage))]
    ids += [i.external_id or "" for i in db.session.scalars(sa.select(Interaction))]
    assert "<20240305.[erased]>" in ids and all(EMAIL not in i for i in ids)
