"""Settings an admin changes at run time (kept in the database, the system of record)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from contact_center.db_types import UTCDateTime, utcnow
from contact_center.extensions import db


class SystemSetting(db.Model):
    __tablename__ = "system_settings"

    key: Mapped[str] = mapped_column(sa.String(80), primary_key=True)
    value: Mapped[dict] = mapped_column(sa.JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )


def get_setting(key: str, default: dict[str, Any]) -> dict[str, Any]:
    """A setting's value, or `default` when it was never set."""
    setting = db.session.get(SystemSetting, key)
    return dict(setting.value) if setting is not None else dict(default)


def put_setting(key: str, value: dict[str, Any], user_id: int | None = None) -> dict[str, Any]:
    """Replace a setting's value."""
    setting = db.session.get(SystemSetting, key)
    if setting is None:
        setting = SystemSetting(key=key, value=value, updated_by_id=user_id)
        db.session.add(setting)
    else:
        setting.value = value
        setting.updated_by_id = user_id
    db.session.commit()
    return dict(setting.value)
