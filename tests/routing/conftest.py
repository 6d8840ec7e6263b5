"""Helpers for routing tests (the queue, agent and arrival fixtures are in tests/conftest.py)."""

from __future__ import annotations

import time

import sqlalchemy as sa

from contact_center.agents.models import User
from contact_center.extensions import db
from contact_center.routing import services as routing
from contact_center.routing.models import Interaction, Reservation


def pending(user: User) -> Reservation | None:
    """The agent's ringing offer, if any."""
    db.session.expire_all()
    return db.session.scalar(
        sa.select(Reservation).where(
            Reservation.agent_id == user.id, Reservation.status == "pending"
        )
    )


def offered_to(interaction: Interaction) -> int | None:
    db.session.expire_all()
    reservation = db.session.scalar(
        sa.select(Reservation).where(
            Reservation.interaction_id == interaction.id, Reservation.status == "pending"
        )
    )
    return reservation.agent_id if reservation else None


def fire_timers(after_s: float) -> int:
    """Run the routing timers as if `after_s` seconds had passed."""
    fired = routing.run_due_timers(now=time.time() + after_s, limit=1000)
    db.session.expire_all()
    return fired
