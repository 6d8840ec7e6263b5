"""The ticket lifecycle over the API: transitions, fields, notes, calls, merge, links, canned
responses and the audit trail."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from contact_center.audit import AuditEvent
from contact_center.customers.services import create_customer
from contact_center.db_types import utcnow
from contact_center.extensions import db
from contact_center.routing.models import Interaction
from contact_center.tickets import services as tickets
from contact_center.tickets.models import STATUSES, TRANSITIONS, Ticket, TicketLink, TicketMessage
from tests.tickets.test_email_inbound import make_mail


@pytest.fixture
def agent(create_user):
    return create_user("alice", display_name="Alice Smith")


@pytest.fixture
def api(client, auth_header, agent):
    """Call the API as alice: api("patch", "/api/v1/tickets/1", json={...})."""
    headers = auth_header(agent)

    def call(method: str, url: str, **kwargs):
        return getattr(client, method)(url, headers=headers, **kwargs)

    return call


def _ticket(status: str = "new", **fields) -> Ticket:
    customer = create_customer(
        {"name": "Mei Chen", "emails": [f"mei{utcnow().timestamp()}@example.org"]}
    )
    ticket = tickets.create_ticket("Card not arrived", "email", customer_id=customer.id, **fields)
    ticket.status = status
    db.session.commit()
    return ticket


@pytest.mark.parametrize("source", STATUSES)
@pytest.mark.parametrize("target", STATUSES)
def test_every_transition_is_allowed_or_refused(app, api, agent, source, target):
    ticket = _ticket(source)
    response = api("patch", f"/api/v1/tickets/{ticket.id}", json={"status": target})
    db.session.expire_all()
    if target == source or target in TRANSITIONS[source]:
        assert response.status_code == 200, response.get_json()
        assert ticket.status == target
        if target != source:
            event = db.session.scalars(
                sa.select(AuditEvent).where(AuditEvent.action == "ticket.updated")
            ).one()
            assert (event.actor_id, event.before, event.after) == (
                agent.id,
                {"status": source},
                {"status": target},
            )
    else:
        assert response.status_code == 409
        assert response.get_json()["error"]["code"] == "conflict"
        assert ticket.status == source
        assert (
            db.session.scalar(
                sa.select(sa.func.count())
                .select_from(AuditEvent)
                .where(AuditEvent.action == "ticket.updated")
            )
            == 0
        )


def test_assigning_a_new_ticket_opens_it_and_bad_references_change_nothing(app, api, agent):
    ticket = _ticket()
    assert (
        api("patch", f"/api/v1/tickets/{ticket.id}", json={"assignee_id": 999}).status_code == 422
    )
    assert api("patch", f"/api/v1/tickets/{ticket.id}", json={}).status_code == 422
    assert api("patch", f"/api/v1/tickets/{ticket.id}", json={"priority": "meh"}).status_code == 422
    response = api(
        "patch",
        f"/api/v1/tickets/{ticket.id}",
        json={"assignee_id": agent.id, "priority": "high", "tags": ["vip", "cards"]},
    )
    body = response.get_json()
    assert (body["status"], body["priority"], body["tags"]) == ("open", "high", ["vip", "cards"])
    trail = api("get", f"/api/v1/tickets/{ticket.id}/audit").get_json()
    assert [e["action"] for e in trail] == ["ticket.created", "ticket.updated"]
    assert trail[1]["before"]["status"] == "new" and trail[1]["after"]["assignee_id"] == agent.id
    assert trail[1]["source"] == "127.0.0.1"


def test_custom_fields_follow_the_types_definitions(app, api, client, auth_header, create_user):
    definitions = {
        "incident": {
            "card_last4": {"kind": "text", "required": True},
            "severity": {"kind": "choice", "choices": ["low", "high"]},
            "amount": {"kind": "number"},
        }
    }
    settings = {"reopen_window_days": 7, "custom_fields": definitions}
    assert api("put", "/api/v1/tickets/settings", json=settings).status_code == 403
    admin = create_user("ada", role="admin")
    saved = client.put("/api/v1/tickets/settings", json=settings, headers=auth_header(admin))
    assert saved.status_code == 200
    bad_kind = {"reopen_window_days": 7, "custom_fields": {"incident": {"x": {"kind": "choice"}}}}
    assert (
        client.put(
            "/api/v1/tickets/settings", json=bad_kind, headers=auth_header(admin)
        ).status_code
        == 422
    )

    missing = api("post", "/api/v1/tickets", json={"subject": "Fraud", "type": "incident"})
    assert missing.status_code == 422
    assert "card_last4" in missing.get_json()["error"]["fields"]["custom_fields"]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Ticket)) == 0
    created = api(
        "post",
        "/api/v1/tickets",
        json={"subject": "Fraud", "type": "incident", "custom_fields": {"card_last4": "4242"}},
    ).get_json()
    url = f"/api/v1/tickets/{created['id']}"
    wrong = api("patch", url, json={"custom_fields": {"severity": "apocalyptic", "colour": "red"}})
    assert wrong.status_code == 422
    assert set(wrong.get_json()["error"]["fields"]["custom_fields"]) == {"severity", "colour"}
    ok = api("patch", url, json={"custom_fields": {"severity": "high", "amount": 120.5}})
    assert ok.get_json()["custom_fields"] == {
        "card_last4": "4242",
        "severity": "high",
        "amount": 120.5,
    }


def test_notes_are_internal_and_calls_become_summaries(app, api):
    ticket = _ticket()
    note = api(
        "post", f"/api/v1/tickets/{ticket.id}/notes", json={"body": "Customer sounded upset."}
    )
    assert note.status_code == 201 and note.get_json()["kind"] == "note"
    assert note.get_json()["delivery_status"] is None  # never mailed
    call = Interaction(
        channel="voice",
        status="ended",
        outcome="answered",
        duration_s=185,
        disposition="card_reissued",
        notes="Sent a new card.",
        customer_id=ticket.customer_id,
    )
    mail = Interaction(channel="email", status="ended")
    db.session.add_all([call, mail])
    db.session.commit()
    summary = api("post", f"/api/v1/tickets/{ticket.id}/calls", json={"interaction_id": call.id})
    assert summary.status_code == 201
    text = summary.get_json()["body"]
    assert "3 min 5 s" in text and "card_reissued" in text and "Sent a new card." in text
    db.session.expire_all()
    assert call.ticket_id == ticket.id
    assert (
        api(
            "post", f"/api/v1/tickets/{ticket.id}/calls", json={"interaction_id": mail.id}
        ).status_code
        == 422
    )


def test_merge_moves_messages_and_calls_and_closes_the_source(app, api, post_mail):
    survivor = _ticket()
    source_id = post_mail(make_mail(message_id="<dup@example.org>")).get_json()["ticket_id"]
    source = db.session.get(Ticket, source_id)
    moved_ids = {m.id for m in source.messages}
    assert (
        api(
            "post", f"/api/v1/tickets/{source_id}/merge", json={"into_ticket_id": source_id}
        ).status_code
        == 422
    )
    merged = api("post", f"/api/v1/tickets/{source_id}/merge", json={"into_ticket_id": survivor.id})
    assert merged.status_code == 200, merged.get_json()
    db.session.expire_all()
    assert source.status == "closed" and source.merged_into_id == survivor.id
    assert moved_ids <= {m.id for m in survivor.messages}
    assert db.session.scalar(sa.select(Interaction.ticket_id)) == survivor.id
    again = api("post", f"/api/v1/tickets/{source_id}/merge", json={"into_ticket_id": survivor.id})
    assert again.status_code == 409
    # A reply to a message of the merged ticket lands on the survivor.
    reply = post_mail(make_mail(headers={"In-Reply-To": "<dup@example.org>"}, subject="Re: x"))
    assert reply.get_json()["ticket_id"] == survivor.id
    actions = db.session.scalars(sa.select(AuditEvent.action).order_by(AuditEvent.id)).all()
    assert "ticket.merged" in actions and "ticket.absorbed" in actions


def test_links_show_from_both_sides(app, api):
    first, second = _ticket(), _ticket()
    assert (
        api("post", f"/api/v1/tickets/{first.id}/links", json={"ticket_id": first.id}).status_code
        == 422
    )
    assert (
        api("post", f"/api/v1/tickets/{first.id}/links", json={"ticket_id": 9999}).status_code
        == 422
    )
    for _ in range(2):  # linking twice is one link
        assert (
            api(
                "post", f"/api/v1/tickets/{first.id}/links", json={"ticket_id": second.id}
            ).status_code
            == 200
        )
    assert db.session.scalar(sa.select(sa.func.count()).select_from(TicketLink)) == 1
    assert api("get", f"/api/v1/tickets/{second.id}").get_json()["linked_ticket_ids"] == [first.id]


def test_canned_responses_fill_in_placeholders(app, api, client, auth_header, create_user):
    ticket = _ticket()
    sam = create_user("sam", role="supervisor")
    url = "/api/v1/canned-responses"
    body = "Dear {customer_name}, about ticket {ticket_number} ({subject}): done. {agent_name}"
    assert api("post", url, json={"name": "done", "body": body}).status_code == 403
    unknown = client.post(
        url, json={"name": "x", "body": "Hi {password}"}, headers=auth_header(sam)
    )
    assert unknown.status_code == 422 and "password" in str(unknown.get_json()["error"]["fields"])
    broken = client.post(url, json={"name": "y", "body": "Hi {oops"}, headers=auth_header(sam))
    assert broken.status_code == 422
    canned = client.post(
        url, json={"name": "done", "body": body}, headers=auth_header(sam)
    ).get_json()
    expected = f"Dear Mei Chen, about ticket {ticket.number} (Card not arrived): done. Alice Smith"
    preview = api("get", f"/api/v1/tickets/{ticket.id}/canned/{canned['id']}").get_json()
    assert preview["body"] == expected
    sent = api(
        "post", f"/api/v1/tickets/{ticket.id}/replies", json={"canned_response_id": canned["id"]}
    )
    assert sent.status_code == 201, sent.get_json()
    assert sent.get_json()["body"] == expected
    both = api(
        "post",
        f"/api/v1/tickets/{ticket.id}/replies",
        json={"body": "x", "canned_response_id": canned["id"]},
    )
    assert both.status_code == 422


def test_customer_reply_reopens_within_the_window_else_a_follow_up(app, post_mail):
    first_id = post_mail(make_mail(message_id="<w1@example.org>")).get_json()["ticket_id"]
    ticket = db.session.get(Ticket, first_id)
    ticket.status, ticket.solved_at = "solved", utcnow() - timedelta(days=2)
    db.session.commit()
    again = post_mail(make_mail(headers={"In-Reply-To": "<w1@example.org>"}))
    assert again.get_json()["ticket_id"] == first_id
    db.session.expire_all()
    assert ticket.status == "open"

    ticket.status, ticket.solved_at = "solved", utcnow() - timedelta(days=8)
    db.session.commit()
    late = post_mail(make_mail(headers={"In-Reply-To": "<w1@example.org>"})).get_json()
    assert late["ticket_id"] != first_id and late["new_ticket"] is True
    db.session.expire_all()
    assert ticket.status == "solved"
    link = db.session.scalars(sa.select(TicketLink)).one()
    assert (link.ticket_id, link.linked_id, link.kind) == (late["ticket_id"], first_id, "follow_up")
    assert (
        db.session.scalar(
            sa.select(sa.func.count())
            .select_from(TicketMessage)
            .where(TicketMessage.ticket_id == first_id, TicketMessage.kind == "inbound")
        )
        == 2
    )
