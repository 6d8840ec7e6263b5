"""Customer, identities and notes."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from contact_center.agents.models import User
from contact_center.db_types import UTCDateTime, utcnow
from contact_center.extensions import db

CUSTOMER_TYPES = ("end_customer", "distributor", "partner")
CUSTOMER_STATUSES = ("active", "inactive", "prospect", "blocked")
# Set only by erasure (contact_center.customers.privacy), never through create or update.
ERASED_STATUS = "erased"
TIERS = ("A", "B", "C")
IDENTITY_KINDS = ("phone", "email")


class Customer(db.Model):
    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200), index=True)
    type: Mapped[str] = mapped_column(sa.String(20), default="end_customer")
    status: Mapped[str] = mapped_column(sa.String(20), default="active")
    region: Mapped[str | None] = mapped_column(sa.String(80))
    tier: Mapped[str] = mapped_column(sa.String(1), default="C")
    lifetime_value: Mapped[Decimal] = mapped_column(sa.Numeric(14, 2), default=Decimal("0"))
    owner_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    marketing_opt_out: Mapped[bool] = mapped_column(default=False)
    tags: Mapped[list] = mapped_column(sa.JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    # Loaded with the customer: every view of a customer shows both.
    owner: Mapped[User | None] = relationship(lazy="joined")
    identities: Mapped[list[CustomerIdentity]] = relationship(
        back_populates="customer",
        cascade="all, delete-orphan",
        order_by="CustomerIdentity.id",
        lazy="selectin",
    )
    notes: Mapped[list[CustomerNote]] = relationship(
        back_populates="customer",
        cascade="all, delete-orphan",
        order_by="CustomerNote.created_at.desc()",
    )

    def identity_values(self, kind: str) -> list[str]:
        """The customer's normalised identities of one kind."""
        return [identity.value for identity in self.identities if identity.kind == kind]


class CustomerIdentity(db.Model):
    __tablename__ = "customer_identities"
    # One phone number or address belongs to one customer: that is how callers are identified.
    __table_args__ = (sa.UniqueConstraint("kind", "value"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        sa.ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(sa.String(10))
    value: Mapped[str] = mapped_column(sa.String(320))
    # A permanent delivery failure (a bounce): no more mail goes to this address.
    undeliverable_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    undeliverable_reason: Mapped[str | None] = mapped_column(sa.String(500))

    customer: Mapped[Customer] = relationship(back_populates="identities")


PHONE_TAIL_DIGITS = 7


def phone_tail(value: sa.ColumnElement[str]) -> sa.ColumnElement[str]:
    """The last digits of a number, spelt the same on PostgreSQL and SQLite (and indexed)."""
    return sa.func.substr(value, sa.func.length(value) - (PHONE_TAIL_DIGITS - 1))


# An unknown caller's likely matches are numbers that end the same way: without this index
# that is a scan of every identity (about 200 ms at a million customers).
sa.Index(
    "ix_customer_identities_phone_tail", CustomerIdentity.kind, phone_tail(CustomerIdentity.value)
)


class CustomerNote(db.Model):
    __tablename__ = "customer_notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        sa.ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    author_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    text: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    customer: Mapped[Customer] = relationship(back_populates="notes")
    author: Mapped[User | None] = relationship()
