"""The screen pop (customers.services.history): its exact content, in one statement."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from contact_center.complaints.models import Complaint
from contact_center.complaints.services import summaries_for_customer
from contact_center.customers.models import Customer, CustomerIdentity, CustomerNote
from contact_center.customers.services import customer_summary, history, screen_pop_for_caller
from contact_center.errors import NotFound
from contact_center.extensions import db
from contact_center.routing.models import Interaction, Queue
from contact_center.tickets.models import Ticket
from contact_center.tickets.services import open_tickets_summary

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def at(minutes: int, microseconds: int = 0) -> datetime:
    return T0 + timedelta(minutes=minutes, microseconds=microseconds)


@pytest.fixture
def statements(app) -> Iterator[list[str]]:
    """The SQL statements sent to the database while the test runs."""
    sent: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        sent.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", record)
    yield sent
    sa.event.remove(db.engine, "before_cursor_execute", record)


@pytest.fixture
def known(app, create_user) -> dict[str, Any]:
    """A customer with an owner, tickets open and closed, complaints, 14 interactions (one
    the call being offered), 12 notes and satisfaction scores; and another customer's."""
    owner = create_user("olivia", display_name="Olivia Owner")
    agent = create_user("bob", display_name="Bob Chen")
    queue = Queue(name="Cards", channels=["voice"])
    customer = Customer(
        name="Wei Zhang",
        type="distributor",
        region="North West",
        tier="A",
        lifetime_value=Decimal("1234.50"),
        owner_id=owner.id,
        marketing_opt_out=True,
        tags=["vip", "zh"],
        identities=[
            CustomerIdentity(kind="phone", value="+441614960321"),
            CustomerIdentity(kind="email", value="wei@example.com"),
        ],
    )
    other = Customer(name="Someone Else")
    db.session.add_all([queue, customer, other])
    db.session.flush()

    def ticket(number: str, status: str, minutes: int, customer_id: int = customer.id) -> Ticket:
        made = Ticket(
            number=number,
            subject=f"Subject {number}",
            status=status,
            priority="high" if number == "1002" else "normal",
            channel="email",
            customer_id=customer_id,
            created_at=at(minutes),
        )
        db.session.add(made)
        return made

    ticket("1001", "open", 1)
    ticket("1002", "pending", 3)
    ticket("1003", "solved", 5)
    ticket("1004", "closed", 6)
    ticket("1005", "new", 3)  # the same time as 1002: the later id comes first
    ticket("2001", "open", 9, customer_id=other.id)
    complained = [ticket("1006", "open", 7), ticket("1007", "closed", 2)]
    db.session.flush()
    db.session.add_all(
        [
            Complaint(
                ticket_id=complained[0].id,
                profile="fca_disp",
                category="fees",
                channel_received="phone",
                stage="acknowledged",
                received_at=at(7),
                acknowledge_due=at(60 * 24, 500),
                acknowledged_at=at(30),
                summary_resolution_due=at(60 * 72),
                final_response_due=at(60 * 24 * 56),
            ),
            Complaint(
                ticket_id=complained[1].id,
                profile="fca_disp",
                category="service",
                channel_received="email",
                stage="closed",
                received_at=at(2),
                acknowledge_due=at(60 * 24),
                acknowledged_at=at(10, 100000),
                final_response_due=at(60 * 24 * 56),
                final_response_at=at(60 * 24 * 20),
                ombudsman_deadline=at(60 * 24 * (20 + 183)),
            ),
        ]
    )
    calls = []
    for minute in range(12):
        calls.append(
            Interaction(
                channel="voice" if minute % 2 else "email",
                external_id=f"call-{minute}",
                customer_id=customer.id,
                queue_id=queue.id if minute % 3 else None,
                agent_id=agent.id if minute % 4 else None,
                status="ended",
                outcome="answered",
                duration_s=60 + minute,
                disposition="resolved" if minute == 11 else None,
                # The last scored call is not the newest interaction.
                satisfaction={2: 5, 5: 2, 9: 4}.get(minute),
                created_at=at(minute, 123456 if minute == 8 else 0),
            )
        )
    current = Interaction(
        channel="voice",
        external_id="current",
        customer_id=customer.id,
        status="offered",
        created_at=at(20),
    )
    tie = Interaction(
        channel="voice", external_id="tie", customer_id=customer.id, created_at=at(11)
    )
    stranger = Interaction(
        channel="voice",
        external_id="other",
        customer_id=other.id,
        satisfaction=1,
        created_at=at(30),
    )
    db.session.add_all([*calls, current, tie, stranger])
    for minute in range(12):
        db.session.add(
            CustomerNote(
                customer_id=customer.id,
                author_id=agent.id if minute % 2 else None,
                text=f"Note {minute}",
                created_at=at(minute),
            )
        )
    db.session.add(CustomerNote(customer_id=other.id, text="Not hers", created_at=at(50)))
    db.session.commit()
    # The nearest SLA deadline as the SLA module stores it (written here without a policy:
    # an ORM change to a ticket would have the SLA module recompute it).
    db.session.execute(
        sa.update(Ticket).where(Ticket.number == "1002").values(next_breach_at=at(60, 250000))
    )
    db.session.commit()
    ids = {
        "customer": customer.id,
        "owner": owner.id,
        "current": current.id,
        "tie": tie.id,
        "calls": [call.id for call in calls],
        "tickets": {
            t.number: t.id
            for t in db.session.scalars(sa.select(Ticket).where(Ticket.customer_id == customer.id))
        },
        "complaints": [
            c.id for c in db.session.scalars(sa.select(Complaint).order_by(Complaint.received_at))
        ],
    }
    db.session.remove()
    return ids


