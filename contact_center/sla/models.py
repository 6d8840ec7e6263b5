"""Stored business calendars (SLA policies and complaint profiles name one)."""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

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
