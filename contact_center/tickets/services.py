"""Ticket services: create, add messages, voicemails from calls, status for self-service.

This is the first slice of the tickets module: what the voice channel needs (a voicemail
becomes a ticket; a caller can hear a ticket's status). Lifecycle rules, replies, merge and
complaints build on it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from string import Formatter
from typing import Any

import sqlalchemy as sa

from contact_center import audit
from contact_center.agents.models import User
from contact_center.agents.services import can_read, readable_by
from contact_center.customers.services import mask
from contact_center.db_types import contains, isoformat, utcnow
from contact_center.errors import APIError, Conflict, NotFound
from contact_center.extensions import db
from contact_center.routing.models import Interaction, Queue
from contact_center.system_settings import get_setting
from contact_center.tickets.mail import one_line
from contact_center.tickets.models import (
    TRANSITIONS,
    CannedResponse,
    Ticket,
    TicketLink,
    TicketMessage,
    TicketStatusChange,
)

NUMBER_BASE = 10000  # ticket numbers start at five digits
OPEN_STATUSES = ("new", "open", "pending", "on_hold")
SPOKEN_STATUS = {
    "new": "has been received and is waiting for one of our team",
    "open": "is being worked on by our team",
    "pending": "is waiting for information from you",
    "on_hold": "is on hold while we wait for someone else",
    "solved": "has been solved",
    "closed": "is closed",
}


def create_ticket(
    subject: str,
    channel: str,
    *,
    customer_id: int | None = None,
    queue_id: int | None = None,
    type: str = "question",  # noqa: A002  (the domain's word)
    priority: str = "normal",
    actor_id: int | None = None,
) -> Ticket:
    """Stage a new ticket with its number (the caller commits)."""
    ticket = Ticket(
        subject=one_line(subject)[:300],
        channel=channel,
        customer_id=customer_id,
        queue_id=queue_id,
        type=type,
        priority=priority,
        status="new",
    )
    db.session.add(ticket)
    db.session.flush()
    ticket.number = str(NUMBER_BASE + ticket.id)
    record_status(ticket, "new", ticket.created_at)
    audit.record(
        "ticket.created",
        "ticket",
        ticket.id,
        actor_id=actor_id,
        after={"number": ticket.number, "channel": channel, "status": "new"},
    )
    return ticket


def record_status(ticket: Ticket, status: str, at: datetime | None = None) -> None:
    """Stage a status in the ticket's history (SLA clocks are replayed from it)."""
    db.session.add(TicketStatusChange(ticket_id=ticket.id, status=status, at=at or utcnow()))


def add_message(
    ticket: Ticket,
    kind: str,
    body: str = "",
    *,
    author_id: int | None = None,
    interaction_id: int | None = None,
    recording_url: str | None = None,
) -> TicketMessage:
    """Stage a message on a ticket (the caller commits)."""
    message = TicketMessage(
        kind=kind,
        body=body,
        author_id=author_id,
        interaction_id=interaction_id,
        recording_url=recording_url,
    )
    ticket.messages.append(message)
    return message


def ticket_by_number(number: str) -> Ticket | None:
    """The ticket a customer quotes by its number."""
    return db.session.scalar(sa.select(Ticket).where(Ticket.number == number.strip()))


def spoken_status(ticket: Ticket) -> str:
    """A ticket's status as a caller hears it."""
    return f"Ticket {' '.join(ticket.number or '')} {SPOKEN_STATUS[ticket.status]}."


def _voicemail_message(ticket: Ticket, interaction: Interaction) -> TicketMessage | None:
    return next(
        (
            m
            for m in ticket.messages
            if m.kind == "voicemail" and m.interaction_id == interaction.id
        ),
        None,
    )


