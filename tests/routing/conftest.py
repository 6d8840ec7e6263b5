"""Helpers for routing tests: queues, agents and interactions through the services."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from contact_center.agents.models import User
from contact_center.extensions import db
from contact_center.routing import services as routing
from contact_center.routing.models import Interaction, Queue, Reservation


@pytest.fixture
def make_queue(app) -> Callable[..., Queue]:
    def make(name: str = "General", **fields: Any) -> Queue:
        fields.setdefault("channels", ["voice", "email"])
        queue = routing.create_queue(name=name, **fields)
        db.session.commit()
        return queue

    return make


@pytest.fixture
def agent(create_user) -> Callable[..., User]:
    """Factory: an agent, available at once unless told otherwise."""

    def make(username: str, available: bool = True, **kwargs: Any) -> User:
        user = create_user(username, **kwargs)
        if available:
            routing.set_agent_status(user, "available")
        return user

    return make


@pytest.fixture
def arrive(app) -> Callable[..., Interaction]:
    """Factory: a new interaction in a queue."""
    counter = iter(range(1, 1_000_000))

    def make(queue: Queue, channel: str = "email", **kwargs: Any) -> Interaction:
        kwargs.setdefault("external_id", f"test-{next(counter)}")
        return routing.create_interaction(channel=channel, queue=queue, **kwargs)

    return make


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
