"""Restricted queues: an agent reads a restricted queue's interactions, tickets and
complaints only as an agent of one of its teams, or holding the record; supervisors and
admins read everything; unrestricted queues are as before.

Every route and event of QUEUE_SCOPED (tests/test_access_matrix.py) is asked here about a
record of each of three queues: General (unrestricted), Fraud (restricted to the Fraud
team) and Vault (restricted, no team), as alice (team Fraud), bob (team Cards) and sue (a
supervisor); lists also as carol (team Cards), who holds one Fraud ticket and one Fraud call.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest

from contact_center.agents.services import can_read_queue
from contact_center.complaints import services as complaints
from contact_center.customers.services import create_customer
from contact_center.db_types import utcnow
from contact_center.extensions import db
from contact_center.routing import services as routing
from contact_center.routing.models import Interaction, Queue, Reservation
from contact_center.tickets import services as tickets
from contact_center.tickets.models import CannedResponse, MailAttachment
from tests.test_access_matrix import QUEUE_SCOPED, QUEUE_SCOPED_EVENTS

# Who may read the records of each queue (carol only what she holds: label "C").
READERS = {"G": {"alice", "bob", "sue"}, "F": {"alice", "sue"}, "V": {"sue"}}
SEEN_IN_LISTS = {
    "alice": {"G", "F", "C"},
    "bob": {"G"},
    "carol": {"G", "C"},
    "sue": {"G", "F", "V", "C"},
}
SCORES = dict.fromkeys(("tangibles", "reliability", "responsiveness", "assurance", "empathy"), 5)


def _call(queue: Queue, customer_id: int | None, agent_id: int | None, offered_to: list[int]):
    """An ended call of the queue, offered to each of `offered_to` (the decision record)."""
    call = Interaction(
        channel="voice",
        queue_id=queue.id,
        customer_id=customer_id,
        agent_id=agent_id,
        status="ended",
        outcome="answered",
        external_id=f"CA{uuid.uuid4().hex}",
        ended_at=utcnow(),
    )
    db.session.add(call)
    db.session.flush()
    for user_id in offered_to:
        db.session.add(
            Reservation(
                id=str(uuid.uuid4()),
                interaction_id=call.id,
                agent_id=user_id,
                status="rejected",
                expires_at=utcnow(),
            )
        )
    return call


@pytest.fixture
def world(app, create_user, make_queue):
    people = {
        "alice": create_user("alice", team="Fraud"),
        "bob": create_user("bob", team="Cards"),
        "carol": create_user("carol", team="Cards"),
        "sue": create_user("sue", "supervisor"),
    }
    queues = {
        "G": make_queue("General", is_default=True),
        "F": make_queue("Fraud", teams=["Fraud"], restricted=True),
        "V": make_queue("Vault", restricted=True),
    }
    customer = create_customer(
        {"name": "Mei Chen", "phones": ["+447700900123"], "emails": ["mei@example.org"]}
    )
    everyone = [user.id for user in people.values()]
    records = {}
    for label, queue in (*queues.items(), ("C", queues["F"])):
        holder = people["carol"].id if label == "C" else None
        ticket = tickets.create_ticket(
            f"Ticket {label}", "email", customer_id=customer.id, queue_id=queue.id
        )
        ticket.assignee_id = holder
        message = tickets.add_message(ticket, "inbound", "See the photo")
        attachment = MailAttachment(
            filename="card.png", content_type="image/png", size=3, data=b"png"
        )
        message.attachments.append(attachment)
        db.session.flush()
        complaint = complaints.stage_complaint(
            {"ticket_id": ticket.id, "category": "fees", "channel_received": "email"}, None
        )
        call = _call(queue, customer.id, holder, everyone)
        records[label] = SimpleNamespace(
            queue=queue, ticket=ticket, attachment=attachment, complaint=complaint, call=call
        )
    # What the routes taking a reference are asked on, or name: a General ticket and call.
    host = tickets.create_ticket("Host", "email", queue_id=queues["G"].id)
    host_call = _call(queues["G"], None, None, [])
    canned = CannedResponse(name="Thanks", body="Thank you, {customer_name}.")
    db.session.add(canned)
    db.session.commit()
    return SimpleNamespace(
        people=people,
        queues=queues,
        customer=customer,
        records=records,
        host=host,
        host_call=host_call,
        canned=canned,
    )


@pytest.fixture
def as_user(client, auth_header, world) -> Callable[..., Any]:
    """as_user("bob", "get", "/api/v1/tickets") -> the response."""
    headers = {name: auth_header(user) for name, user in world.people.items()}

    def call(name: str, method: str, path: str, json: dict | None = None):
        return client.open(path, method=method.upper(), headers=headers[name], json=json)

    return call


# ---------------------------------------------------------------- records by id: 404 or 422


@dataclass
class Ask:
    method: str
    path: str
    json: dict | None = None
    # None: the path names the record (refused: 404); else the body's field that names it
    # (refused: 422 on that field).
    field: str | None = None


def _ticket(path: str = "", method: str = "get", json: dict | None = None):
    return lambda w, r: [Ask(method, f"/api/v1/tickets/{r.ticket.id}{path}", json)]


def _complaint(path: str = "", method: str = "get", json: dict | None = None):
    return lambda w, r: [Ask(method, f"/api/v1/complaints/{r.complaint.id}{path}", json)]


def _both_ways(path: str, field: str, other: Callable) -> Callable:
    """The record named in the body (on the host ticket), and the record's ticket as the path
    (naming `other` in the body)."""

    def asks(w, r):
        return [
            Ask("post", f"/api/v1/tickets/{w.host.id}{path}", {field: r.ticket.id}, field),
            Ask("post", f"/api/v1/tickets/{r.ticket.id}{path}", {field: other(w)}),
        ]

    return asks


BY_ID: dict[tuple[str, str], Callable] = {
    ("GET", "/api/v1/queues/<int:queue_id>/estimate"): lambda w, r: [
        Ask("get", f"/api/v1/queues/{r.queue.id}/estimate")
    ],
    ("GET", "/api/v1/interactions/<int:interaction_id>"): lambda w, r: [
        Ask("get", f"/api/v1/interactions/{r.call.id}")
    ],
    ("GET", "/api/v1/tickets/<int:ticket_id>"): _ticket(),
    ("PATCH", "/api/v1/tickets/<int:ticket_id>"): _ticket("", "patch", {"priority": "high"}),
    ("GET", "/api/v1/tickets/<int:ticket_id>/attachments/<int:attachment_id>"): lambda w, r: [
        Ask("get", f"/api/v1/tickets/{r.ticket.id}/attachments/{r.attachment.id}")
    ],
    ("GET", "/api/v1/tickets/<int:ticket_id>/audit"): _ticket("/audit"),
    ("POST", "/api/v1/tickets/<int:ticket_id>/calls"): lambda w, r: [
        Ask(
            "post",
            f"/api/v1/tickets/{w.host.id}/calls",
            {"interaction_id": r.call.id},
            "interaction_id",
        ),
        Ask("post", f"/api/v1/tickets/{r.ticket.id}/calls", {"interaction_id": w.host_call.id}),
    ],
    ("GET", "/api/v1/tickets/<int:ticket_id>/canned/<int:canned_id>"): lambda w, r: [
        Ask("get", f"/api/v1/tickets/{r.ticket.id}/canned/{w.canned.id}")
    ],
    ("POST", "/api/v1/tickets/<int:ticket_id>/links"): _both_ways(
        "/links", "ticket_id", lambda w: w.host.id
    ),
    ("POST", "/api/v1/tickets/<int:ticket_id>/notes"): _ticket("/notes", "post", {"body": "Hi"}),
    ("POST", "/api/v1/tickets/<int:ticket_id>/replies"): _ticket(
        "/replies", "post", {"body": "We are on it."}
    ),
    ("GET", "/api/v1/sla/tickets/<int:ticket_id>"): lambda w, r: [
        Ask("get", f"/api/v1/sla/tickets/{r.ticket.id}")
    ],
    ("POST", "/api/v1/complaints"): lambda w, r: [
        Ask(
            "post",
            "/api/v1/complaints",
            {"ticket_id": r.ticket.id, "category": "fees", "channel_received": "email"},
            "ticket_id",
        )
    ],
    ("GET", "/api/v1/complaints/<int:complaint_id>"): _complaint(),
    ("PATCH", "/api/v1/complaints/<int:complaint_id>"): _complaint(
        "", "patch", {"severity": "high"}
    ),
    ("POST", "/api/v1/complaints/<int:complaint_id>/close"): _complaint("/close", "post"),
    ("GET", "/api/v1/complaints/<int:complaint_id>/final-response"): _complaint("/final-response"),
    ("POST", "/api/v1/complaints/<int:complaint_id>/final-response"): _complaint(
        "/final-response", "post"
    ),
    ("POST", "/api/v1/complaints/<int:complaint_id>/follow-up"): _complaint(
        "/follow-up", "post", {"satisfaction": 4}
    ),
    ("POST", "/api/v1/surveys/servqual"): lambda w, r: [
        Ask(
            "post",
            "/api/v1/surveys/servqual",
            {"interaction_id": r.call.id, "expectations": SCORES, "perceptions": SCORES},
            "interaction_id",
        )
    ],
    # Last: merging moves the ticket's messages (and attachments) away.
    ("POST", "/api/v1/tickets/<int:ticket_id>/merge"): _both_ways(
        "/merge", "into_ticket_id", lambda w: w.host.id
    ),
}


def refused(response, field: str | None) -> bool:
    body = response.get_json(silent=True) or {}
    if field is None:
        return response.status_code == 404 and body["error"]["code"] == "not_found"
    fields = body.get("error", {}).get("fields", {})
    return response.status_code == 422 and field in fields


@pytest.mark.parametrize("label", sorted(READERS))
def test_a_record_is_answered_only_to_those_who_may_read_its_queue(world, as_user, label):
    record = world.records[label]
    for route, asks in BY_ID.items():
        # The refused first: a refusal changes nothing, so the others then find it as it was.
        for name in sorted(("alice", "bob", "sue"), key=lambda n: n in READERS[label]):
            for ask in asks(world, record):
                response = as_user(name, ask.method, ask.path, ask.json)
                body = response.get_json(silent=True)
                assert response.status_code < 500, (route, ask, name, body)
                expected = name not in READERS[label]
                assert refused(response, ask.field) == expected, (
                    route,
                    ask,
                    name,
                    response.status_code,
                    body,
                )


@pytest.mark.parametrize(
    "path",
    ["/api/v1/tickets/{ticket}", "/api/v1/complaints/{complaint}", "/api/v1/interactions/{call}"],
)
def test_the_holder_reads_their_own_record_of_a_restricted_queue(world, as_user, path):
    held, other = world.records["C"], world.records["F"]
    ids = lambda r: {"ticket": r.ticket.id, "complaint": r.complaint.id, "call": r.call.id}  # noqa: E731
    assert as_user("carol", "get", path.format(**ids(held))).status_code == 200
    assert as_user("carol", "get", path.format(**ids(other))).status_code == 404


# ---------------------------------------------------------------- lists leave them out


def _labels(world, attribute: str, ids) -> set[str]:
    by_id = {getattr(r, attribute).id: label for label, r in world.records.items()}
    return {by_id[i] for i in ids if i in by_id}


def _tickets(world, get) -> set[str]:
    listed = _labels(world, "ticket", [t["id"] for t in get("/api/v1/tickets")])
    # Searching by number, or by queue, finds the same and no more.
    for label, record in world.records.items():
        found = [t["id"] for t in get(f"/api/v1/tickets?q={record.ticket.number}")]
        assert (record.ticket.id in found) == (label in listed), label
        in_queue = [t["id"] for t in get(f"/api/v1/tickets?queue_id={record.queue.id}")]
        assert (record.ticket.id in in_queue) == (label in listed), label
    return listed


def _complaints(world, get) -> set[str]:
    listed = _labels(world, "complaint", [c["id"] for c in get("/api/v1/complaints")])
    csv = get("/api/v1/complaints?format=csv")
    in_csv = {label for label, r in world.records.items() if f"\n{r.complaint.id}," in csv}
    assert in_csv == listed
    return listed


def _customers(world, get) -> set[str]:
    """The customer is found by the number of each ticket the reader may read."""
    return {
        label
        for label, record in world.records.items()
        if get(f"/api/v1/customers?q={record.ticket.number}")
    }


def _history(world, get) -> set[str]:
    pop = get(f"/api/v1/customers/{world.customer.id}/history")
    open_tickets = _labels(world, "ticket", [t["id"] for t in pop["open_tickets"]])
    listed = _labels(world, "complaint", [c["id"] for c in pop["complaints"]])
    calls = _labels(world, "call", [i["id"] for i in pop["recent_interactions"]])
    assert open_tickets == listed == calls
    return listed


def _queues(world, get) -> set[str]:
    names = {q["name"] for q in get("/api/v1/queues")}
    return {label for label, queue in world.queues.items() if queue.name in names}


LISTS: dict[tuple[str, str], Callable] = {
    ("GET", "/api/v1/tickets"): _tickets,
    ("GET", "/api/v1/complaints"): _complaints,
    ("GET", "/api/v1/customers"): _customers,
    ("GET", "/api/v1/customers/<int:customer_id>/history"): _history,
    ("GET", "/api/v1/queues"): _queues,
}


@pytest.mark.parametrize("name", sorted(SEEN_IN_LISTS))
def test_lists_leave_out_what_the_reader_may_not_read(world, as_user, name):
    def get(path: str):
        response = as_user(name, "get", path)
        assert response.status_code == 200, (path, response.get_json(silent=True))
        return response.get_json() if response.is_json else response.get_data(as_text=True)

    for route, seen in LISTS.items():
        expected = SEEN_IN_LISTS[name]
        if route == ("GET", "/api/v1/queues"):
            expected = expected - {"C"}  # holding a record is not reading its queue
        assert seen(world, get) == expected, route


def test_every_queue_scoped_route_is_asked():
    assert BY_ID.keys() | LISTS.keys() == QUEUE_SCOPED
    assert not BY_ID.keys() & LISTS.keys()
    assert QUEUE_SCOPED_EVENTS == {"view_ticket"}  # asked below


# ---------------------------------------------------------------- the console's socket


def test_view_ticket_and_its_activity_only_for_those_who_may_read_it(world, agent_socket):
    alice, bob = agent_socket(world.people["alice"]), agent_socket(world.people["bob"])
    fraud, general = world.records["F"].ticket.id, world.records["G"].ticket.id
    refused = bob.emit("view_ticket", {"ticket_id": fraud}, namespace="/agent", callback=True)
    assert refused["ok"] is False and refused["error"]["code"] == "not_found"
    assert bob.emit("view_ticket", {"ticket_id": general}, namespace="/agent", callback=True)["ok"]
    bob.get_received("/agent")

    ack = alice.emit(
        "view_ticket", {"ticket_id": fraud, "replying": True}, namespace="/agent", callback=True
    )
    assert ack["ok"] is True and ack["replying"] == ["alice"]
    assert [e for e in bob.get_received("/agent") if e["name"] == "ticket_activity"] == []


def _pop_labels(world, pop: dict) -> set[str]:
    return _labels(world, "ticket", [t["id"] for t in pop["open_tickets"]]) | _labels(
        world, "call", [i["id"] for i in pop["recent_interactions"]]
    )


def test_the_offer_and_the_work_in_hand_carry_the_screen_pop_as_the_agent_may_read_it(
    world, agent_socket
):
    bob = world.people["bob"]
    socket = agent_socket(bob)
    socket.emit("set_status", {"status": "available"}, namespace="/agent", callback=True)
    routing.create_interaction(
        channel="email",
        queue=world.queues["G"],
        external_id="<new@example.org>",
        customer_id=world.customer.id,
        from_address="mei@example.org",
    )
    offer = next(e["args"][0] for e in socket.get_received("/agent") if e["name"] == "offer")
    assert _pop_labels(world, offer["screen_pop"]) == {"G"}
    ack = socket.emit(
        "accept", {"reservation_id": offer["reservation_id"]}, namespace="/agent", callback=True
    )
    assert ack["ok"] is True

    again = agent_socket(bob)  # a reload: the work in hand comes back with its screen pop
    current = next(e["args"][0] for e in again.get_received("/agent") if e["name"] == "current")
    assert [_pop_labels(world, w["screen_pop"]) for w in current["interactions"]] == [{"G"}]
    # Whoever may read more sees more of the same customer's history.
    held = db.session.get(Interaction, offer["interaction"]["id"])
    assert _pop_labels(world, routing.screen_pop(held, world.people["alice"])) == {"G", "F", "C"}
    assert _pop_labels(world, routing.screen_pop(held, world.people["sue"])) == {"G", "F", "V", "C"}


# ---------------------------------------------------------------- the rule and the queue API


def test_the_rule(world):
    alice, bob, sue = (world.people[n] for n in ("alice", "bob", "sue"))
    fraud, vault, general = (world.queues[k] for k in ("F", "V", "G"))
    assert [can_read_queue(alice, q) for q in (general, fraud, vault)] == [True, True, False]
    assert [can_read_queue(bob, q) for q in (general, fraud, vault)] == [True, False, False]
    assert [can_read_queue(sue, q) for q in (general, fraud, vault)] == [True, True, True]
    fraud.teams = []  # restricted with no team: no agent at all
    assert not can_read_queue(alice, fraud)


def test_supervisors_restrict_a_queue_over_the_api(world, as_user):
    general = world.queues["G"]
    path = f"/api/v1/queues/{general.id}"
    assert as_user("bob", "patch", path, {"restricted": True}).status_code == 403
    response = as_user("sue", "patch", path, {"restricted": True, "teams": ["Fraud"]})
    assert response.status_code == 200
    assert (response.get_json()["restricted"], response.get_json()["teams"]) == (True, ["Fraud"])
    assert as_user("bob", "get", f"{path}/estimate").status_code == 404
    assert as_user("alice", "get", f"{path}/estimate").status_code == 200
    created = as_user("sue", "post", "/api/v1/queues", {"name": "Open"}).get_json()
    assert created["restricted"] is False
