"""SLA timer load: many tickets whose first-response deadline falls due in a time window.

Used by the multi-process timer test and `bench/sla_timers.py`. The tickets are written in
bulk, as if each had arrived one target ago less its offset into the window, with the state
the SLA engine would have stored for them (policy, running clock, next deadline, wake
time); the timer set is then rebuilt from the database, as after a Redis restart. Each
ticket's breach runs one escalation step (a tag), recorded once under a unique key, so
counting those records measures what fired, how late, and whether anything fired twice.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import sqlalchemy as sa

from contact_center.db_types import utcnow
from contact_center.extensions import db
from contact_center.sla import timers
from contact_center.sla.models import SlaEvent, SlaPolicy, TicketSla
from contact_center.tickets.models import Ticket, TicketStatusChange

POLICY = "Timer load"
TARGET_MINUTES = 1
TAG = "sla-load"


def load_policy() -> SlaPolicy:
    """A calendar-time policy: first response in a minute, a tag at breach."""
    policy = db.session.scalar(sa.select(SlaPolicy).where(SlaPolicy.name == POLICY))
    if policy is None:
        policy = SlaPolicy(
            name=POLICY,
            position=0,
            conditions={"tags": [TAG]},
            targets={"normal": {"first_response": {"minutes": TARGET_MINUTES, "business": False}}},
            pauses={},
            escalations=[
                {
                    "metric": "*",
                    "after_breach_minutes": 0,
                    "actions": [{"kind": "tag", "tag": "late"}],
                }
            ],
        )
        db.session.add(policy)
        db.session.commit()
    return policy


def seed_due_tickets(count: int, window_s: float, lead_s: float = 2.0) -> list[datetime]:
    """`count` tickets whose deadlines fall uniformly over `window_s` seconds, starting
    `lead_s` from now; returns the deadlines. The timer set is rebuilt to hold them."""
    policy = load_policy()
    start = utcnow() + timedelta(seconds=lead_s)
    dues = sorted(start + timedelta(seconds=random.uniform(0, window_s)) for _ in range(count))
    target = timedelta(minutes=TARGET_MINUTES)
    first_id = (db.session.scalar(sa.select(sa.func.max(Ticket.id))) or 0) + 1
    rows = [
        {
            "id": first_id + i,
            "number": f"L{first_id + i}",
            "subject": "Timer load",
            "status": "new",
            "priority": "normal",
            "type": "question",
            "channel": "email",
            "tags": [TAG],
            "custom_fields": {},
            "created_at": due - target,
            "updated_at": due - target,
            "sla_policy_id": policy.id,
            "next_breach_at": due,
            "sla_wake_at": due,
        }
        for i, due in enumerate(dues)
    ]
    for chunk in range(0, count, 1000):
        db.session.execute(sa.insert(Ticket), rows[chunk : chunk + 1000])
        db.session.execute(
            sa.insert(TicketStatusChange),
            [
                {"ticket_id": r["id"], "status": "new", "at": r["created_at"]}
                for r in rows[chunk : chunk + 1000]
            ],
        )
        db.session.execute(
            sa.insert(TicketSla),
            [
                {
                    "ticket_id": r["id"],
                    "policy_id": policy.id,
                    "metric": "first_response",
                    "cycle": 0,
                    "target_minutes": TARGET_MINUTES,
                    "business": False,
                    "started_at": r["created_at"],
                    "due_at": r["next_breach_at"],
                    "elapsed_minutes": 0.0,
                    "state": "running",
                }
                for r in rows[chunk : chunk + 1000]
            ],
        )
    if db.engine.dialect.name == "postgresql":  # explicit ids: move the sequence past them
        db.session.execute(
            sa.text("SELECT setval(pg_get_serial_sequence('tickets', 'id'), :v)"),
            {"v": first_id + count},
        )
    db.session.commit()
    entries = db.session.execute(
        sa.select(Ticket.id, Ticket.sla_wake_at).where(Ticket.sla_wake_at.is_not(None))
    ).all()
    timers.load([(r.id, r.sla_wake_at) for r in entries])
    return dues


def fired_steps() -> list[tuple[int, datetime, datetime]]:
    """(ticket id, step due, recorded at) of every breach step recorded so far."""
    rows = db.session.execute(
        sa.select(SlaEvent.ticket_id, SlaEvent.at, SlaEvent.details).where(
            SlaEvent.kind == "escalated"
        )
    ).all()
    db.session.rollback()
    return [(r.ticket_id, datetime.fromisoformat(r.details["at"]), r.at) for r in rows]


def fired_count() -> int:
    """How many breach steps are recorded so far (cheap enough to poll)."""
    count = db.session.scalar(
        sa.select(sa.func.count()).select_from(SlaEvent).where(SlaEvent.kind == "escalated")
    )
    db.session.rollback()
    return count or 0