def record_voicemail(interaction: Interaction, recording_url: str | None) -> Ticket:
    """A caller left a voicemail: it becomes a ticket (once, however often Twilio reports it)."""
    interaction.recording_url = recording_url or interaction.recording_url
    ticket = db.session.get(Ticket, interaction.ticket_id) if interaction.ticket_id else None
    if ticket is None:
        caller = (
            interaction.customer.name if interaction.customer else mask(interaction.from_address)
        )
        ticket = create_ticket(
            f"Voicemail from {caller}",
            "voice",
            customer_id=interaction.customer_id,
            queue_id=interaction.queue_id,
            type="request",
        )
        interaction.ticket_id = ticket.id
    message = _voicemail_message(ticket, interaction)
    if message is None:
        add_message(
            ticket,
            "voicemail",
            interaction_id=interaction.id,
            recording_url=interaction.recording_url,
        )
    elif interaction.recording_url and not message.recording_url:
        message.recording_url = interaction.recording_url
    return ticket


def attach_transcription(interaction: Interaction, text: str) -> Ticket | None:
    """Twilio's transcription of a voicemail becomes the voicemail message's text."""
    if interaction.outcome != "voicemail":
        return None
    ticket = record_voicemail(interaction, None)
    message = _voicemail_message(ticket, interaction)
    if message is not None:
        message.body = text
    return ticket


def open_tickets_summary(customer_id: int, limit: int = 10) -> list[dict[str, Any]]:
    """A customer's open tickets for the screen pop, newest first."""
    tickets = db.session.scalars(
        sa.select(Ticket)
        .where(Ticket.customer_id == customer_id, Ticket.status.in_(OPEN_STATUSES))
        .order_by(Ticket.created_at.desc(), Ticket.id.desc())
        .limit(limit)
    )
    return [
        {
            "id": t.id,
            "number": t.number,
            "subject": t.subject,
            "status": t.status,
            "priority": t.priority,
            "next_breach_at": isoformat(t.next_breach_at),
        }
        for t in tickets
    ]


SLA_STATES = ("breached", "due_soon", "on_track", "none")
DUE_SOON = timedelta(hours=1)


def list_tickets(
    status: str | None = None,
    customer_id: int | None = None,
    limit: int = 50,
    offset: int = 0,
    *,
    q: str | None = None,
    queue_id: int | None = None,
    assignee_id: int | None = None,
    sla: str | None = None,
    reader: User | None = None,
) -> list[Ticket]:
    """Tickets, newest first (by next deadline when filtered by SLA state), filtered; only
    those `reader` may read."""
    query = sa.select(Ticket).limit(limit).offset(offset)
    if reader is not None:
        query = query.where(readable_by(reader, Ticket.queue_id, Ticket.assignee_id))
    if status == "unsolved":
        query = query.where(Ticket.status.in_(OPEN_STATUSES))
    elif status:
        query = query.where(Ticket.status == status)
    if customer_id:
        query = query.where(Ticket.customer_id == customer_id)
    if queue_id:
        query = query.where(Ticket.queue_id == queue_id)
    if assignee_id:
        query = query.where(Ticket.assignee_id == assignee_id)
    if q:
        words = q.strip().lstrip("#")
        query = query.where(sa.or_(Ticket.number == words, contains(Ticket.subject, words)))
    if sla is None:
        return list(db.session.scalars(query.order_by(Ticket.id.desc())))
    now = utcnow()
    due = Ticket.next_breach_at
    query = query.where(
        {
            "breached": due <= now,
            "due_soon": sa.and_(due > now, due <= now + DUE_SOON),
            "on_track": due > now + DUE_SOON,
            "none": due.is_(None),
        }[sla]
    )
    return list(db.session.scalars(query.order_by(due.asc(), Ticket.id.desc())))


# ---------------------------------------------------------------- lifecycle

REOPEN_WINDOW_KEY = "tickets.reopen_window"
REOPEN_WINDOW_DEFAULT = {"days": 7}
CUSTOM_FIELDS_KEY = "tickets.custom_fields"
EDITABLE = ("subject", "status", "priority", "type", "queue_id", "assignee_id", "tags")
PLACEHOLDERS = ("customer_name", "ticket_number", "subject", "agent_name")
CUSTOM_FIELD_CHECKS = {
    "text": lambda value, _: isinstance(value, str) and len(value) <= 2000,
    "number": lambda value, _: isinstance(value, int | float) and not isinstance(value, bool),
    "boolean": lambda value, _: isinstance(value, bool),
    "choice": lambda value, definition: value in definition.get("choices", []),
}