def test_screen_pop_shows_everything_in_order_within_limits(known):
    pop = history(known["customer"], exclude_interaction_id=known["current"])
    tickets, calls = known["tickets"], known["calls"]
    early, late = known["complaints"]
    assert pop["customer"] == {
        "id": known["customer"],
        "name": "Wei Zhang",
        "type": "distributor",
        "status": "active",
        "region": "North West",
        "tier": "A",
        "lifetime_value": "1234.50",
        "owner": {"id": known["owner"], "name": "Olivia Owner"},
        "marketing_opt_out": True,
        "identities": [
            {"kind": "phone", "value": "+441614960321"},
            {"kind": "email", "value": "wei@example.com"},
        ],
        "tags": ["vip", "zh"],
    }
    assert pop["open_tickets"] == [
        {
            "id": tickets[number],
            "number": number,
            "subject": f"Subject {number}",
            "status": status,
            "priority": "high" if number == "1002" else "normal",
            "next_breach_at": "2026-11-02T10:00:00.250000Z" if number == "1002" else None,
        }
        for number, status in [
            ("1006", "open"),
            ("1005", "new"),
            ("1002", "pending"),
            ("1001", "open"),
        ]
    ]
    assert pop["complaints"] == [
        {
            "id": late,
            "number": "1006",
            "status": "acknowledged",
            "deadlines": [
                {
                    "name": "acknowledgement",
                    "due_at": "2026-11-03T09:00:00.000500Z",
                    "met_at": "2026-11-02T09:30:00Z",
                },
                {"name": "summary_resolution", "due_at": "2026-11-05T09:00:00Z", "met_at": None},
                {"name": "final_response", "due_at": "2026-12-28T09:00:00Z", "met_at": None},
            ],
        },
        {
            "id": early,
            "number": "1007",
            "status": "closed",
            "deadlines": [
                {
                    "name": "acknowledgement",
                    "due_at": "2026-11-03T09:00:00Z",
                    "met_at": "2026-11-02T09:10:00.100000Z",
                },
                {
                    "name": "final_response",
                    "due_at": "2026-12-28T09:00:00Z",
                    "met_at": "2026-11-22T09:00:00Z",
                },
                {"name": "ombudsman_referral", "due_at": "2027-05-24T09:00:00Z", "met_at": None},
            ],
        },
    ]
    # The current call is left out; of the other 13 the newest 10, ties by the later id.
    shown = pop["recent_interactions"]
    assert [i["id"] for i in shown] == [known["tie"], *reversed(calls[3:])]
    assert shown[1] == {
        "id": calls[11],
        "channel": "voice",
        "started_at": "2026-11-02T09:11:00Z",
        "queue": "Cards",
        "agent": "Bob Chen",
        "outcome": "answered",
        "duration_s": 71,
        "disposition": "resolved",
    }
    assert shown[4] == {
        "id": calls[8],
        "channel": "email",
        "started_at": "2026-11-02T09:08:00.123456Z",
        "queue": "Cards",
        "agent": None,
        "outcome": "answered",
        "duration_s": 68,
        "disposition": None,
    }
    assert shown[0]["queue"] is None and shown[0]["outcome"] is None
    assert pop["notes"] == [
        {
            "at": f"2026-11-02T09:{minute:02d}:00Z",
            "author": "Bob Chen" if minute % 2 else None,
            "text": f"Note {minute}",
        }
        for minute in range(11, 1, -1)
    ]
    assert pop["satisfaction"] == {"last": 4, "average": 3.67}


