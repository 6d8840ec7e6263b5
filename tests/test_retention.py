"""Retention: old recordings, messages and closed tickets lose their personal content; the
rows reports count stay; old webhook receipts go. `flask retention apply`, and the hourly
job the workers queue."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from contact_center import retention
from contact_center.audit import AuditEvent
from contact_center.complaints.models import Complaint
from contact_center.customers.services import create_customer
from contact_center.db_types import utcnow
from contact_center.extensions import db
from contact_center.recording_deletions import RecordingDeletion
from contact_center.routing import services as routing
from contact_center.routing.models import Interaction
from contact_center.tickets.models import MailAttachment, Ticket, TicketMessage
from contact_center.webhook_receipts import WebhookReceipt
from tests.conftest import ACCOUNT_SID, VOICE, call_sid

PERIODS = {
    "RETENTION_RECORDINGS_DAYS": 30,
    "RETENTION_MESSAGES_DAYS": 90,
    "RETENTION_CLOSED_TICKETS_DAYS": 365,
}
URL = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/RE"
OFF = {"RETENTION_WEBHOOK_RECEIPTS_DAYS": 0}


def _ticket(customer_id, status, age_days, subject, body):
    at = utcnow() - timedelta(days=age_days)
    ticket = Ticket(
        subject=subject,
        status=status,
        channel="email",
        customer_id=customer_id,
        custom_fields={"account": "12345678"},
        created_at=at,
        closed_at=at if status == "closed" else None,
    )
    message = TicketMessage(
        kind="inbound",
        body=body,
        body_original=body + "\n> quoted",
        subject=subject,
        from_address="mei@example.org",
        created_at=at,
    )
    message.attachments = [
        MailAttachment(filename="id.png", content_type="image/png", size=3, data=b"png")
    ]
    ticket.messages = [message]
    db.session.add(ticket)
    return ticket


@pytest.fixture
def history(app):
    """Closed tickets 400 and 100 days old, an open one 400 days old, a recent closed one,
    a complaint on the oldest, and calls recorded 40 and 10 days ago."""
    customer = create_customer({"name": "Mei Chen", "emails": ["mei@example.org"]})
    tickets = {
        "ancient": _ticket(customer.id, "closed", 400, "Card lost in 2023", "ancient body"),
        "old": _ticket(customer.id, "closed", 100, "Address change", "old body"),
        "open": _ticket(customer.id, "open", 400, "Still talking", "open body"),
        "recent": _ticket(customer.id, "closed", 5, "New PIN", "recent body"),
    }
    db.session.flush()
    db.session.add(
        Complaint(
            ticket_id=tickets["ancient"].id,
            profile="uk_fca_disp",
            category="card_delivery",
            channel_received="email",
            received_at=utcnow() - timedelta(days=400),
            acknowledge_due=utcnow(),
            final_response_due=utcnow(),
            root_cause="Courier lost Mei's card",
            outcome="upheld",
        )
    )
    for n, age in ((1, 40), (2, 10)):
        db.session.add(
            Interaction(
                channel="voice",
                status="ended",
                outcome="answered",
                customer_id=customer.id,
                recording_url=f"{URL}{n}",
                created_at=utcnow() - timedelta(days=age),
                duration_s=60,
            )
        )
    db.session.commit()
    return {name: t.id for name, t in tickets.items()}


def _body(ticket_id):
    return db.session.scalars(
        sa.select(TicketMessage.body).where(TicketMessage.ticket_id == ticket_id)
    ).one()


def _retention_audits():
    return db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "retention.applied")
    ).all()


def test_apply_removes_personal_content_past_each_period(app, history):
    app.config.update(PERIODS)
    counts = retention.apply()
    assert counts == {"recordings": 1, "messages": 2, "closed_tickets": 1, "webhook_receipts": 0}

    db.session.expire_all()
    recordings = db.session.scalars(sa.select(Interaction.recording_url).order_by(Interaction.id))
    assert list(recordings) == [None, f"{URL}2"]
    # Messages of closed tickets past 90 days; the open ticket's and the recent one's stay.
    assert _body(history["ancient"]) == "[erased]" and _body(history["old"]) == "[erased]"
    assert _body(history["open"]) == "open body" and _body(history["recent"]) == "recent body"
    ancient = db.session.get(Ticket, history["ancient"])
    assert ancient.subject == "[erased]" and ancient.custom_fields == {}
    assert ancient.messages[0].from_address is None and ancient.messages[0].attachments == []
    assert db.session.get(Ticket, history["old"]).subject == "Address change"  # under a year
    complaint = db.session.scalars(sa.select(Complaint)).one()
    assert complaint.root_cause == "[erased]" and complaint.outcome == "upheld"
    # Nothing reports count is deleted.
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Ticket)) == 4
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Interaction)) == 2
    assert db.session.scalar(sa.select(sa.func.count()).select_from(TicketMessage)) == 4

    [entry] = _retention_audits()
    assert entry.after["closed_tickets"] == 1 and entry.after["retention_messages_days"] == 90

    assert retention.apply() == {
        "recordings": 0,
        "messages": 0,
        "closed_tickets": 0,
        "webhook_receipts": 0,
    }
    assert len(_retention_audits()) == 2  # one entry per run


def test_retention_is_off_unless_a_period_is_set(app, history, runner):
    app.config.update(OFF)
    assert retention.apply() is None
    result = runner.invoke(args=["retention", "apply"])
    assert result.exit_code == 0 and "Retention is off" in result.output
    assert retention.offer_turn() is False
    assert _retention_audits() == []
    assert _body(history["ancient"]) == "ancient body"


def test_cli_applies_retention_now(app, history, runner):
    app.config.update(PERIODS)
    result = runner.invoke(args=["retention", "apply"])
    assert result.exit_code == 0, result.output
    assert "1 recording references removed (the recordings are deleted at Twilio" in result.output
    assert "2 messages redacted, 1 closed tickets anonymised, 0 webhook" in result.output
    assert len(_retention_audits()) == 1


def test_workers_queue_the_job_once_an_hour(app, history, run_jobs):
    app.config.update(PERIODS)
    assert retention.offer_turn() is True
    assert retention.offer_turn() is False  # another worker, within the hour
    run_jobs()
    db.session.expire_all()
    assert len(_retention_audits()) == 1
    assert _body(history["ancient"]) == "[erased]"


def test_negative_periods_are_refused(app_config):
    from contact_center import create_app

    with pytest.raises(RuntimeError, match="RETENTION_MESSAGES_DAYS"):
        create_app({**app_config, "RETENTION_MESSAGES_DAYS": -1})


def test_expired_recordings_are_deleted_at_twilio_once(app, history, twilio_stub, run_jobs, runner):
    app.config.update(PERIODS)
    twilio_stub.state.fail_recording_deletes = 1
    assert retention.apply()["recordings"] == 1
    deletion = db.session.scalars(sa.select(RecordingDeletion)).one()
    assert (deletion.recording_sid, deletion.reason, deletion.status) == (
        "RE1",
        "retention",
        "pending",
    )
    assert deletion.customer_id is not None

    run_jobs()  # Twilio answers 500: the deletion waits for its retry
    db.session.refresh(deletion)
    assert (deletion.status, deletion.attempts) == ("pending", 1)
    assert twilio_stub.state.deleted_recordings == []
    shown = runner.invoke(args=["retention", "recordings"])
    assert "deleted at Twilio: 0; pending: 1." in shown.output
    assert "RE1, 1 attempts, last error: HTTP 500: TwilioRestException." in shown.output
    routing.run_due_timers(now=utcnow().timestamp() + 86400)
    run_jobs()
    db.session.refresh(deletion)
    assert (deletion.status, deletion.attempts) == ("deleted", 2)
    assert twilio_stub.state.deleted_recordings == ["RE1"]

    retention.apply()  # the reference is gone: nothing is asked again
    routing.run_due_timers(now=utcnow().timestamp() + 86400)
    run_jobs()
    deletes = [r for r in twilio_stub.state.requests if r.method == "DELETE"]
    assert [r.path.rsplit("/", 1)[1] for r in deletes] == ["RE1.json", "RE1.json"]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(RecordingDeletion)) == 1
    shown = runner.invoke(args=["retention", "recordings"])
    assert shown.output == "Recordings deleted at Twilio: 1; pending: 0.\n"


def test_webhook_receipts_outlive_retries_only(app, twilio_post):
    """On by default (3 days): an older receipt goes; a retry within the window is still
    answered from its receipt and changes nothing."""
    assert app.config["RETENTION_WEBHOOK_RECEIPTS_DAYS"] == 3
    calls = [
        {"CallSid": call_sid(n), "From": "+447700900123", "To": "+442000000000"} for n in (1, 2)
    ]
    answers = [twilio_post(VOICE, form) for form in calls]
    assert [a.status_code for a in answers] == [200, 200]
    old = db.session.scalars(
        sa.select(WebhookReceipt).where(WebhookReceipt.key == f"voice:{call_sid(1)}")
    ).one()
    old.created_at = utcnow() - timedelta(days=4)
    db.session.commit()

    assert retention.apply()["webhook_receipts"] == 1
    keys = set(db.session.scalars(sa.select(WebhookReceipt.key)))
    assert f"voice:{call_sid(1)}" not in keys and f"voice:{call_sid(2)}" in keys
    retry = twilio_post(VOICE, calls[1])
    assert (retry.status_code, retry.data) == (200, answers[1].data)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Interaction)) == 2
    [entry] = _retention_audits()
    assert entry.after["webhook_receipts"] == 1 and entry.after["retention_messages_days"] == 0


def test_webhook_receipt_retention_can_be_set_or_turned_off(app_config):
    from contact_center import create_app

    assert (
        create_app({**app_config, "RETENTION_WEBHOOK_RECEIPTS_DAYS": 0}).config[
            "RETENTION_WEBHOOK_RECEIPTS_DAYS"
        ]
        == 0
    )
    with pytest.raises(RuntimeError, match="RETENTION_WEBHOOK_RECEIPTS_DAYS"):
        create_app({**app_config, "RETENTION_WEBHOOK_RECEIPTS_DAYS": -2})