def get_ticket(ticket_id: int, reader: User | None = None) -> Ticket:
    """The ticket, or 404 (also when `reader` may not read it)."""
    ticket = db.session.get(Ticket, ticket_id)
    if ticket is None or (reader is not None and not can_read_ticket(reader, ticket)):
        raise NotFound("No such ticket.")
    return ticket


def can_read_ticket(user: User, ticket: Ticket) -> bool:
    """Whether `user` may read the ticket (a restricted queue's: see can_read)."""
    return can_read(user, ticket.queue_id, ticket.assignee_id)


def change_status(ticket: Ticket, status: str) -> None:
    """Stage a status change the lifecycle allows (409 otherwise)."""
    if status == ticket.status:
        return
    if status not in TRANSITIONS[ticket.status]:
        allowed = sorted(TRANSITIONS[ticket.status]) or ["none: closed is final"]
        raise Conflict(f"A {ticket.status} ticket cannot become {status}.", {"status": allowed})
    ticket.status = status
    record_status(ticket, status)
    if status == "solved":
        ticket.solved_at = utcnow()
    elif status == "closed":
        ticket.closed_at = utcnow()


def accepts_customer_reply(ticket: Ticket) -> bool:
    """Whether a customer's new message joins this ticket (else a new, linked ticket starts).

    Closed tickets never take one; solved ones only within the reopen window.
    """
    if ticket.status == "closed" or ticket.merged_into_id is not None:
        return False
    if ticket.status != "solved" or ticket.solved_at is None:
        return True
    window = timedelta(days=get_setting(REOPEN_WINDOW_KEY, REOPEN_WINDOW_DEFAULT)["days"])
    return utcnow() - ticket.solved_at <= window


def reopen_for_customer(ticket: Ticket) -> None:
    """A customer wrote again about a solved ticket: it is open again (audited)."""
    if ticket.status == "solved":
        audit.record(
            "ticket.reopened",
            "ticket",
            ticket.id,
            before={"status": "solved"},
            after={"status": "open"},
        )
        change_status(ticket, "open")


def validate_custom_fields(ticket_type: str, values: dict[str, Any]) -> dict[str, Any]:
    """Check values against the custom fields of the type (422 naming each bad one)."""
    definitions = get_setting(CUSTOM_FIELDS_KEY, {}).get(ticket_type, {})
    errors: dict[str, list[str]] = {}
    for name, value in values.items():
        definition = definitions.get(name)
        if definition is None:
            errors[name] = [f"Not a field of {ticket_type} tickets."]
        elif value is not None and not CUSTOM_FIELD_CHECKS[definition["kind"]](value, definition):
            errors[name] = [f"Must be a valid {definition['kind']}."]
    for name, definition in definitions.items():
        if definition.get("required") and values.get(name) is None:
            errors.setdefault(name, ["Required."])
    if errors:
        raise APIError(422, "Some custom fields are invalid.", fields={"custom_fields": errors})
    return values


def _check_refs(changes: dict[str, Any]) -> None:
    if (
        changes.get("assignee_id") is not None
        and db.session.get(User, changes["assignee_id"]) is None
    ):
        raise APIError(422, "Unknown assignee.", fields={"assignee_id": ["No such user."]})
    if changes.get("queue_id") is not None and db.session.get(Queue, changes["queue_id"]) is None:
        raise APIError(422, "Unknown queue.", fields={"queue_id": ["No such queue."]})


def update_ticket(ticket: Ticket, changes: dict[str, Any], actor_id: int) -> Ticket:
    """Change a ticket's fields (lifecycle, references and custom fields checked); audited."""
    _check_refs(changes)
    if "custom_fields" in changes:
        merged = {**(ticket.custom_fields or {}), **changes["custom_fields"]}
        changes["custom_fields"] = validate_custom_fields(changes.get("type", ticket.type), merged)
    if ticket.status == "new" and changes.get("assignee_id") and "status" not in changes:
        changes["status"] = "open"  # someone took it on
    if "subject" in changes:
        changes["subject"] = one_line(changes["subject"])  # it becomes a mail header
    fields = [f for f in (*EDITABLE, "custom_fields") if f in changes]
    changed = [f for f in fields if changes[f] != getattr(ticket, f)]
    if not changed:
        return ticket
    before = {f: getattr(ticket, f) for f in changed}
    for field in changed:
        if field == "status":
            change_status(ticket, changes["status"])
        else:
            setattr(ticket, field, changes[field])
    after = {f: getattr(ticket, f) for f in changed}
    audit.record(
        "ticket.updated", "ticket", ticket.id, actor_id=actor_id, before=before, after=after
    )
    db.session.commit()
    if "status" in changed and ticket.status == "solved":
        from contact_center.portal.services import send_survey  # portal builds on tickets

        send_survey(ticket)
    return ticket


