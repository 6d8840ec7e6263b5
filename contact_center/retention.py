"""Retention: personal content older than its period is removed, statistics stay.

Periods in days (0 = keep forever): RETENTION_RECORDINGS_DAYS drops recording references
and deletes the recordings at Twilio (retried jobs, see recording_deletions),
RETENTION_MESSAGES_DAYS redacts the messages of closed tickets,
RETENTION_CLOSED_TICKETS_DAYS anonymises closed tickets (subject, custom fields, messages,
complaint free text), RETENTION_WEBHOOK_RECEIPTS_DAYS deletes the stored answers to
webhooks (kept only so a provider's retry is answered without being processed again; on by
default). Tickets, complaints and interactions are redacted rather than deleted: reports
count them. Every worker offers to run it; a Redis key lets one run an hour.
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
from contact_center.recording_deletions import queue_deletions, request_deletions
from contact_center.redis_client import get_redis
from contact_center.webhook_receipts import WebhookReceipt

SETTINGS = (
    "RETENTION_RECORDINGS_DAYS",
    "RETENTION_MESSAGES_DAYS",
    "RETENTION_CLOSED_TICKETS_DAYS",
    "RETENTION_WEBHOOK_RECEIPTS_DAYS",
)
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
    deletions: list[int] = []
    counts = {
        "recordings": _recordings(now, days["RETENTION_RECORDINGS_DAYS"], deletions),
        "messages": _messages(now, days["RETENTION_MESSAGES_DAYS"]),
        "closed_tickets": _closed_tickets(now, days["RETENTION_CLOSED_TICKETS_DAYS"]),
        "webhook_receipts": _webhook_receipts(now, days["RETENTION_WEBHOOK_RECEIPTS_DAYS"]),
    }
    audit.record(
        "retention.applied",
        "retention",
        0,
        after={
            **counts,
            "recording_deletions": len(deletions),
            **{key.lower(): value for key, value in days.items()},
        },
    )
    db.session.commit()
    queue_deletions(deletions)
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


def _recordings(now: datetime, days: int, deletions: list[int]) -> int:
    """Drop expired recording URLs; the recordings go at Twilio (their ids into `deletions`)."""
    from contact_center.routing.models import Interaction
    from contact_center.tickets.models import Ticket, TicketMessage

    cutoff = _cutoff(now, days)
    if cutoff is None:
        return 0
    total = 0
    owners = (
        (Interaction, Interaction.customer_id, None),
        (TicketMessage, Ticket.customer_id, Ticket),
    )
    for model, customer_id, join in owners:
        expired = sa.and_(model.recording_url.is_not(None), model.created_at < cutoff)
        query = sa.select(model.id, model.recording_url, customer_id).where(expired)
        if join is not None:
            query = query.join(join, join.id == model.ticket_id)
        rows = db.session.execute(query).all()
        by_customer: dict[int | None, list[str]] = {}
        for _id, url, owner in rows:
            by_customer.setdefault(owner, []).append(url)
        for owner, urls in by_customer.items():
            deletions += request_deletions(urls, reason="retention", customer_id=owner)
        ids = [row[0] for row in rows]
        for start in range(0, len(ids), 500):
            db.session.execute(
                sa.update(model)
                .where(model.id.in_(ids[start : start + 500]))
                .values(recording_url=None)
                .execution_options(synchronize_session=False)
            )
        total += len(ids)
    return total


def _webhook_receipts(now: datetime, days: int) -> int:
    """Delete the stored webhook answers older than the period (past any provider retry)."""
    cutoff = _cutoff(now, days)
    if cutoff is None:
        return 0
    result = db.session.execute(
        sa.delete(WebhookReceipt)
        .where(WebhookReceipt.created_at < cutoff)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0


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
