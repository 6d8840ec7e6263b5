"""Demo data: queues, agents with skills, customers with history."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import sqlalchemy as sa

from contact_center.agents.models import User
from contact_center.agents.services import create_user
from contact_center.customers.models import CustomerNote
from contact_center.customers.services import create_customer
from contact_center.db_types import utcnow
from contact_center.extensions import db
from contact_center.routing.models import Interaction, Queue
from contact_center.sla.models import BusinessCalendar, SlaPolicy

DEMO_USERS = [
    # username, password, role, display name, team, skills
    ("alice", "alice-demo-1", "agent", "Alice Archer", "Cards", {"lang:en": 5, "product:cards": 4}),
    ("bob", "bob-demo-12", "agent", "Bob Chen", "Cards", {"lang:en": 4, "lang:zh": 5}),
    ("carol", "carol-demo-1", "agent", "Carol Diaz", "General", {"lang:en": 3}),
    ("sam", "sam-demo-123", "supervisor", "Sam Supervisor", "General", {"lang:en": 5}),
    ("ada", "ada-demo-1234", "admin", "Ada Admin", None, {}),
]

DEMO_QUEUES = [
    dict(
        name="General",
        channels=["voice", "email"],
        required_skills={},
        is_default=True,
        wrapup_s=15,
    ),
    dict(name="Cards", channels=["voice"], required_skills={"product:cards": 2}, wrapup_s=20),
    dict(name="Mandarin", channels=["voice"], required_skills={"lang:zh": 3}, wrapup_s=20),
]

DEMO_CUSTOMERS = [
    # name, phones, emails, type, region, tier, value, tags, notes
    (
        "Margaret Holloway",
        ["+44 20 7946 0018"],
        ["m.holloway@example.co.uk"],
        "end_customer",
        "London",
        "A",
        "48250.00",
        ["vip"],
        ["Prefers a call back before 10:00.", "Card replaced after fraud in March."],
    ),
    (
        "Wei Zhang",
        ["+44 161 496 0321"],
        ["wei.zhang@example.com"],
        "end_customer",
        "Manchester",
        "B",
        "9120.50",
        ["mandarin"],
        ["Speaks Mandarin; English is fine for short calls."],
    ),
    (
        "Northwind Distribution Ltd",
        ["+44 113 496 0555"],
        ["accounts@northwind.example"],
        "distributor",
        "Leeds",
        "A",
        "310400.00",
        ["key-account"],
        ["Contract renewal due in Q1."],
    ),
    (
        "Priya Natarajan",
        ["+44 7700 900123"],
        ["priya.n@example.org"],
        "end_customer",
        "Bristol",
        "C",
        "640.00",
        [],
        [],
    ),
    (
        "Tomás Ferreira",
        ["+351 21 000 0000"],
        ["tomas@example.pt"],
        "end_customer",
        "Lisbon",
        "C",
        "210.00",
        ["international"],
        ["Calls from Portugal; use English."],
    ),
    (
        "Oakfield Partners",
        ["+44 20 7946 0999"],
        ["hello@oakfield.example"],
        "partner",
        "London",
        "B",
        "22000.00",
        [],
        [],
    ),
]


def _queues() -> list[Queue]:
    queues = []
    for spec in DEMO_QUEUES:
        queue = db.session.scalar(sa.select(Queue).where(Queue.name == spec["name"]))
        if queue is None:
            queue = Queue(**spec)
            db.session.add(queue)
        queues.append(queue)
    db.session.commit()
    return queues


def _users() -> dict[str, User]:
    users = {}
    for username, password, role, name, team, skills in DEMO_USERS:
        user = db.session.scalar(sa.select(User).where(User.username == username))
        if user is None:
            user = create_user(
                username, password, role, display_name=name, team=team, skills=skills
            )
        users[username] = user
    return users


def seed() -> list[tuple[str, str, str]]:
    """Create the demo data unless it is there already; returns the demo logins."""
    queues = _queues()
    users = _users()
    now = utcnow()
    agents = [users["alice"], users["bob"], users["carol"]]
    for index, (name, phones, emails, kind, region, tier, value, tags, notes) in enumerate(
        DEMO_CUSTOMERS
    ):
        if db.session.scalar(
            sa.select(sa.func.count())
            .select_from(Interaction)
            .where(Interaction.external_id == f"demo-{index}-0")
        ):
            continue
        customer = create_customer(
            {
                "name": name,
                "phones": phones,
                "emails": emails,
                "type": kind,
                "region": region,
                "tier": tier,
                "lifetime_value": Decimal(value),
                "tags": tags,
                "owner_id": users["sam"].id if tier == "A" else None,
            }
        )
        for days_ago, text in enumerate(notes, start=3):
            db.session.add(
                CustomerNote(
                    customer_id=customer.id,
                    author_id=agents[0].id,
                    text=text,
                    created_at=now - timedelta(days=days_ago),
                )
            )
        for visit in range(3):
            started = now - timedelta(days=7 * visit + index + 1, hours=visit)
            agent = agents[(index + visit) % len(agents)]
            abandoned = (index + visit) % 5 == 4
            db.session.add(
                Interaction(
                    channel="voice" if visit % 2 == 0 else "email",
                    external_id=f"demo-{index}-{visit}",
                    customer_id=customer.id,
                    queue_id=queues[0].id,
                    status="ended",
                    created_at=started,
                    enqueued_at=started,
                    answered_at=None if abandoned else started + timedelta(seconds=25),
                    ended_at=started + timedelta(minutes=6),
                    outcome="abandoned" if abandoned else "answered",
                    disposition=None if abandoned else ("resolved", "follow-up", "info")[visit],
                    duration_s=None if abandoned else 335,
                    satisfaction=None if abandoned else 3 + (index + visit) % 3,
                    agent_id=None if abandoned else agent.id,
                )
            )
    db.session.commit()
    _sla_policies(users["sam"])
    from contact_center.ivr.flows import load_default_flow

    load_default_flow(activate=True)
    return [(u, p, r) for u, p, r, *_ in DEMO_USERS]


def _sla_policies(supervisor: User) -> None:
    """An office calendar, a complaints policy and a standard policy with a ladder."""
    if db.session.scalar(sa.select(SlaPolicy.id).limit(1)) is not None:
        return
    office = BusinessCalendar(
        name="UK office",
        timezone="Europe/London",
        windows={day: [["08:00", "20:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}
        | {"sat": [["09:00", "17:00"]]},
        country="GB",
        subdivision="ENG",
        closed_dates=[],
        open_dates=[],
    )
    db.session.add(office)
    db.session.flush()

    def hours(n: float) -> dict:
        return {"minutes": int(n * 60), "business": True}

    ladder = [
        {"metric": "*", "percent": 75, "actions": [{"kind": "notify"}]},
        {
            "metric": "*",
            "after_breach_minutes": 0,
            "actions": [
                {"kind": "notify"},
                {"kind": "priority"},
                {"kind": "tag", "tag": "sla-breached"},
                {"kind": "boost", "by": 3},
            ],
        },
        {
            "metric": "*",
            "after_breach_minutes": 120,
            "actions": [{"kind": "reassign", "assignee_id": supervisor.id}],
        },
    ]
    by_priority = {"urgent": 1, "high": 4, "normal": 8, "low": 24}
    db.session.add_all(
        [
            SlaPolicy(
                name="Complaints",
                position=1,
                conditions={"type": ["complaint"]},
                calendar_id=office.id,
                targets={
                    p: {"first_response": hours(2), "resolution": hours(40)} for p in by_priority
                },
                pauses={},
                escalations=ladder,
            ),
            SlaPolicy(
                name="Standard",
                position=10,
                conditions={},
                calendar_id=office.id,
                targets={
                    p: {
                        "first_response": hours(h),
                        "next_response": hours(h),
                        "resolution": hours(h * 5),
                    }
                    for p, h in by_priority.items()
                },
                pauses={"resolution": ["pending", "on_hold"]},
                escalations=ladder,
            ),
        ]
    )
    db.session.commit()
