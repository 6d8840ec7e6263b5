"""Data-subject rights: export everything held about a customer, and erase the customer.

Erasure anonymises rather than deletes: the customer row, its tickets and interactions stay
(with their times, queues, outcomes and durations) so reports and their joins give the same
figures afterwards; what identifies or describes the person is removed in one transaction.
"""

from __future__ import annotations

import json
import logging
import xml.etree.ElementTree as ET
from html import escape
from typing import Any
from urllib.parse import quote, quote_plus

import redis
import sqlalchemy as sa

from contact_center import audit
from contact_center.agents.models import User
from contact_center.audit import AuditEvent
from contact_center.customers.models import ERASED_STATUS, Customer, CustomerNote
from contact_center.db_types import isoformat, utcnow
from contact_center.errors import Conflict
from contact_center.extensions import db
from contact_center.recording_deletions import (
    for_customer,
    queue_deletions,
    recording_sid,
    request_deletions,
)
from contact_center.webhook_receipts import WebhookReceipt

log = logging.getLogger(__name__)
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
        "recording_deletions": [_deletion(d) for d in for_customer(customer.id)],
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


def _deletion(deletion: Any) -> dict[str, Any]:
    return {
        "recording_sid": deletion.recording_sid,
        "reason": deletion.reason,
        "status": deletion.status,
        "attempts": deletion.attempts,
        "last_error": deletion.last_error,
        "requested_at": isoformat(deletion.requested_at),
        "deleted_at": isoformat(deletion.deleted_at),
    }


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
    Their recordings are deleted at Twilio by retried jobs queued after the commit (see
    recording_deletions), so a Twilio outage neither delays nor fails the erasure. Stored
    copies of their name, numbers and addresses (webhook answers kept for retries, routing
    decision records, audit entries, message headers, failed deferred webhooks) are scrubbed.
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
    values = personal_values(customer.name, addresses)
    recordings: list[str | None] = []
    interactions = _erase_interactions(customer.id, addresses, values, recordings)
    tickets = _erase_tickets(customer.id, addresses, values, recordings)
    deletions = request_deletions(recordings, reason="erasure", customer_id=customer.id)
    # Webhooks about their calls (CallSids) and recordings (RecordingSids).
    receipt_keys = interactions["call_sids"] | {s for s in map(recording_sid, recordings) if s}
    counts = {
        "identities": len(customer.identities),
        "notes": len(customer.notes),
        "interactions": interactions["interactions"],
        **tickets,
        "recordings": len(deletions),
        "webhook_receipts": scrub_receipts(receipt_keys, values),
        "reservations": _scrub_reservations(interactions["ids"], values),
        "audit_entries": scrub_audit(values),
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
    queue_deletions(deletions)
    scrub_failed_deferred(values)
    return customer


def _erase_interactions(
    customer_id: int, addresses: set[str], values: list[str], recordings: list[str | None]
) -> dict[str, Any]:
    from contact_center.routing.models import Interaction

    conditions = [Interaction.customer_id == customer_id]
    if addresses:
        # Calls and mail from their numbers before they were known as this customer.
        conditions += [
            Interaction.from_address.in_(addresses),
            Interaction.to_address.in_(addresses),
        ]
    interactions = list(db.session.scalars(sa.select(Interaction).where(sa.or_(*conditions))))
    call_sids: set[str] = set()
    for interaction in interactions:
        call_sids.update(
            sid
            for sid in (
                interaction.external_id,
                interaction.agent_call_sid,
                interaction.consult_call_sid,
            )
            if sid
        )
        recordings.append(interaction.recording_url)
        customer_side = "to_address" if interaction.direction == "outbound" else "from_address"
        setattr(interaction, customer_side, None)
        if interaction.to_address in addresses:
            interaction.to_address = None
        if interaction.from_address in addresses:
            interaction.from_address = None
        interaction.notes = None
        interaction.satisfaction_comment = None
        interaction.recording_url = None
        # A mail's Message-ID can carry their address. (Scrubbed, it no longer recognises a
        # redelivery of that mail; providers stop delivering once they had a 2xx.)
        if interaction.external_id and interaction.channel == "email":
            interaction.external_id = scrub_text(interaction.external_id, values)
    ids = [i.id for i in interactions]
    redact_audit("interaction", ids)
    return {"interactions": len(interactions), "call_sids": call_sids, "ids": ids}


def _erase_tickets(
    customer_id: int, addresses: set[str], values: list[str], recordings: list[str | None]
) -> dict[str, int]:
    from contact_center.complaints.models import Complaint
    from contact_center.tickets.models import Ticket

    tickets = list(db.session.scalars(sa.select(Ticket).where(Ticket.customer_id == customer_id)))
    ticket_ids = [t.id for t in tickets]
    messages = 0
    for ticket in tickets:
        ticket.subject = REDACTED
        ticket.custom_fields = {}
        for message in ticket.messages:
            recordings.append(message.recording_url)
            redact_message(message, addresses)
            # Mail headers that can carry their address (Message-IDs of their thread).
            for header in ("message_id", "in_reply_to", "references"):
                if getattr(message, header):
                    setattr(message, header, scrub_text(getattr(message, header), values))
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


# ---------------------------------------------------------------- stored copies


def personal_values(name: str | None, addresses: set[str]) -> list[str]:
    """The strings that identify a customer (name, numbers, addresses) as stored copies may
    hold them: as given, XML-escaped (TwiML), URL-encoded and JSON-escaped; longest first."""
    values: set[str] = set()
    for value in {name or "", *addresses}:
        if len(value.strip()) < 3:  # "" or initials: replacing them would garble everything
            continue
        values.update(
            {
                value,
                escape(value),
                escape(value, quote=False),
                quote(value, safe=""),
                quote_plus(value),
                json.dumps(value)[1:-1],
            }
        )
    return sorted(values, key=len, reverse=True)


def scrub_text(text: str, values: list[str]) -> str:
    """`text` with every personal value replaced by REDACTED."""
    for value in values:
        if value in text:
            text = text.replace(value, REDACTED)
    return text


def scrub_json(data: Any, values: list[str]) -> Any:
    """JSON data with every personal value in its strings (keys too) replaced."""
    if isinstance(data, str):
        return scrub_text(data, values)
    if isinstance(data, list):
        return [scrub_json(item, values) for item in data]
    if isinstance(data, dict):
        return {scrub_text(k, values): scrub_json(v, values) for k, v in data.items()}
    return data


def scrub_receipts(sids: set[str], values: list[str]) -> int:
    """Scrub the stored answers to webhooks about these CallSids and RecordingSids.

    The receipt (its key, status code and content type) stays, so a retried webhook is still
    answered from it without being processed again; only the personal values in its body go.
    Returns how many receipts changed.
    """
    changed = 0
    ordered = sorted(sids)
    for start in range(0, len(ordered), 100):
        about = [
            condition
            for sid in ordered[start : start + 100]
            for condition in (
                WebhookReceipt.key.like(f"%:{sid}"),
                WebhookReceipt.key.like(f"%:{sid}:%"),
            )
        ]
        for receipt in db.session.scalars(sa.select(WebhookReceipt).where(sa.or_(*about))):
            body = scrub_text(receipt.body, values)
            if body != receipt.body and "xml" in receipt.content_type:
                body = _scrub_twiml(receipt.body, values) or body
            if body != receipt.body:
                receipt.body = body
                changed += 1
    return changed


def _scrub_twiml(body: str, values: list[str]) -> str | None:
    """TwiML with the values replaced in its text and attribute values only, so a name that
    is also a verb's name (Say, Dial) cannot break the markup; None if it does not parse."""
    declaration, _, markup = body.rpartition("?>") if body.startswith("<?xml") else ("", "", body)
    try:
        root = ET.fromstring(markup)  # noqa: S314  (our own stored answer)
    except ET.ParseError:
        return None
    for element in root.iter():
        element.text = scrub_text(element.text, values) if element.text else element.text
        element.tail = scrub_text(element.tail, values) if element.tail else element.tail
        for name, value in element.attrib.items():
            element.attrib[name] = scrub_text(value, values)
    prefix = f"{declaration}?>" if declaration else ""
    return prefix + ET.tostring(root, encoding="unicode")


def _scrub_reservations(interaction_ids: list[int], values: list[str]) -> int:
    """Scrub the routing decision records ("why this agent") and reasons of these offers."""
    from contact_center.routing.models import Reservation

    changed = 0
    for start in range(0, len(interaction_ids), 500):
        chunk = interaction_ids[start : start + 500]
        for reservation in db.session.scalars(
            sa.select(Reservation).where(Reservation.interaction_id.in_(chunk))
        ):
            decision = scrub_json(reservation.decision or {}, values)
            reason = scrub_text(reservation.reason, values) if reservation.reason else None
            if decision != (reservation.decision or {}) or reason != reservation.reason:
                reservation.decision, reservation.reason = decision, reason
                changed += 1
    return changed


def scrub_audit(values: list[str]) -> int:
    """Scrub the personal values out of every audit entry that holds one (any object: a
    staff member's change may quote a customer); the entries and their keys stay."""
    if not values:
        return 0
    text = [sa.cast(column, sa.Text) for column in (AuditEvent.before, AuditEvent.after)]
    holds = [t.contains(value, autoescape=True) for t in text for value in values]
    changed = 0
    for event in db.session.scalars(sa.select(AuditEvent).where(sa.or_(*holds))):
        for side in ("before", "after"):
            data = getattr(event, side)
            if data:
                setattr(event, side, scrub_json(data, values))
        changed += 1
    return changed


def scrub_failed_deferred(values: list[str]) -> int:
    """Scrub the voice webhooks a replay could not store (kept in Redis for a person to look
    at) that name the customer; the ones still waiting for replay are left to it."""
    from contact_center.redis_client import get_redis
    from webhooks.deferred import FAILED_KEY

    changed = 0
    try:
        client = get_redis()
        for index, raw in enumerate(client.lrange(FAILED_KEY, 0, -1)):
            entry = json.loads(raw)
            scrubbed = scrub_json(entry, values)
            if scrubbed != entry:
                client.lset(FAILED_KEY, index, json.dumps(scrubbed))
                changed += 1
    except redis.RedisError:
        log.exception("failed deferred webhooks not scrubbed (Redis unavailable)")
    return changed
