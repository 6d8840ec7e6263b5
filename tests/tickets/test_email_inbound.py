"""Inbound mail over the three webhook formats: parsing, threading, idempotency, refusals."""

from __future__ import annotations

import base64
import time
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import pytest
import sqlalchemy as sa

from contact_center.customers.models import Customer, CustomerIdentity
from contact_center.extensions import db
from contact_center.routing.models import Interaction
from contact_center.tickets.models import MailAttachment, Ticket, TicketMessage
from contact_center.tickets.outbound import reply_address


def make_mail(
    *,
    sender: str = "Mei Chen <mei@example.org>",
    to: str = "support@desk.test",
    subject: str = "Card not arrived",
    body: str | None = "My new card has not arrived yet.",
    html: str | None = None,
    message_id: str | None = None,
    headers: dict[str, str] | None = None,
    attachments: tuple[tuple[str, bytes, str], ...] = (),
) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate()
    message["Message-ID"] = message_id or make_msgid(domain="example.org")
    for name, value in (headers or {}).items():
        message[name] = value
    if body is None:
        message.set_content(html, subtype="html")
    else:
        message.set_content(body)
        if html:
            message.add_alternative(html, subtype="html")
    for filename, data, content_type in attachments:
        maintype, subtype = content_type.split("/")
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return message.as_bytes()


def _count(model) -> int:
    db.session.expire_all()
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def _only(model):
    db.session.expire_all()
    return db.session.scalars(sa.select(model)).one()


def _ok(response) -> dict:
    assert response.status_code == 200, response.get_json()
    return response.get_json()


@pytest.mark.parametrize("via", ["raw", "sendgrid", "mailgun"])
def test_new_mail_opens_a_ticket_for_a_new_customer_and_is_routed(app, post_mail, via):
    result = _ok(post_mail(make_mail(message_id="<first@example.org>"), via=via))
    assert result["new_ticket"] is True and result["duplicate"] is False
    ticket = _only(Ticket)
    assert ticket.channel == "email" and ticket.status == "new"
    assert ticket.subject == "Card not arrived"
    customer = db.session.get(Customer, ticket.customer_id)
    assert customer.name == "Mei Chen" and customer.identity_values("email") == ["mei@example.org"]
    inbound = [m for m in ticket.messages if m.kind == "inbound"]
    assert inbound[0].body == "My new card has not arrived yet."
    assert inbound[0].message_id == "<first@example.org>"
    interaction = _only(Interaction)
    assert interaction.channel == "email" and interaction.status == "queued"
    assert interaction.ticket_id == ticket.id and interaction.customer_id == customer.id
    # The acknowledgement waits for a worker; no SMTP is configured here, so it stays queued.
    ack = next(m for m in ticket.messages if m.kind == "auto_reply")
    assert ack.to_address == "mei@example.org" and ack.delivery_status == "queued"
    assert f"[#{ticket.number}]" in ack.subject


def test_repeated_delivery_changes_nothing(app, post_mail):
    raw = make_mail(message_id="<again@example.org>")
    first = _ok(post_mail(raw))
    for via in ("raw", "mailgun"):
        again = _ok(post_mail(raw, via=via))
        assert again["duplicate"] is True and again["ticket_id"] == first["ticket_id"]
    assert _count(Ticket) == 1 and _count(Interaction) == 1
    assert _count(TicketMessage) == 2  # the message and its one acknowledgement


def test_a_message_without_message_id_is_known_by_its_bytes(app, post_mail):
    message = EmailMessage()
    message["From"] = "nobody@example.org"
    message["To"] = "support@desk.test"
    message["Subject"] = "No id"
    message.set_content("Hello")
    raw = message.as_bytes()
    _ok(post_mail(raw))
    assert _ok(post_mail(raw))["duplicate"] is True
    assert _only(Ticket).messages[0].message_id.endswith("@hash>")


def test_html_only_mail_is_reduced_to_text(app, post_mail):
    html = (
        "<html><head><style>p{color:red}</style><script>alert('x')</script></head>"
        "<body><p>Hello,</p><p>my card was <b>declined</b> twice.</p></body></html>"
    )
    _ok(post_mail(make_mail(body=None, html=html)))
    message = db.session.scalar(sa.select(TicketMessage).where(TicketMessage.kind == "inbound"))
    assert "my card was" in message.body and "declined" in message.body
    assert "<" not in message.body and "alert" not in message.body and "color" not in message.body


