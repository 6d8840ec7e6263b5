"""Outbound mail: replies and acknowledgements reach a real SMTP server and thread back."""

from __future__ import annotations

from email import message_from_bytes, policy

import sqlalchemy as sa

from contact_center.extensions import db
from contact_center.routing import services as routing
from contact_center.tickets import services as tickets
from contact_center.tickets.models import Ticket, TicketMessage
from tests.invariants import assert_invariants
from tests.tickets.test_email_inbound import make_mail


def _received(sink, index: int = -1):
    envelope = sink.messages[index]
    return envelope, message_from_bytes(envelope.content, policy=policy.default)


def _reply(client, auth_header, agent, ticket_id: int, body: str = "We have sent a new card."):
    response = client.post(
        f"/api/v1/tickets/{ticket_id}/replies", json={"body": body}, headers=auth_header(agent)
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_reply_threads_in_the_customers_client_and_their_answer_comes_back(
    app, post_mail, client, create_user, auth_header, smtp_server, run_jobs
):
    ticket_id = post_mail(make_mail(message_id="<q1@example.org>")).get_json()["ticket_id"]
    ticket = db.session.get(Ticket, ticket_id)
    agent = create_user("alice")
    sent = _reply(client, auth_header, agent, ticket_id)
    assert sent["delivery_status"] == "queued"
    run_jobs()

    assert len(smtp_server.messages) == 2  # the acknowledgement, then the reply
    ack_envelope, ack = _received(smtp_server, 0)
    assert ack["Auto-Submitted"] == "auto-replied"
    assert ack["In-Reply-To"] == "<q1@example.org>"
    envelope, reply = _received(smtp_server, 1)
    assert envelope.mail_from == "help@desk.test" and envelope.rcpt_tos == ["mei@example.org"]
    assert reply["Message-ID"] == sent["message_id"]
    assert reply["Subject"] == f"Re: Card not arrived [#{ticket.number}]"
    assert reply["In-Reply-To"] == ack["Message-ID"]  # the latest message of the thread
    assert "<q1@example.org>" in reply["References"].split()
    assert reply["Reply-To"].startswith(f"support+t{ticket.number}-")
    assert reply.get_content().strip() == "We have sent a new card."
    assert reply["Auto-Submitted"] is None
    db.session.expire_all()
    stored = db.session.get(TicketMessage, sent["id"])
    assert stored.delivery_status == "sent" and stored.sent_at is not None

    # The customer answers our reply; their client keeps only In-Reply-To.
    answer = make_mail(
        subject="Re: your mail", headers={"In-Reply-To": reply["Message-ID"]}, body="Got it!"
    )
    assert post_mail(answer).get_json()["ticket_id"] == ticket_id
    # And answering to the Reply-To address alone also threads.
    to_token = make_mail(subject="One more thing", to=reply["Reply-To"])
    assert post_mail(to_token).get_json()["ticket_id"] == ticket_id


def test_smtp_failure_is_retried_with_back_off_then_sent(
    app, post_mail, client, create_user, auth_header, smtp_server, run_jobs
):
    ticket_id = post_mail(make_mail(headers={"Auto-Submitted": "no"})).get_json()["ticket_id"]
    port = app.config["SMTP_PORT"]
    app.config["SMTP_PORT"] = 1  # nothing listens there
    run_jobs()
    db.session.expire_all()
    ack = db.session.scalar(sa.select(TicketMessage).where(TicketMessage.kind == "auto_reply"))
    assert ack.delivery_status == "retrying" and ack.send_attempts == 1
    assert "Connection" in ack.delivery_error or "Errno" in ack.delivery_error
    due = routing.get_store().redis.zscore("{cc}:timers", f"mail:{ack.id}")
    assert due is not None

    app.config["SMTP_PORT"] = port
    routing.run_due_timers(now=due + 1)
    run_jobs()
    db.session.expire_all()
    ack = db.session.get(TicketMessage, ack.id)
    assert ack.delivery_status == "sent" and ack.send_attempts == 2 and ack.delivery_error is None
    assert len(smtp_server.messages) == 1
    assert db.session.get(Ticket, ticket_id) is not None
    assert_invariants(app)


def test_permanent_refusal_fails_at_once_and_shows_on_the_ticket(
    app, post_mail, client, create_user, auth_header, smtp_server, run_jobs
):
    ticket_id = post_mail(make_mail(sender="refuse@example.org")).get_json()["ticket_id"]
    run_jobs()
    agent = create_user("alice")
    detail = client.get(f"/api/v1/tickets/{ticket_id}", headers=auth_header(agent)).get_json()
    ack = next(m for m in detail["messages"] if m["kind"] == "auto_reply")
    assert ack["delivery_status"] == "failed"
    assert "550" in ack["delivery_error"]
    assert smtp_server.messages == []


def test_without_smtp_mail_stays_queued_and_a_rebuild_requeues_it(app, post_mail, run_jobs):
    post_mail(make_mail())
    run_jobs()
    db.session.expire_all()
    ack = db.session.scalar(sa.select(TicketMessage).where(TicketMessage.kind == "auto_reply"))
    assert ack.delivery_status == "queued"
    routing.rebuild_state(force=True)
    assert routing.get_store().redis.zscore("{cc}:timers", f"mail:{ack.id}") is not None


def test_reply_input_is_validated(app, client, create_user, auth_header):
    agent = create_user("alice")
    ticket = tickets.create_ticket("Phone only", "voice")
    db.session.commit()
    url = f"/api/v1/tickets/{ticket.id}/replies"
    assert client.post(url, json={"body": ""}, headers=auth_header(agent)).status_code == 422
    assert client.post(url, json={}, headers=auth_header(agent)).status_code == 422
    assert client.post(url, json={"body": "x"}).status_code == 401
    no_address = client.post(url, json={"body": "x"}, headers=auth_header(agent))
    assert no_address.status_code == 409
    missing = client.post(
        f"/api/v1/tickets/{ticket.id + 1}/replies", json={"body": "x"}, headers=auth_header(agent)
    )
    assert missing.status_code == 404
    assert db.session.scalar(sa.select(sa.func.count()).select_from(TicketMessage)) == 0