def open_ticket(data: dict[str, Any], actor_id: int) -> Ticket:
    """A ticket an agent opens (on the phone, say), with an optional first note."""
    _check_refs(data)
    custom_fields = validate_custom_fields(
        data.get("type", "question"), data.get("custom_fields", {})
    )
    ticket = create_ticket(
        data["subject"],
        data.get("channel", "phone"),
        customer_id=data.get("customer_id"),
        queue_id=data.get("queue_id"),
        type=data.get("type", "question"),
        priority=data.get("priority", "normal"),
        actor_id=actor_id,
    )
    ticket.tags = data.get("tags", [])
    ticket.custom_fields = custom_fields
    if data.get("assignee_id"):
        ticket.assignee_id = data["assignee_id"]
        change_status(ticket, "open")
    if data.get("note"):
        add_message(ticket, "note", data["note"], author_id=actor_id)
    db.session.commit()
    return ticket


def add_note(ticket: Ticket, author_id: int, body: str) -> TicketMessage:
    """An internal note (never sent to the customer)."""
    message = add_message(ticket, "note", body, author_id=author_id)
    db.session.flush()
    audit.record(
        "ticket.noted", "ticket", ticket.id, actor_id=author_id, after={"message_id": message.id}
    )
    db.session.commit()
    return message


def attach_call(ticket: Ticket, interaction: Interaction, actor_id: int) -> TicketMessage:
    """A call (or callback) joins the ticket as a summary: when, how long, outcome, notes."""
    if interaction.channel not in ("voice", "callback"):
        raise APIError(
            422, "Only calls have call summaries.", fields={"interaction_id": ["Not a call."]}
        )
    interaction.ticket_id = ticket.id
    message = add_message(
        ticket,
        "call_summary",
        _call_summary(interaction),
        author_id=actor_id,
        interaction_id=interaction.id,
        recording_url=interaction.recording_url,
    )
    db.session.flush()
    audit.record(
        "ticket.call_attached",
        "ticket",
        ticket.id,
        actor_id=actor_id,
        after={"interaction_id": interaction.id},
    )
    db.session.commit()
    return message


def _call_summary(interaction: Interaction) -> str:
    """When, how long, outcome, disposition and notes of a call (in progress: so far)."""
    if interaction.status in ("connecting", "active"):
        return f"Call on {isoformat(interaction.created_at)}, in progress."
    minutes, seconds = divmod(interaction.duration_s or 0, 60)
    lines = [
        f"Call on {isoformat(interaction.created_at)}, {minutes} min {seconds} s, "
        f"outcome {interaction.outcome or interaction.status}.",
    ]
    if interaction.disposition:
        lines.append(f"Disposition: {interaction.disposition}.")
    if interaction.notes:
        lines.append(interaction.notes)
    return "\n".join(lines)


def refresh_call_summary(interaction: Interaction) -> None:
    """Bring the summary of a call attached while it was live up to date (not committed)."""
    if interaction.ticket_id is None or interaction.channel not in ("voice", "callback"):
        return
    message = db.session.scalar(
        sa.select(TicketMessage).where(
            TicketMessage.interaction_id == interaction.id, TicketMessage.kind == "call_summary"
        )
    )
    if message is not None:
        message.body = _call_summary(interaction)
        message.recording_url = interaction.recording_url