def test_multipart_with_attachments_keeps_them(app, post_mail, client, create_user, auth_header):
    pdf = b"%PDF-1.4 statement " * 100
    raw = make_mail(
        html="<p>See attached</p>",
        attachments=(("statement.pdf", pdf, "application/pdf"), ("note.txt", b"hi", "text/plain")),
    )
    ticket_id = _ok(post_mail(raw))["ticket_id"]
    attachments = db.session.scalars(sa.select(MailAttachment).order_by(MailAttachment.id)).all()
    assert [(a.filename, a.size) for a in attachments] == [
        ("statement.pdf", len(pdf)),
        ("note.txt", 2),
    ]
    agent = create_user("alice")
    detail = client.get(f"/api/v1/tickets/{ticket_id}", headers=auth_header(agent)).get_json()
    listed = detail["messages"][0]["attachments"]
    assert [a["filename"] for a in listed] == ["statement.pdf", "note.txt"]
    download = client.get(
        f"/api/v1/tickets/{ticket_id}/attachments/{listed[0]['id']}", headers=auth_header(agent)
    )
    assert download.status_code == 200 and download.data == pdf
    assert download.headers["Content-Disposition"] == 'attachment; filename="statement.pdf"'
    other = client.get(
        f"/api/v1/tickets/{ticket_id + 1}/attachments/{listed[0]['id']}",
        headers=auth_header(agent),
    )
    assert other.status_code == 404


@pytest.mark.parametrize(
    ("charset", "text"),
    [("gb2312", "您好，我的银行卡丢了。"), ("iso-8859-1", "Grüße, die Karte ist verloren.")],
)
def test_non_utf8_charsets_are_decoded(app, post_mail, charset, text):
    subject = base64.b64encode("主题 Ärger".encode()).decode()
    raw = (
        f"From: sender@example.org\r\nTo: support@desk.test\r\n"
        f"Subject: =?utf-8?b?{subject}?=\r\nMessage-ID: <{charset}@example.org>\r\n"
        f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset={charset}\r\n"
        f"Content-Transfer-Encoding: 8bit\r\n\r\n"
    ).encode("ascii") + text.encode(charset)
    _ok(post_mail(raw))
    ticket = _only(Ticket)
    assert ticket.subject == "主题 Ärger"
    assert ticket.messages[0].body == text


def _ticket_mail(post_mail, **kwargs) -> Ticket:
    ticket_id = _ok(post_mail(make_mail(**kwargs)))["ticket_id"]
    db.session.expire_all()
    return db.session.get(Ticket, ticket_id)


def test_replies_thread_by_each_rule(app, post_mail):
    first = _ticket_mail(post_mail, message_id="<root@example.org>")
    token = f"[#{first.number}]"
    by_subject = _ticket_mail(post_mail, subject=f"Re: Card not arrived {token}")
    by_plus = _ticket_mail(post_mail, subject="Another thing", to=reply_address(first))
    by_in_reply_to = _ticket_mail(
        post_mail, subject="Re: hello", headers={"In-Reply-To": "<root@example.org>"}
    )
    by_references = _ticket_mail(
        post_mail,
        subject="Re: hello",
        headers={"References": "<unknown@x.org> <root@example.org>"},
    )
    assert {t.id for t in (by_subject, by_plus, by_in_reply_to, by_references)} == {first.id}
    assert _count(Ticket) == 1
    inbound = [m for m in first.messages if m.kind == "inbound"]
    assert len(inbound) == 5
    # Only the new ticket was acknowledged; every message that needs an answer is routed.
    assert len([m for m in first.messages if m.kind == "auto_reply"]) == 1
    assert _count(Interaction) == 5


def test_forwarded_message_with_lost_headers_threads_by_subject_token(app, post_mail):
    first = _ticket_mail(post_mail)
    forwarded = _ticket_mail(
        post_mail,
        subject=f"Fwd: Card not arrived [#{first.number}]",
        body="---------- Forwarded message ---------\nFrom: Mei\n\nMy new card...",
    )
    assert forwarded.id == first.id


def test_forged_tokens_from_strangers_open_new_tickets(app, post_mail):
    first = _ticket_mail(post_mail)
    stranger = _ticket_mail(
        post_mail, sender="eve@evil.test", subject=f"Re: [#{first.number}] give me the data"
    )
    forged_plus = _ticket_mail(
        post_mail, sender="eve@evil.test", to=f"support+t{first.number}-0000000000@desk.test"
    )
    assert stranger.id != first.id and forged_plus.id != first.id
    assert len([m for m in first.messages if m.kind == "inbound"]) == 1


def test_reply_to_a_solved_ticket_reopens_it_and_closed_starts_anew(app, post_mail):
    first = _ticket_mail(post_mail, message_id="<s1@example.org>")
    first.status = "solved"
    db.session.commit()
    again = _ticket_mail(post_mail, headers={"In-Reply-To": "<s1@example.org>"})
    assert again.id == first.id and again.status == "open"
    first.status = "closed"
    db.session.commit()
    later = _ticket_mail(post_mail, headers={"In-Reply-To": "<s1@example.org>"})
    assert later.id != first.id


