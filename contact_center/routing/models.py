"""Queue, Interaction and Reservation: the records routing state is rebuilt from."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from contact_center.agents.models import User
from contact_center.customers.models import Customer
from contact_center.db_types import UTCDateTime, utcnow
from contact_center.extensions import db

CHANNELS = ("voice", "email", "callback")
INTERACTION_STATUSES = ("queued", "offered", "connecting", "active", "ended")
OUTCOMES = ("answered", "abandoned", "voicemail", "callback", "failed")
RESERVATION_STATUSES = ("pending", "accepted", "rejected", "timeout", "revoked")


class Queue(db.Model):
    __tablename__ = "queues"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(80), unique=True)
    channels: Mapped[list] = mapped_column(sa.JSON, default=lambda: ["voice"])
    # {skill: minimum level}; an agent needs all of them to be offered this queue's work.
    required_skills: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    ordering: Mapped[str] = mapped_column(sa.String(20), default="fifo")
    wrapup_s: Mapped[int] = mapped_column(default=0)
    service_level_threshold_s: Mapped[int] = mapped_column(default=20)
    offer_timeout_s: Mapped[int] = mapped_column(default=15)
    is_default: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Interaction(db.Model):
    __tablename__ = "interactions"

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(sa.String(20))
    direction: Mapped[str] = mapped_column(sa.String(10), default="inbound")
    # CallSid or Message-ID: a retried webhook finds its interaction by this.
    external_id: Mapped[str | None] = mapped_column(sa.String(255), unique=True)
    from_address: Mapped[str | None] = mapped_column(sa.String(320))
    to_address: Mapped[str | None] = mapped_column(sa.String(320))
    customer_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("customers.id", ondelete="SET NULL"), index=True
    )
    queue_id: Mapped[int | None] = mapped_column(sa.ForeignKey("queues.id"), index=True)
    priority: Mapped[int] = mapped_column(default=0)
    required_skills: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    # The queue score (enqueue time minus priority credit): kept so a returned offer
    # goes back to the same place in the queue.
    queue_score: Mapped[float | None] = mapped_column(sa.Float)
    status: Mapped[str] = mapped_column(sa.String(20), default="queued", index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    offered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str | None] = mapped_column(sa.String(20))
    disposition: Mapped[str | None] = mapped_column(sa.String(80))
    notes: Mapped[str | None] = mapped_column(sa.Text)
    duration_s: Mapped[int | None] = mapped_column()
    satisfaction: Mapped[int | None] = mapped_column()
    agent_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL"), index=True
    )

    customer: Mapped[Customer | None] = relationship()
    queue: Mapped[Queue | None] = relationship()
    agent: Mapped[User | None] = relationship()


class Reservation(db.Model):
    __tablename__ = "reservations"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    interaction_id: Mapped[int] = mapped_column(
        sa.ForeignKey("interactions.id", ondelete="CASCADE"), index=True
    )
    agent_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(sa.String(20), default="pending", index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    responded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reason: Mapped[str | None] = mapped_column(sa.String(200))
    # Why this agent: step, candidates, scores. Grows with the routing engine.
    decision: Mapped[dict] = mapped_column(sa.JSON, default=dict)

    interaction: Mapped[Interaction] = relationship()
    agent: Mapped[User] = relationship()
