"""IVR flows: versioned definitions (data, not code); a call keeps the version it started on."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from contact_center.db_types import UTCDateTime, utcnow
from contact_center.extensions import db


class IvrFlow(db.Model):
    __tablename__ = "ivr_flows"
    __table_args__ = (sa.UniqueConstraint("name", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(80))
    version: Mapped[int] = mapped_column()
    definition: Mapped[dict] = mapped_column(sa.JSON)
    # The one flow new calls enter; replacing a flow adds a version, never edits one.
    is_active: Mapped[bool] = mapped_column(default=False, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