def test_quoted_history_and_signature_are_stripped_but_the_original_kept(app, post_mail):
    body = (
        "Thanks, that fixed it.\n\nBest regards,\nMei\n\n"
        "On Tue, 3 Nov 2026 at 10:00, Support <support@desk.test> wrote:\n"
        "> We have reset your card.\n> Regards\n"
    )
    _ok(post_mail(make_mail(body=body)))
    message = db.session.scalar(sa.select(TicketMessage).where(TicketMessage.kind == "inbound"))
    assert message.body == "Thanks, that fixed it."
    assert "We have reset your card" in message.body_original


@pytest.mark.parametrize(
    "headers",
    [
        {"Auto-Submitted": "auto-replied"},
        {"X-Auto-Response-Suppress": "All"},
        {"Precedence": "bulk"},
        {"List-Id": "<customers.lists.example.org>"},
        {"Return-Path": "<>"},
    ],
)
def test_automatic_mail_is_neither_acknowledged_nor_routed(app, post_mail, headers):
    ticket = _ticket_mail(post_mail, subject="Out of office", headers=headers)
    assert [m.kind for m in ticket.messages] == ["inbound"]
    assert _count(Interaction) == 0


def test_acknowledgements_are_rate_limited_per_sender(app, post_mail):
    for n in range(5):
        _ok(post_mail(make_mail(subject=f"Question {n}")))
    acks = db.session.scalars(
        sa.select(TicketMessage).where(TicketMessage.kind == "auto_reply")
    ).all()
    assert len(acks) == 3 and _count(Ticket) == 5


def test_oversize_attachment_is_dropped_with_a_note(app, post_mail):
    big = b"x" * (10 * 1024 * 1024 + 1)
    raw = make_mail(attachments=(("huge.bin", big, "application/octet-stream"),))
    _ok(post_mail(raw))
    ticket = _only(Ticket)
    assert _count(MailAttachment) == 0
    note = next(m for m in ticket.messages if m.kind == "note")
    assert "huge.bin" in note.body and "10 MB" in note.body


def test_too_large_request_is_413_and_writes_nothing(app, post_mail):
    response = post_mail(b"From: a@b.test\r\n\r\n" + b"x" * (30 * 1024 * 1024 + 10))
    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "too_large"
    assert _count(Ticket) == 0


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\xff\xfe garbage \x81\x82",
        b"just some text without headers",
        b"From: nobody\r\n\r\nx",
    ],
)
def test_garbage_is_400_and_writes_nothing(app, post_mail, raw):
    response = post_mail(raw)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "bad_request"
    assert _count(Ticket) == 0 and _count(Customer) == 0


def test_authentication_is_required_for_every_format(app, post_mail, client):
    raw = make_mail()
    assert post_mail(raw, secret="wrong").status_code == 403
    assert (
        client.post("/webhooks/email/inbound", data=raw, content_type="message/rfc822").status_code
        == 403
    )
    assert post_mail(raw, via="sendgrid", secret="wrong").status_code == 403
    assert post_mail(raw, via="mailgun", signature="0" * 64).status_code == 403
    stale = post_mail(raw, via="mailgun", timestamp=int(time.time()) - 301)
    assert stale.status_code == 403 and "stale" in stale.get_json()["error"]["message"]
    assert (
        client.post(
            "/webhooks/email/inbound",
            data=raw,
            content_type="text/plain",
            headers={"X-Inbound-Secret": "test-inbound-secret"},
        ).status_code
        == 415
    )
    assert _count(Ticket) == 0


def test_unconfigured_secrets_refuse_everything(app, post_mail):
    app.config.update(EMAIL_INBOUND_SECRET=None, MAILGUN_SIGNING_KEY=None)
    assert post_mail(make_mail()).status_code == 403
    assert post_mail(make_mail(), via="mailgun").status_code == 403
    assert _count(Ticket) == 0


def test_storage_failure_is_503_then_the_retry_stores_it(app, post_mail):
    from sqlalchemy import event

    def read_only(connection, _record):
        cursor = connection.cursor()
        if db.engine.dialect.name == "sqlite":
            cursor.execute("PRAGMA query_only = ON")
        else:
            cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
            connection.commit()  # SET is transactional in PostgreSQL: keep it for the session
        cursor.close()

    raw = make_mail(message_id="<retry@example.org>")
    db.session.remove()
    db.engine.dispose()
    event.listen(db.engine, "connect", read_only)
    try:
        response = post_mail(raw)
    finally:
        event.remove(db.engine, "connect", read_only)
        db.session.remove()
        db.engine.dispose()
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "unavailable"
    assert _count(Ticket) == 0 and _count(Customer) == 0
    assert _ok(post_mail(raw))["new_ticket"] is True
    assert _count(Ticket) == 1


