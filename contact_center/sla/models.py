"""Stored business calendars (SLA policies and complaint profiles name one)."""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from contact_center.db_types import UTCDateTime, utcnow
from contact_center.extensions import db
from contact_center.sla.calendars import Calendar


class BusinessCalendar(db.Model):
    __tablename__ = "business_calendars"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(80), unique=True)
    timezone: Mapped[str] = mapped_column(sa.String(64))
    # {"mon": [["09:00", "17:00"]], ...}; a window ending before it starts runs overnight.
    windows: Mapped[dict] = mapped_column(sa.JSON)
    country: Mapped[str | None] = mapped_column(sa.String(2))
    subdivision: Mapped[str | None] = mapped_column(sa.String(10))
    closed_dates: Mapped[list] = mapped_column(sa.JSON, default=list)  # ["2026-12-24", ...]
    open_dates: Mapped[list] = mapped_column(sa.JSON, default=list)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    def calendar(self) -> Calendar:
        """The arithmetic view of this calendar."""
        return Calendar(
            self.timezone,
            self.windows,
            country=self.country,
            subdivision=self.subdivision,
            closed_dates=frozenset(date.fromisoformat(d) for d in self.closed_dates or []),
            open_dates=frozenset(date.fromisoformat(d) for d in self.open_dates or []),
        )


class SlaPolicy(db.Model):
    """Targets for the tickets its conditions match; the first matching policy applies."""

    __tablename__ = "sla_policies"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(80), unique=True)
    position: Mapped[int] = mapped_column(default=0)  # lower is tried first
    active: Mapped[bool] = mapped_column(default=True, server_default=sa.true())
    # {"priority": [...], "type": [...], "channel": [...], "queue_id": [...],
    #  "customer_tier": [...], "tags": [...]}: every listed field must match (tags: any of).
    conditions: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    calendar_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("business_calendars.id", ondelete="SET NULL", name="fk_sla_policy_calendar")
    )
    # {"urgent": {"first_response": {"minutes": 60, "business": true}, ...}, ...}
    targets: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    # {"resolution": ["pending", "on_hold"], ...}: statuses that stop each metric's clock.
    pauses: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    # [{"metric": "*", "percent": 75, "actions": [...]},
    #  {"metric": "resolution", "after_breach_minutes": 60, "actions": [...]}, ...]
    escalations: Mapped[list] = mapped_column(sa.JSON, default=list)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    business_calendar: Mapped[BusinessCalendar | None] = relationship()


class TicketSla(db.Model):
    """One cycle of one metric's clock on a ticket, as last computed from its history."""

    __tablename__ = "ticket_slas"
    __table_args__ = (sa.UniqueConstraint("ticket_id", "metric", "cycle"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(
        sa.ForeignKey("tickets.id", ondelete="CASCADE", name="fk_ticket_sla_ticket"), index=True
    )
    policy_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("sla_policies.id", ondelete="SET NULL", name="fk_ticket_sla_policy")
    )
    metric: Mapped[str] = mapped_column(sa.String(32))
    cycle: Mapped[int] = mapped_column(default=0)
    target_minutes: Mapped[int] = mapped_column()
    business: Mapped[bool] = mapped_column(default=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    breached_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    fulfilled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    elapsed_minutes: Mapped[float] = mapped_column(sa.Float, default=0.0)
    state: Mapped[str] = mapped_column(sa.String(10))  # running, paused, stopped, ...


class SlaEvent(db.Model):
    """The SLA log of a ticket: applied, paused, resumed, warned, fulfilled, breached, ..."""

    __tablename__ = "sla_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(
        sa.ForeignKey("tickets.id", ondelete="CASCADE", name="fk_sla_event_ticket"), index=True
    )
    kind: Mapped[str] = mapped_column(sa.String(20))
    metric: Mapped[str | None] = mapped_column(sa.String(32))
    cycle: Mapped[int | None] = mapped_column()
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    details: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    # Set for escalation steps: a second worker firing the same step fails on it.
    once_key: Mapped[str | None] = mapped_column(sa.String(120), unique=True)