def merge(source: Ticket, target: Ticket, actor_id: int) -> Ticket:
    """Merge `source` into `target`: messages and interactions move; source is closed."""
    if source.id == target.id:
        raise APIError(
            422,
            "A ticket cannot be merged into itself.",
            fields={"into_ticket_id": ["Same ticket."]},
        )
    if source.merged_into_id is not None or target.merged_into_id is not None:
        raise Conflict("One of the tickets was already merged.")
    if target.status == "closed":
        raise Conflict("A closed ticket cannot absorb another.")
    moved = db.session.execute(
        sa.update(TicketMessage)
        .where(TicketMessage.ticket_id == source.id)
        .values(ticket_id=target.id)
    ).rowcount
    db.session.execute(
        sa.update(Interaction).where(Interaction.ticket_id == source.id).values(ticket_id=target.id)
    )
    db.session.expire(source, ["messages"])
    db.session.expire(target, ["messages"])
    before = {"status": source.status}
    source.merged_into_id = target.id
    source.status = "closed"
    source.closed_at = utcnow()
    record_status(source, "closed", source.closed_at)
    add_message(source, "note", f"Merged into ticket {target.number}.", author_id=actor_id)
    add_message(
        target,
        "note",
        f"Ticket {source.number} was merged into this one ({moved} messages).",
        author_id=actor_id,
    )
    audit.record(
        "ticket.merged",
        "ticket",
        source.id,
        actor_id=actor_id,
        before=before,
        after={"status": "closed", "merged_into_id": target.id},
    )
    audit.record(
        "ticket.absorbed",
        "ticket",
        target.id,
        actor_id=actor_id,
        after={"from_ticket_id": source.id},
    )
    db.session.commit()
    return target


def link(ticket: Ticket, other: Ticket, actor_id: int | None, kind: str = "related") -> TicketLink:
    """Relate two tickets (both directions are found through the link)."""
    if ticket.id == other.id:
        raise APIError(
            422, "A ticket cannot be linked to itself.", fields={"ticket_id": ["Same ticket."]}
        )
    existing = db.session.scalar(
        sa.select(TicketLink).where(
            sa.or_(
                sa.and_(TicketLink.ticket_id == ticket.id, TicketLink.linked_id == other.id),
                sa.and_(TicketLink.ticket_id == other.id, TicketLink.linked_id == ticket.id),
            )
        )
    )
    if existing is not None:
        return existing
    record = TicketLink(ticket_id=ticket.id, linked_id=other.id, kind=kind)
    db.session.add(record)
    audit.record(
        "ticket.linked",
        "ticket",
        ticket.id,
        actor_id=actor_id,
        after={"linked_id": other.id, "kind": kind},
    )
    return record


def linked_ids(ticket: Ticket) -> list[int]:
    """Ids of the tickets linked to this one, in either direction."""
    rows = db.session.execute(
        sa.select(TicketLink.ticket_id, TicketLink.linked_id).where(
            sa.or_(TicketLink.ticket_id == ticket.id, TicketLink.linked_id == ticket.id)
        )
    )
    return sorted({a if b == ticket.id else b for a, b in rows})


def template_placeholders(template: str, field: str) -> set[str]:
    """The {names} a template uses; 422 for a malformed one or one with format specs or
    conversions ({x:>9999999} could build a huge string)."""
    names = set()
    try:
        for _, name, spec, conversion in Formatter().parse(template):
            if name is None:
                continue
            if spec or conversion or not name.isidentifier():
                raise ValueError(
                    f"use plain placeholders such as {{customer_name}}, not {{{name}...}}"
                )
            names.add(name)
    except ValueError as exc:
        raise APIError(422, "The template is malformed.", fields={field: [str(exc)]}) from None
    return names


def check_placeholders(body: str) -> str:
    """A canned response's body may use only the known placeholders (422 otherwise)."""
    names = template_placeholders(body, "body")
    unknown = sorted(names - set(PLACEHOLDERS))
    if unknown:
        raise APIError(
            422,
            "Unknown placeholders.",
            fields={"body": [f"Unknown: {', '.join(unknown)}; use {', '.join(PLACEHOLDERS)}."]},
        )
    return body


def render_canned(canned: CannedResponse, ticket: Ticket, agent: User) -> str:
    """A canned response filled in for a ticket and the agent writing."""
    return canned.body.format(
        customer_name=ticket.customer.name if ticket.customer else "customer",
        ticket_number=ticket.number,
        subject=ticket.subject,
        agent_name=agent.display_name,
    )
