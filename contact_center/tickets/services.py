"""Ticket services: create, add messages, voicemails from calls, status for self-service.

This is the first slice of the tickets module: what the voice channel needs (a voicemail
becomes a ticket; a caller can hear a ticket's status). Lifecycle rules, replies, merge and
complaints build on it.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from contact_center import audit
from contact_center.customers.services import mask
from contact_center.extensions import db
from contact_center.routing.models import Interaction
from contact_center.tickets.models import Ticket, TicketMessage

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
        subject=subject[:300],
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
    audit.record(
        "ticket.created",
        "ticket",
        ticket.id,
        actor_id=actor_id,
        after={"number": ticket.number, "channel": channel, "status": "new"},
    )
    return ticket


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
            # SLA deadlines arrive with the SLA module.
            "next_breach_at": None,
        }
        for t in tickets
    ]


def list_tickets(
    status: str | None = None, customer_id: int | None = None, limit: int = 50, offset: int = 0
) -> list[Ticket]:
    """Tickets, newest first, optionally by status or customer."""
    query = sa.select(Ticket).order_by(Ticket.id.desc()).limit(limit).offset(offset)
    if status:
        query = query.where(Ticket.status == status)
    if customer_id:
        query = query.where(Ticket.customer_id == customer_id)
    return list(db.session.scalars(query))
