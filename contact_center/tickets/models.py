"""Ticket and TicketMessage."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from contact_center.agents.models import User
from contact_center.customers.models import Customer
from contact_center.db_types import UTCDateTime, utcnow
from contact_center.extensions import db

STATUSES = ("new", "open", "pending", "on_hold", "solved", "closed")
PRIORITIES = ("low", "normal", "high", "urgent")
TYPES = ("question", "incident", "request", "complaint")
# Allowed status changes; anything else is a 409. Closed is final: a new message about a
# closed ticket opens a new ticket linked to it.
TRANSITIONS = {
    "new": {"open", "pending", "on_hold", "solved"},
    "open": {"pending", "on_hold", "solved"},
    "pending": {"open", "on_hold", "solved"},
    "on_hold": {"open", "pending", "solved"},
    "solved": {"open", "closed"},
    "closed": set(),
}


class Ticket(db.Model):
    __tablename__ = "tickets"

    id: Mapped[int] = mapped_column(primary_key=True)
    # What customers quote (subject token, IVR self-service): digits only, so a caller can key it.
    number: Mapped[str | None] = mapped_column(sa.String(20), unique=True)
    subject: Mapped[str] = mapped_column(sa.String(300))
    status: Mapped[str] = mapped_column(sa.String(20), default="new", index=True)
    priority: Mapped[str] = mapped_column(sa.String(10), default="normal")
    type: Mapped[str] = mapped_column(sa.String(20), default="question")
    channel: Mapped[str] = mapped_column(sa.String(20))
    customer_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("customers.id", ondelete="SET NULL"), index=True
    )
    queue_id: Mapped[int | None] = mapped_column(sa.ForeignKey("queues.id", ondelete="SET NULL"))
    assignee_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    tags: Mapped[list] = mapped_column(sa.JSON, default=list)
    # Values of the custom fields configured for the ticket's type.
    custom_fields: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    # A merged ticket points at the one that absorbed its messages and interactions.
    merged_into_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("tickets.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    solved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # SLA (contact_center.sla): the policy applied, the nearest unmet deadline, and when
    # the SLA timer must next look at the ticket (the timer set is rebuilt from this).
    sla_policy_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("sla_policies.id", ondelete="SET NULL", name="fk_ticket_sla_policy")
    )
    next_breach_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    sla_wake_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)

    customer: Mapped[Customer | None] = relationship()
    assignee: Mapped[User | None] = relationship()
    messages: Mapped[list[TicketMessage]] = relationship(
        back_populates="ticket", cascade="all, delete-orphan", order_by="TicketMessage.id"
    )


class TicketStatusChange(db.Model):
    """Every status a ticket took and when: the SLA clocks are replayed from these."""

    __tablename__ = "ticket_status_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(
        sa.ForeignKey("tickets.id", ondelete="CASCADE", name="fk_status_change_ticket"),
        index=True,
    )
    status: Mapped[str] = mapped_column(sa.String(20))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TicketMessage(db.Model):
    __tablename__ = "ticket_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(
        sa.ForeignKey("tickets.id", ondelete="CASCADE"), index=True
    )
    # inbound, outbound, auto_reply, bounce, note, voicemail or call_summary
    kind: Mapped[str] = mapped_column(sa.String(20))
    body: Mapped[str] = mapped_column(sa.Text, default="")
    author_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    interaction_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("interactions.id", ondelete="SET NULL"), index=True
    )
    recording_url: Mapped[str | None] = mapped_column(sa.String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Mail: the Message-ID (ours for outbound; theirs, or a hash of the bytes, for inbound)
    # makes a repeated delivery a no-op and threads replies to this ticket.
    message_id: Mapped[str | None] = mapped_column(sa.String(998), unique=True)
    in_reply_to: Mapped[str | None] = mapped_column(sa.String(998))
    references: Mapped[str | None] = mapped_column(sa.Text)
    subject: Mapped[str | None] = mapped_column(sa.String(998))
    from_address: Mapped[str | None] = mapped_column(sa.String(320))
    to_address: Mapped[str | None] = mapped_column(sa.String(320))
    # The text as received (quoted history and signature included); `body` is the reply alone.
    body_original: Mapped[str | None] = mapped_column(sa.Text)
    # Outbound mail: queued -> sent, or retrying -> failed; bounced when a report comes back.
    delivery_status: Mapped[str | None] = mapped_column(sa.String(20))
    delivery_error: Mapped[str | None] = mapped_column(sa.Text)
    send_attempts: Mapped[int] = mapped_column(default=0)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    ticket: Mapped[Ticket] = relationship(back_populates="messages")
    author: Mapped[User | None] = relationship()
    attachments: Mapped[list[MailAttachment]] = relationship(
        back_populates="message", cascade="all, delete-orphan", order_by="MailAttachment.id"
    )


class MailAttachment(db.Model):
    __tablename__ = "mail_attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(
        sa.ForeignKey("ticket_messages.id", ondelete="CASCADE"), index=True
    )
    filename: Mapped[str] = mapped_column(sa.String(255))
    content_type: Mapped[str] = mapped_column(sa.String(255))
    size: Mapped[int] = mapped_column()
    data: Mapped[bytes] = mapped_column(sa.LargeBinary)

    message: Mapped[TicketMessage] = relationship(back_populates="attachments")


class TicketLink(db.Model):
    """Two related tickets (a follow-up of a closed one, the same incident...)."""

    __tablename__ = "ticket_links"
    __table_args__ = (sa.UniqueConstraint("ticket_id", "linked_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(
        sa.ForeignKey("tickets.id", ondelete="CASCADE"), index=True
    )
    linked_id: Mapped[int] = mapped_column(
        sa.ForeignKey("tickets.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(sa.String(20), default="related")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CannedResponse(db.Model):
    """A reusable reply with placeholders such as {customer_name} and {ticket_number}."""

    __tablename__ = "canned_responses"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(120), unique=True)
    body: Mapped[str] = mapped_column(sa.Text)
    created_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