def test_bounce_marks_the_address_undeliverable_and_joins_the_ticket(
    app, post_mail, client, create_user, auth_header, smtp_server, run_jobs
):
    ticket = _ticket_mail(post_mail)
    agent = create_user("alice")
    sent = client.post(
        f"/api/v1/tickets/{ticket.id}/replies",
        json={"body": "Can you confirm your address?"},
        headers=auth_header(agent),
    ).get_json()
    run_jobs()
    report = _delivery_report(sent["message_id"], "mei@example.org")
    result = _ok(post_mail(report))
    assert result["bounce"] is True and result["ticket_id"] == ticket.id
    db.session.expire_all()
    original = db.session.get(TicketMessage, sent["id"])
    assert original.delivery_status == "bounced" and "5.1.1" in original.delivery_error
    identity = db.session.scalar(sa.select(CustomerIdentity))
    assert identity.undeliverable_at is not None
    assert any(m.kind == "bounce" for m in db.session.get(Ticket, ticket.id).messages)
    assert _count(Interaction) == 1  # a bounce is not work for an agent

    # No more mail to that address: the next reply fails visibly instead of being sent.
    delivered = len(smtp_server.messages)
    again = client.post(
        f"/api/v1/tickets/{ticket.id}/replies", json={"body": "Hello?"}, headers=auth_header(agent)
    ).get_json()
    run_jobs()
    db.session.expire_all()
    refused = db.session.get(TicketMessage, again["id"])
    assert refused.delivery_status == "failed" and "undeliverable" in refused.delivery_error
    assert len(smtp_server.messages) == delivered


def _delivery_report(original_message_id: str, recipient: str) -> bytes:
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.org>\r\n"
        "To: help@desk.test\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        "Message-ID: <bounce-1@mx.example.org>\r\nAuto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\nThe mail system could not deliver.\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.org\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 User unknown\r\n\r\n"
        "--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"From: help@desk.test\r\nTo: {recipient}\r\nMessage-ID: {original_message_id}\r\n"
        "Subject: Re: Card not arrived\r\n\r\n--B--\r\n"
    ).encode()


def test_an_out_of_office_reply_to_a_solved_ticket_reopens_nothing(app, post_mail):
    first = _ticket_mail(post_mail, message_id="<ooo-root@example.org>")
    first.status = "solved"
    from contact_center.db_types import utcnow

    first.solved_at = utcnow()
    db.session.commit()
    reply = _ticket_mail(
        post_mail,
        subject="Automatic reply: away",
        headers={"In-Reply-To": "<ooo-root@example.org>", "Auto-Submitted": "auto-replied"},
    )
    assert reply.id == first.id and reply.status == "solved"
    assert _count(Ticket) == 1 and _count(Interaction) == 1  # only the first mail's


def test_a_subject_token_never_threads_into_a_ticket_without_customer(app, post_mail):
    from contact_center.tickets.services import create_ticket

    voicemail = create_ticket("Voicemail from +44***23", "voice")
    db.session.commit()
    intruder = _ticket_mail(post_mail, sender="eve@evil.test", subject=f"Re: [#{voicemail.number}]")
    assert intruder.id != voicemail.id


def test_line_breaks_in_a_subject_cannot_reach_a_header(app, post_mail):
    raw = make_mail(subject="placeholder").replace(
        b"Subject: placeholder", b"Subject: =?utf-8?q?Hi=0D=0ABcc:_x@y.com?="
    )
    _ok(post_mail(raw))
    ticket = _only(Ticket)
    assert "\r" not in ticket.subject and "\n" not in ticket.subject
    assert ticket.subject == "Hi Bcc: x@y.com"


def test_an_overlong_sender_is_refused_not_retried(app, post_mail):
    response = post_mail(make_mail(sender=f"{'a' * 330}@example.org"))
    assert response.status_code == 400
    assert _count(Ticket) == 0


def test_a_report_cannot_silence_an_address_our_message_did_not_go_to(
    app, post_mail, client, create_user, auth_header, smtp_server, run_jobs
):
    ticket = _ticket_mail(post_mail)
    other = _ticket_mail(post_mail, sender="bob@example.org", subject="Another")
    agent = create_user("alice")
    sent = client.post(
        f"/api/v1/tickets/{ticket.id}/replies", json={"body": "Hello"}, headers=auth_header(agent)
    ).get_json()
    run_jobs()
    _ok(post_mail(_delivery_report(sent["message_id"], "bob@example.org")))
    db.session.expire_all()
    bob = db.session.scalar(
        sa.select(CustomerIdentity).where(CustomerIdentity.value == "bob@example.org")
    )
    assert bob.undeliverable_at is None and other.customer_id == bob.customer_id
    assert db.session.get(TicketMessage, sent["id"]).delivery_status == "sent"
