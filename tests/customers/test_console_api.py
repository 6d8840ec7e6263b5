"""What the agent console needs of the API: customer notes, search by ticket number,
identifying an unknown caller, the agent directory, and ticket search."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from contact_center.audit import trail
from contact_center.customers.models import CustomerIdentity, CustomerNote, phone_tail
from contact_center.customers.services import screen_pop_for_caller
from contact_center.db_types import utcnow
from contact_center.extensions import db
from contact_center.tickets.models import Ticket


@pytest.fixture
def alice(create_user):
    return create_user("alice", display_name="Alice Archer")


@pytest.fixture
def headers(alice, auth_header):
    return auth_header(alice)


def _customer(client, headers, name: str, phone: str | None = None) -> dict:
    body = {"name": name, "phones": [phone] if phone else []}
    response = client.post("/api/v1/customers", headers=headers, json=body)
    assert response.status_code == 201
    return response.get_json()


def _ticket(client, headers, subject: str, **fields) -> dict:
    response = client.post("/api/v1/tickets", headers=headers, json={"subject": subject, **fields})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_a_note_goes_on_the_record_and_into_the_screen_pop(client, headers):
    customer = _customer(client, headers, "Nora Note")
    added = client.post(
        f"/api/v1/customers/{customer['id']}/notes", headers=headers, json={"text": "Prefers email"}
    )
    assert added.status_code == 201
    assert added.get_json()["author"] == "Alice Archer"
    assert added.get_json()["text"] == "Prefers email"
    pop = client.get(f"/api/v1/customers/{customer['id']}/history", headers=headers).get_json()
    assert [n["text"] for n in pop["notes"]] == ["Prefers email"]


@pytest.mark.parametrize("body", [{}, {"text": ""}, {"text": "x" * 10_001}, {"text": 5}])
def test_a_bad_note_is_422_and_writes_nothing(client, headers, body):
    customer = _customer(client, headers, "Nora Note")
    response = client.post(f"/api/v1/customers/{customer['id']}/notes", headers=headers, json=body)
    assert response.status_code == 422
    assert "text" in response.get_json()["error"]["fields"]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(CustomerNote)) == 0


def test_a_note_on_no_such_customer_is_404(client, headers):
    assert (
        client.post("/api/v1/customers/999/notes", headers=headers, json={"text": "x"}).status_code
        == 404
    )


def test_customers_are_found_by_their_tickets_number(client, headers):
    owner = _customer(client, headers, "Tess Ticketholder")
    _customer(client, headers, "Someone Else")
    ticket = _ticket(client, headers, "Card declined", customer_id=owner["id"])
    for query in (ticket["number"], "#" + ticket["number"]):
        found = client.get("/api/v1/customers", headers=headers, query_string={"q": query})
        assert [c["id"] for c in found.get_json()] == [owner["id"]]


def test_an_unknown_caller_is_identified_on_the_agents_call(
    client, auth_header, live_call, create_user
):
    interaction, alice, _socket = live_call
    headers = auth_header(alice)
    customer = _customer(client, headers, "New Caller", "+447700900123")
    response = client.patch(
        f"/api/v1/interactions/{interaction.id}",
        headers=headers,
        json={"customer_id": customer["id"]},
    )
    assert response.status_code == 200
    assert response.get_json()["customer_id"] == customer["id"]
    db.session.refresh(interaction)
    assert interaction.customer_id == customer["id"]
    [event] = trail("interaction", interaction.id)
    assert event.action == "interaction.identified" and event.actor_id == alice.id

    # Someone else's call, an unknown customer, a malformed body: refused, nothing changed.
    bob = auth_header(create_user("bob"))
    other = client.patch(
        f"/api/v1/interactions/{interaction.id}", headers=bob, json={"customer_id": 1}
    )
    assert other.status_code == 404
    for body, status in (({"customer_id": 9999}, 422), ({"customer_id": "1"}, 422), ({}, 422)):
        bad = client.patch(f"/api/v1/interactions/{interaction.id}", headers=headers, json=body)
        assert bad.status_code == status
    db.session.refresh(interaction)
    assert interaction.customer_id == customer["id"]


def test_the_agent_directory_lists_active_colleagues_and_filters(client, headers, create_user):
    create_user("bob", display_name="Bob Baker")
    gone = create_user("carol", display_name="Carol Gone")
    gone.is_active_user = False
    busy = create_user("dave", display_name="Dave Available")
    busy.status = "available"
    db.session.commit()
    everyone = client.get("/api/v1/agents", headers=headers).get_json()
    assert [a["display_name"] for a in everyone] == ["Alice Archer", "Bob Baker", "Dave Available"]
    assert set(everyone[0]) == {
        "id",
        "username",
        "display_name",
        "team",
        "role",
        "status",
        "presence",
    }
    named = client.get("/api/v1/agents", headers=headers, query_string={"q": "bak"}).get_json()
    assert [a["username"] for a in named] == ["bob"]
    free = client.get("/api/v1/agents", headers=headers, query_string={"available": "true"})
    assert [a["username"] for a in free.get_json()] == ["dave"]
    assert client.get("/api/v1/agents").status_code == 401
    assert client.get("/api/v1/agents?available=maybe", headers=headers).status_code == 422


def test_tickets_are_searched_by_number_words_queue_assignee_and_sla_state(client, headers, alice):
    breached = _ticket(client, headers, "Refund 100% late", assignee_id=alice.id)
    soon = _ticket(client, headers, "Card stuck")
    later = _ticket(client, headers, "Address change")
    none = _ticket(client, headers, "Password reset")
    now = utcnow()
    for ticket_id, due in (
        (breached["id"], now - timedelta(minutes=5)),
        (soon["id"], now + timedelta(minutes=20)),
        (later["id"], now + timedelta(hours=5)),
        (none["id"], None),
    ):
        db.session.execute(
            sa.update(Ticket).where(Ticket.id == ticket_id).values(next_breach_at=due)
        )
    db.session.commit()

    def ids(**query) -> list[int]:
        response = client.get("/api/v1/tickets", headers=headers, query_string=query)
        assert response.status_code == 200, response.get_json()
        return [t["id"] for t in response.get_json()]

    assert ids(q=soon["number"]) == [soon["id"]]
    assert ids(q="#" + soon["number"]) == [soon["id"]]
    assert ids(q="100%") == [breached["id"]]  # the % is a character, not a wildcard
    assert ids(q="card") == [soon["id"]]
    assert ids(assignee_id=alice.id) == [breached["id"]]
    assert ids(sla="breached") == [breached["id"]]
    assert ids(sla="due_soon") == [soon["id"]]
    assert ids(sla="on_track") == [later["id"]]
    assert ids(sla="none") == [none["id"]]
    assert ids(status="unsolved") == [none["id"], later["id"], soon["id"], breached["id"]]
    assert ids(status="solved") == []
    assert client.get("/api/v1/tickets?sla=late", headers=headers).status_code == 422


def test_an_unknown_callers_likely_matches_come_from_the_phone_tail_index(app, headers, client):
    """Numbers ending the same way are suggested, found through the index, not a scan."""
    same_tail = _customer(client, headers, "Tail Twin", "+44 20 7946 0018")
    _customer(client, headers, "Other Number", "+44 20 7946 0099")
    pop = screen_pop_for_caller("+1 212 946 0018")  # another country, same last 7 digits
    assert pop["customer"] is None
    assert [s["id"] for s in pop["suggestions"]] == [same_tail["id"]]
    # The number itself, in another format: the customer, not a suggestion.
    assert screen_pop_for_caller("020 7946 0018")["customer"]["id"] == same_tail["id"]

    statement = (
        sa.select(CustomerIdentity.customer_id)
        .where(CustomerIdentity.kind == "phone", phone_tail(CustomerIdentity.value) == "9460018")
        .compile(db.engine, compile_kwargs={"literal_binds": True})
    )
    with db.engine.connect() as connection:
        if db.engine.dialect.name == "postgresql":
            connection.exec_driver_sql("SET enable_seqscan = off")  # tiny tables: force the choice
            plan = connection.exec_driver_sql(f"EXPLAIN {statement}").scalars().all()
        else:
            plan = [
                row[-1] for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}")
            ]
    assert any("ix_customer_identities_phone_tail" in line for line in plan), plan
