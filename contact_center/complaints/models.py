"""Complaint: the complaint-handling record kept beside its ticket."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from contact_center.db_types import UTCDateTime, utcnow
from contact_center.extensions import db
from contact_center.tickets.models import Ticket

# ISO 10002 steps, in order.
STAGES = ("received", "acknowledged", "assessed", "investigating", "responded", "closed")
SEVERITIES = ("low", "medium", "high", "critical")
OUTCOMES = ("upheld", "partly_upheld", "rejected")
CHANNELS = ("phone", "email", "letter", "web", "in_person", "social")


class Complaint(db.Model):
    __tablename__ = "complaints"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(
        sa.ForeignKey("tickets.id", ondelete="CASCADE"), unique=True
    )
    profile: Mapped[str] = mapped_column(sa.String(40))
    category: Mapped[str] = mapped_column(sa.String(80), index=True)
    severity: Mapped[str] = mapped_column(sa.String(10), default="medium")
    channel_received: Mapped[str] = mapped_column(sa.String(20))
    stage: Mapped[str] = mapped_column(sa.String(20), default="received", index=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    # Deadlines from the profile's clock, computed when the complaint is registered.
    acknowledge_due: Mapped[datetime] = mapped_column(UTCDateTime)
    summary_resolution_due: Mapped[datetime | None] = mapped_column(UTCDateTime)
    final_response_due: Mapped[datetime] = mapped_column(UTCDateTime)
    # Exceptional circumstances (payment services) allow a later final response.
    exceptional: Mapped[bool] = mapped_column(default=False)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    final_response_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ombudsman_deadline: Mapped[datetime | None] = mapped_column(UTCDateTime)
    root_cause: Mapped[str | None] = mapped_column(sa.Text)
    remedy: Mapped[str | None] = mapped_column(sa.Text)
    compensation_amount: Mapped[Decimal | None] = mapped_column(sa.Numeric(12, 2))
    outcome: Mapped[str | None] = mapped_column(sa.String(20))
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # After closing: ask the customer how the complaint was handled.
    follow_up_due: Mapped[datetime | None] = mapped_column(UTCDateTime)
    follow_up_done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    follow_up_satisfaction: Mapped[int | None] = mapped_column()

    ticket: Mapped[Ticket] = relationship()