def test_screen_pop_is_one_statement(known, statements):
    history(known["customer"], exclude_interaction_id=known["current"])
    assert len(statements) == 1


def test_screen_pop_parts_match_their_modules(known):
    pop = history(known["customer"])
    assert pop["customer"] == customer_summary(db.session.get(Customer, known["customer"]))
    # Without an interaction left out, the current call is the newest.
    assert pop["recent_interactions"][0]["id"] == known["current"]
    # The tickets and complaints modules' own summaries say the same.
    assert pop["open_tickets"] == open_tickets_summary(known["customer"])
    assert pop["complaints"] == summaries_for_customer(known["customer"])


def test_screen_pop_of_a_customer_with_no_history(app, statements):
    customer = Customer(name="New Person")
    db.session.add(customer)
    db.session.commit()
    customer_id = customer.id
    statements.clear()
    assert history(customer_id) == {
        "customer": {
            "id": customer_id,
            "name": "New Person",
            "type": "end_customer",
            "status": "active",
            "region": None,
            "tier": "C",
            "lifetime_value": "0.00",
            "owner": None,
            "marketing_opt_out": False,
            "identities": [],
            "tags": [],
        },
        "open_tickets": [],
        "complaints": [],
        "recent_interactions": [],
        "notes": [],
        "satisfaction": {"last": None, "average": None},
    }
    assert len(statements) == 1


def test_unknown_customer(app, client, create_user, auth_header):
    with pytest.raises(NotFound):
        history(999_999)
    response = client.get(
        "/api/v1/customers/999999/history", headers=auth_header(create_user("alice"))
    )
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"


def test_caller_screen_pop_finds_the_customer_by_any_phone_format(known):
    pop = screen_pop_for_caller("0161 496 0321", exclude_interaction_id=known["current"])
    assert pop == history(known["customer"], exclude_interaction_id=known["current"])


def test_caller_screen_pop_is_the_identity_lookup_and_one_statement(known, statements):
    screen_pop_for_caller("+441614960321")
    assert len(statements) == 2


def test_a_clean_session_reads_the_screen_pop_outside_its_transaction(known):
    db.session.commit()
    history(known["customer"])
    # PostgreSQL: one autocommit statement, the session starts no transaction for it.
    assert db.session().in_transaction() is (db.engine.dialect.name != "postgresql")


@pytest.mark.parametrize("flushed", [True, False])
def test_the_screen_pop_sees_what_the_session_has_not_committed(known, flushed):
    db.session.commit()
    db.session.add(CustomerNote(customer_id=known["customer"], text="Said just now"))
    if flushed:
        db.session.flush()
    pop = history(known["customer"])
    assert pop["notes"][0]["text"] == "Said just now"
    db.session.rollback()
    assert "Said just now" not in [n["text"] for n in history(known["customer"])["notes"]]
