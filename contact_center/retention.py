"""Retention: personal content older than its period is removed, statistics stay.

Three periods in days (0 = keep forever): RETENTION_RECORDINGS_DAYS drops recording
references, RETENTION_MESSAGES_DAYS redacts the messages of closed tickets,
RETENTION_CLOSED_TICKETS_DAYS anonymises closed tickets (subject, custom fields, messages,
complaint free text). Rows are redacted rather than deleted: reports count tickets,
complaints and interactions. Every worker offers to run it; a Redis key lets one run an hour.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app

from contact_center import audit, jobs
from contact_center.customers.privacy import (
    REDACTED,
    redact_audit,
    redact_complaint,
    redact_message,
)
from contact_center.db_types import utcnow
from contact_center.extensions import db
from contact_center.redis_client import get_redis

SETTINGS = ("RETENTION_RECORDINGS_DAYS", "RETENTION_MESSAGES_DAYS", "RETENTION_CLOSED_TICKETS_DAYS")
TURN_KEY = "cc:retention:turn"
EVERY_S = 3600


def periods() -> dict[str, int]:
    """The configured periods in days (0 = keep forever)."""
    return {key: int(current_app.config.get(key) or 0) for key in SETTINGS}


def apply(now: datetime | None = None) -> dict[str, int] | None:
    """Apply every configured period now, in one transaction, audited as `retention.applied`
    with the counts; None when no period is set."""
    days = periods()
    if not any(days.values()):
        return None
    now = now or utcnow()
    counts = {
        "recordings": _recordings(now, days["RETENTION_RECORDINGS_DAYS"]),
        "messages": _messages(now, days["RETENTION_MESSAGES_DAYS"]),
        "closed_tickets": _closed_tickets(now, days["RETENTION_CLOSED_TICKETS_DAYS"]),
    }
    audit.record(
        "retention.applied",
        "retention",
        0,
        after={**counts, **{key.lower(): value for key, value in days.items()}},
    )
    db.session.commit()
    return counts


def retention_job() -> dict[str, int] | None:
    """RQ job: apply retention."""
    return apply()


def offer_turn() -> bool:
    """Queue the retention job if no worker did within the hour; True when queued."""
    if not any(periods().values()):
        return False
    if not get_redis().set(TURN_KEY, 1, nx=True, ex=EVERY_S):
        return False
    jobs.enqueue(retention_job)
    return True


def _cutoff(now: datetime, days: int) -> datetime | None:
    return now - timedelta(days=days) if days > 0 else None


def _recordings(now: datetime, days: int) -> int:
    from contact_center.routing.models import Interaction
    from contact_center.tickets.models import TicketMessage

    cutoff = _cutoff(now, days)
    if cutoff is None:
        return 0
    # Recordings live at Twilio; we hold their URLs only, and there is no deletion call yet.
    total = 0
    for model in (Interaction, TicketMessage):
        result = db.session.execute(
            sa.update(model)
            .where(model.recording_url.is_not(None), model.created_at < cutoff)
            .values(recording_url=None)
            .execution_options(synchronize_session=False)
        )
        total += result.rowcount or 0
    return total


def _messages(now: datetime, days: int) -> int:
    from contact_center.tickets.models import Ticket, TicketMessage

    cutoff = _cutoff(now, days)
    if cutoff is None:
        return 0
    messages = db.session.scalars(
        sa.select(TicketMessage)
        .join(Ticket, Ticket.id == TicketMessage.ticket_id)
        .where(
            Ticket.status == "closed",
            TicketMessage.created_at < cutoff,
            TicketMessage.body != REDACTED,
        )
    )
    return _redact_all(messages)


def _redact_all(messages: Any) -> int:
    count = 0
    for message in messages:
        redact_message(message)
        count += 1
    return count


def _closed_tickets(now: datetime, days: int) -> int:
    from contact_center.complaints.models import Complaint
    from contact_center.tickets.models import Ticket

    cutoff = _cutoff(now, days)
    if cutoff is None:
        return 0
    due = sa.and_(Ticket.status == "closed", Ticket.closed_at < cutoff, Ticket.subject != REDACTED)
    complaints = db.session.scalars(
        sa.select(Complaint).where(Complaint.ticket_id.in_(sa.select(Ticket.id).where(due)))
    )
    for complaint in complaints:
        redact_complaint(complaint)
    tickets = list(db.session.scalars(sa.select(Ticket).where(due)))
    for ticket in tickets:
        ticket.subject = REDACTED
        ticket.custom_fields = {}
        _redact_all(m for m in ticket.messages if m.body != REDACTED)
    redact_audit("ticket", [t.id for t in tickets])
    return len(tickets)
