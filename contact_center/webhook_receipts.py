"""Idempotency for webhooks: the first answer to a delivery is stored and replayed."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from contact_center.db_types import UTCDateTime, utcnow
from contact_center.extensions import db


class WebhookReceipt(db.Model):
    __tablename__ = "webhook_receipts"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(255), unique=True)
    status_code: Mapped[int] = mapped_column()
    content_type: Mapped[str] = mapped_column(sa.String(100))
    body: Mapped[str] = mapped_column(sa.Text)
    # Retention (RETENTION_WEBHOOK_RECEIPTS_DAYS) deletes receipts by age.
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


def find_receipt(key: str) -> WebhookReceipt | None:
    """The stored answer to an earlier delivery with this key, if any."""
    return db.session.scalar(sa.select(WebhookReceipt).where(WebhookReceipt.key == key))


def add_receipt(key: str, status_code: int, content_type: str, body: str) -> WebhookReceipt:
    """Stage the answer to a delivery; committed with the delivery's own changes."""
    receipt = WebhookReceipt(key=key, status_code=status_code, content_type=content_type, body=body)
    db.session.add(receipt)
    return receipt
