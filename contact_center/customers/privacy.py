"""Data-subject rights: export everything held about a customer, and erase the customer.

Erasure anonymises rather than deletes: the customer row, its tickets and interactions stay
(with their times, queues, outcomes and durations) so reports and their joins give the same
figures afterwards; what identifies or describes the person is removed in one transaction.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from contact_center import audit
from contact_center.agents.models import User
from contact_center.audit import AuditEvent
from contact_center.customers.models import ERASED_STATUS, Customer, CustomerNote
from contact_center.db_types import isoformat, utcnow
from contact_center.errors import Conflict
from contact_center.extensions import db

REDACTED = "[erased]"
# Message kinds the customer writes or leaves (their address is the sender)...
CUSTOMER_SENT = ("inbound", "bounce", "voicemail")
# ...and the ones we send them (their address is the recipient).
SENT_TO_CUSTOMER = ("outbound", "auto_reply")
# Keys of audit values that can hold what a customer wrote or who they are.
PERSONAL_AUDIT_KEYS = frozenset(
    {"subject", "body", "notes", "comment", "root_cause", "remedy", "to", "from", "custom_fields"}
)


# ---------------------------------------------------------------- subject access export


def export(customer: Customer, actor: User) -> dict[str, Any]:
    """Everything held about a customer as one JSON-ready document (audited)."""
    from contact_center.complaints.models import Complaint
    from contact_center.routing.models import Interaction
    from contact_center.tickets.models import Ticket

    tickets = list(
        db.session.scalars(
            sa.select(Ticket).where(Ticket.customer_id == customer.id).order_by(Ticket.id)
        )
    )
    ticket_ids = [t.id for t in tickets]
    complaints = list(
        db.session.scalars(
            sa.select(Complaint).where(Complaint.ticket_id.in_(ticket_ids)).order_by(Complaint.id)
        )
    )
    interactions = list(
        db.session.scalars(
            sa.select(Interaction)
            .where(Interaction.customer_id == customer.id)
            .order_by(Interaction.created_at, Interaction.id)
        )
    )
    document = {
        "exported_at": isoformat(utcnow()),
        "customer": _customer(customer),
        "notes": [_note(n) for n in customer.notes],
        "tickets": [_ticket(t) for t in tickets],
        "complaints": [_complaint(c) for c in complaints],
        "interactions": [_interaction(i) for i in interactions],
        "surveys": _surveys(interactions, complaints),
        "audit": [
            _audit_entry(e)
            for e in _audit_events(
                customer.id, ticket_ids, [c.id for c in complaints], [i.id for i in interactions]
            )
        ],
    }
    audit.record(
        "customer.exported",
        "customer",
        customer.id,
        actor_id=actor.id,
        after={
            "tickets": len(tickets),
            "interactions": len(interactions),
            "complaints": len(complaints),
        },
    )
    db.session.commit()
    return document


def _user(user: User | None) -> str | None:
    return user.display_name if user is not None else None


def _customer(customer: Customer) -> dict[str, Any]:
    return {
        "id": customer.id,
        "name": customer.name,
        "type": customer.type,
        "status": customer.status,
        "region": customer.region,
        "tier": customer.tier,
        "lifetime_value": str(customer.lifetime_value),
        "owner": _user(customer.owner),
        "marketing_opt_out": customer.marketing_opt_out,
        "tags": list(customer.tags or []),
        "created_at": isoformat(customer.created_at),
        "updated_at": isoformat(customer.updated_at),
        "identities": [
            {
                "kind": i.kind,
                "value": i.value,
                "undeliverable_at": isoformat(i.undeliverable_at),
                "undeliverable_reason": i.undeliverable_reason,
            }
            for i in customer.identities
        ],
    }


def _note(note: CustomerNote) -> dict[str, Any]:
    return {"at": isoformat(note.created_at), "author": _user(note.author), "text": note.text}


def _ticket(ticket: Any) -> dict[str, Any]:
    return {
        "id": ticket.id,
        "number": ticket.number,
        "subject": ticket.subject,
        "status": ticket.status,
        "priority": ticket.priority,
        "type": ticket.type,
        "channel": ticket.channel,
        "tags": list(ticket.tags or []),
        "custom_fields": dict(ticket.custom_fields or {}),
        "assignee": _user(ticket.assignee),
        "created_at": isoformat(ticket.created_at),
        "updated_at": isoformat(ticket.updated_at),
        "solved_at": isoformat(ticket.solved_at),
        "closed_at": isoformat(ticket.closed_at),
        # Internal notes are included: staff opinions about a person are their personal data.
        "messages": [
            {
                "id": m.id,
                "kind": m.kind,
                "at": isoformat(m.created_at),
                "author": _user(m.author),
                "subject": m.subject,
                "from": m.from_address,
                "to": m.to_address,
                "body": m.body,
                "body_original": m.body_original,
                "recording_url": m.recording_url,
                "delivery_status": m.delivery_status,
                "sent_at": isoformat(m.sent_at),
                "attachments": [
                    {
                        "filename": a.filename,
                        "content_type": a.content_type,
                        "size": a.size,
                        "download": f"/api/v1/tickets/{ticket.id}/attachments/{a.id}",
                    }
                    for a in m.attachments
                ],
            }
            for m in ticket.messages
        ],
    }


def _complaint(complaint: Any) -> dict[str, Any]:
    times = (
        "received_at",
        "acknowledge_due",
        "summary_resolution_due",
        "final_response_due",
        "acknowledged_at",
        "final_response_at",
        "ombudsman_deadline",
        "closed_at",
        "follow_up_due",
        "follow_up_done_at",
    )
    plain = ("profile", "category", "severity", "channel_received", "stage", "exceptional")
    return {
        "id": complaint.id,
        "ticket_id": complaint.ticket_id,
        **{name: getattr(complaint, name) for name in plain},
        **{name: isoformat(getattr(complaint, name)) for name in times},
        "root_cause": complaint.root_cause,
        "remedy": complaint.remedy,
        "compensation_amount": (
            str(complaint.compensation_amount)
            if complaint.compensation_amount is not None
            else None
        ),
        "outcome": complaint.outcome,
        "follow_up_satisfaction": complaint.follow_up_satisfaction,
    }


def _interaction(interaction: Any) -> dict[str, Any]:
    return {
        "id": interaction.id,
        "channel": interaction.channel,
        "direction": interaction.direction,
        "from": interaction.from_address,
        "to": interaction.to_address,
        "queue": interaction.queue.name if interaction.queue else None,
        "agent": _user(interaction.agent),
        "created_at": isoformat(interaction.created_at),
        "enqueued_at": isoformat(interaction.enqueued_at),
        "answered_at": isoformat(interaction.answered_at),
        "ended_at": isoformat(interaction.ended_at),
        "outcome": interaction.outcome,
        "duration_s": interaction.duration_s,
        "hold_s": interaction.hold_s,
        "disposition": interaction.disposition,
        "notes": interaction.notes,
        "ticket_id": interaction.ticket_id,
        "recording": (
            {"url": interaction.recording_url, "paused": interaction.recording_paused}
            if interaction.recording_url
            else None
        ),
    }


def _surveys(interactions: list[Any], complaints: list[Any]) -> list[dict[str, Any]]:
    from contact_center.portal.servqual import ServqualResponse

    answers: list[dict[str, Any]] = [
        {
            "kind": "csat",
            "interaction_id": i.id,
            "score": i.satisfaction,
            "comment": i.satisfaction_comment,
        }
        for i in interactions
        if i.satisfaction is not None or i.satisfaction_comment
    ]
    answers += [
        {"kind": "complaint_follow_up", "complaint_id": c.id, "score": c.follow_up_satisfaction}
        for c in complaints
        if c.follow_up_satisfaction is not None
    ]
    if interactions:
        responses = db.session.scalars(
            sa.select(ServqualResponse)
            .where(ServqualResponse.interaction_id.in_([i.id for i in interactions]))
            .order_by(ServqualResponse.id)
        )
        answers += [
            {
                "kind": "servqual",
                "interaction_id": r.interaction_id,
                "at": isoformat(r.created_at),
                "expectations": r.expectations,
                "perceptions": r.perceptions,
            }
            for r in responses
        ]
    return answers


def _audit_events(
    customer_id: int, ticket_ids: list[int], complaint_ids: list[int], interaction_ids: list[int]
) -> list[AuditEvent]:
    about = [
        sa.and_(AuditEvent.object_type == kind, AuditEvent.object_id.in_(ids))
        for kind, ids in (
            ("customer", [customer_id]),
            ("ticket", ticket_ids),
            ("complaint", complaint_ids),
            ("interaction", interaction_ids),
        )
        if ids
    ]
    return list(
        db.session.scalars(sa.select(AuditEvent).where(sa.or_(*about)).order_by(AuditEvent.id))
    )


def _audit_entry(event: AuditEvent) -> dict[str, Any]:
    actor = db.session.get(User, event.actor_id) if event.actor_id else None
    # The request's address is the member of staff's, not the customer's: left out.
    return {
        "at": isoformat(event.at),
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "actor": _user(actor),
        "before": event.before,
        "after": event.after,
    }


# ---------------------------------------------------------------- erasure


def erase(customer: Customer, actor: User, reason: str) -> Customer:
    """Anonymise a customer and what they told us, keeping every figure reports count.

    Refused (409) for a customer already erased or with an interaction still in progress.
    Recordings are stored at Twilio; we hold only their URLs, which are dropped (there is
    no recording-deletion call to Twilio yet).
    """
    from contact_center.routing.models import Interaction

    if customer.status == ERASED_STATUS:
        raise Conflict("This customer is already erased.")
    live = db.session.scalar(
        sa.select(Interaction.id)
        .where(Interaction.customer_id == customer.id, Interaction.status != "ended")
        .limit(1)
    )
    if live is not None:
        raise Conflict("The customer has an interaction in progress: erase them once it ends.")
    addresses = {i.value for i in customer.identities}
    counts = {
        "identities": len(customer.identities),
        "notes": len(customer.notes),
        "interactions": _erase_interactions(customer.id, addresses),
        **_erase_tickets(customer.id, addresses),
    }
    customer.name = f"Erased customer {customer.id}"
    customer.identities = []
    customer.notes = []
    customer.tags = []
    customer.region = None
    customer.owner_id = None
    customer.marketing_opt_out = True
    customer.status = ERASED_STATUS
    # Counts and the reason only: the audit trail must not keep what was erased.
    audit.record(
        "customer.erased",
        "customer",
        customer.id,
        actor_id=actor.id,
        after={"reason": reason, **counts},
    )
    db.session.commit()
    return customer


def _erase_interactions(customer_id: int, addresses: set[str]) -> int:
    from contact_center.routing.models import Interaction

    conditions = [Interaction.customer_id == customer_id]
    if addresses:
        # Calls and mail from their numbers before they were known as this customer.
        conditions += [
            Interaction.from_address.in_(addresses),
            Interaction.to_address.in_(addresses),
        ]
    interactions = list(db.session.scalars(sa.select(Interaction).where(sa.or_(*conditions))))
    for interaction in interactions:
        customer_side = "to_address" if interaction.direction == "outbound" else "from_address"
        setattr(interaction, customer_side, None)
        if interaction.to_address in addresses:
            interaction.to_address = None
        if interaction.from_address in addresses:
            interaction.from_address = None
        interaction.notes = None
        interaction.satisfaction_comment = None
        interaction.recording_url = None
    redact_audit("interaction", [i.id for i in interactions])
    return len(interactions)


def _erase_tickets(customer_id: int, addresses: set[str]) -> dict[str, int]:
    from contact_center.complaints.models import Complaint
    from contact_center.tickets.models import Ticket

    tickets = list(db.session.scalars(sa.select(Ticket).where(Ticket.customer_id == customer_id)))
    ticket_ids = [t.id for t in tickets]
    messages = 0
    for ticket in tickets:
        ticket.subject = REDACTED
        ticket.custom_fields = {}
        for message in ticket.messages:
            redact_message(message, addresses)
            messages += 1
    complaints = list(
        db.session.scalars(sa.select(Complaint).where(Complaint.ticket_id.in_(ticket_ids)))
    )
    for complaint in complaints:
        redact_complaint(complaint)
    redact_audit("ticket", ticket_ids)
    redact_audit("complaint", [c.id for c in complaints])
    return {"tickets": len(tickets), "messages": messages, "complaints": len(complaints)}


def redact_message(message: Any, addresses: set[str] | None = None) -> None:
    """Remove what a ticket message says and who it came from or went to."""
    message.body = REDACTED
    message.body_original = None
    if message.subject is not None:
        message.subject = REDACTED
    if message.kind in CUSTOMER_SENT or message.from_address in (addresses or ()):
        message.from_address = None
    if message.kind in SENT_TO_CUSTOMER or message.to_address in (addresses or ()):
        message.to_address = None
    # A bounce's error quotes the address it could not deliver to.
    message.delivery_error = None
    message.recording_url = None
    message.attachments = []


def redact_complaint(complaint: Any) -> None:
    """Remove a complaint's free text; its category, dates, outcome and amount stay."""
    if complaint.root_cause is not None:
        complaint.root_cause = REDACTED
    if complaint.remedy is not None:
        complaint.remedy = REDACTED


def redact_audit(object_type: str, ids: list[int]) -> None:
    """Blank the personal values of these objects' audit entries (the entries stay)."""
    if not ids:
        return
    events = db.session.scalars(
        sa.select(AuditEvent).where(
            AuditEvent.object_type == object_type, AuditEvent.object_id.in_(ids)
        )
    )
    for event in events:
        for side in ("before", "after"):
            values = getattr(event, side)
            if values and PERSONAL_AUDIT_KEYS & values.keys():
                setattr(
                    event,
                    side,
                    {k: REDACTED if k in PERSONAL_AUDIT_KEYS else v for k, v in values.items()},
                )
