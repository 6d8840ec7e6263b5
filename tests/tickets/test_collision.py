"""Collision detection over Socket.IO: who views a ticket and who is replying."""

from __future__ import annotations

from contact_center.extensions import db
from contact_center.tickets import collision
from contact_center.tickets import services as tickets


def _activity(socket) -> list[dict]:
    return [e["args"][0] for e in socket.get_received("/agent") if e["name"] == "ticket_activity"]


def _view(socket, ticket_id, **extra):
    return socket.emit(
        "view_ticket", {"ticket_id": ticket_id, **extra}, namespace="/agent", callback=True
    )


def test_viewers_and_replying_are_pushed_to_everyone_on_the_ticket(app, create_user, agent_socket):
    ticket = tickets.create_ticket("Card not arrived", "email")
    other = tickets.create_ticket("Something else", "email")
    db.session.commit()
    alice = create_user("alice", display_name="Alice")
    bob = create_user("bob", display_name="Bob")
    carol = create_user("carol", display_name="Carol")
    a, b, c = agent_socket(alice), agent_socket(bob), agent_socket(carol)
    for socket in (a, b, c):
        socket.get_received("/agent")

    assert _view(a, ticket.id)["ok"] is True
    ack = _view(b, ticket.id)
    assert [v["name"] for v in ack["viewers"]] == ["Alice", "Bob"] and ack["replying"] == []
    _view(c, other.id)
    c.get_received("/agent")

    _view(a, ticket.id, replying=True)
    seen_by_bob = _activity(b)[-1]
    assert seen_by_bob["ticket_id"] == ticket.id and seen_by_bob["replying"] == ["Alice"]
    assert _activity(c) == []  # carol is on another ticket

    left = a.emit("leave_ticket", {"ticket_id": ticket.id}, namespace="/agent", callback=True)
    assert [v["name"] for v in left["viewers"]] == ["Bob"]
    assert [v["name"] for v in _activity(b)[-1]["viewers"]] == ["Bob"]

    b.disconnect("/agent")  # a closed console stops counting at once
    assert collision.activity(ticket.id)["viewers"] == []


def test_bad_view_events_are_refused(app, create_user, agent_socket):
    socket = agent_socket(create_user("alice"))
    missing = socket.emit("view_ticket", {}, namespace="/agent", callback=True)
    assert missing["ok"] is False and missing["error"]["code"] == "validation_error"
    unknown = _view(socket, 999)
    assert unknown["ok"] is False and unknown["error"]["code"] == "not_found"
    assert collision.activity(999)["viewers"] == []
