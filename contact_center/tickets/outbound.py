"""Mail out: agents' replies and auto-acknowledgements, threaded, sent over SMTP by RQ jobs.

Every outbound message carries our own Message-ID, In-Reply-To and References of the
thread, the ticket's subject token and a signed plus-address reply token, so the
customer's reply finds its ticket however their client threads. Sending is an RQ job;
a failure is retried with back-off through the timer set and shows on the ticket.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import smtplib
import uuid
from datetime import timedelta
from email.message import EmailMessage
from email.utils import format_datetime, formataddr

import redis
import sqlalchemy as sa
from flask import current_app

from contact_center import audit, jobs
from contact_center.customers.models import CustomerIdentity
from contact_center.customers.services import mask
from contact_center.db_types import utcnow
from contact_center.errors import Conflict
from contact_center.extensions import db
from contact_center.tickets.mail import one_line
from contact_center.tickets.models import Ticket, TicketMessage
from contact_center.tickets.services import add_message

log = logging.getLogger(__name__)
AUTO_ACK_PER_HOUR = 3  # per sender: a mail loop or a flood gets a few answers, not thousands
MAX_SEND_ATTEMPTS = 5
RETRY_BACKOFF_S = (30, 120, 600, 1800)
SMTP_TIMEOUT_S = 30
REPLY_TOKEN = re.compile(r"\+t(\d{4,12})-([0-9a-f]{10})@", re.IGNORECASE)


def _domain(address: str) -> str:
    return address.rpartition("@")[2] or "localhost"


def new_message_id() -> str:
    """A globally unique Message-ID in our mail domain."""
    return f"<{uuid.uuid4().hex}@{_domain(current_app.config['MAIL_FROM'])}>"


def _token_signature(number: str) -> str:
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, f"reply:{number}".encode(), hashlib.sha256).hexdigest()[:10]


def reply_address(ticket: Ticket) -> str:
    """support+t<number>-<signature>@domain: a reply to it threads even without headers."""
    local, _, domain = current_app.config["SUPPORT_ADDRESS"].partition("@")
    return f"{local}+t{ticket.number}-{_token_signature(ticket.number)}@{domain}"


def ticket_number_from_addresses(addresses: list[str]) -> str | None:
    """The ticket number of a valid reply token among the recipients (forged ones ignored)."""
    for address in addresses:
        match = REPLY_TOKEN.search(address)
        if match and hmac.compare_digest(match.group(2).lower(), _token_signature(match.group(1))):
            return match.group(1)
    return None


def subject_with_token(ticket: Ticket, subject: str | None = None) -> str:
    """The subject with the ticket's token, e.g. "Re: Lost card [#10042]"."""
    subject = subject or ticket.subject
    token = f"[#{ticket.number}]"
    return subject if token in subject else f"{subject} {token}"


def deliverable(address: str) -> bool:
    """False when a permanent bounce marked the address undeliverable."""
    return not db.session.scalar(
        sa.select(sa.func.count())
        .select_from(CustomerIdentity)
        .where(
            CustomerIdentity.kind == "email",
            CustomerIdentity.value == address,
            CustomerIdentity.undeliverable_at.is_not(None),
        )
    )


def customer_address(ticket: Ticket) -> str | None:
    """Where mail about the ticket goes: the customer's latest sender address, else theirs."""
    inbound = [m.from_address for m in ticket.messages if m.kind == "inbound" and m.from_address]
    if inbound:
        return inbound[-1]
    if ticket.customer is not None:
        emails = ticket.customer.identity_values("email")
        return emails[0] if emails else None
    return None


def _thread_ids(ticket: Ticket) -> tuple[str | None, str | None]:
    ids = [m.message_id for m in ticket.messages if m.message_id]
    if not ids:
        return None, None
    return ids[-1], " ".join(ids[-20:])  # References: the thread, bounded


def stage_mail(
    ticket: Ticket,
    kind: str,
    body: str,
    *,
    author_id: int | None = None,
    subject: str | None = None,
    to: str | None = None,
) -> TicketMessage:
    """Stage an outbound mail on a ticket (queued; `queue_send` after commit sends it)."""
    to = to or customer_address(ticket)
    if to is None:
        raise Conflict("The ticket has no customer address to write to.")
    in_reply_to, references = _thread_ids(ticket)
    message = add_message(ticket, kind, body, author_id=author_id)
    message.message_id = new_message_id()
    message.in_reply_to = in_reply_to
    message.references = references
    message.subject = one_line(subject_with_token(ticket, subject))
    message.from_address = current_app.config["MAIL_FROM"]
    message.to_address = to
    message.delivery_status = "queued"
    return message


def reply(ticket: Ticket, author_id: int, body: str) -> TicketMessage:
    """An agent's public reply: stored, audited, then sent by a job."""
    subject = ticket.subject
    subject = subject if subject.lower().startswith("re:") else f"Re: {subject}"
    message = stage_mail(ticket, "outbound", body, author_id=author_id, subject=subject)
    db.session.flush()
    audit.record(
        "ticket.replied",
        "ticket",
        ticket.id,
        actor_id=author_id,
        after={"message_id": message.id, "to": mask(message.to_address)},
    )
    db.session.commit()
    queue_send(message)
    return message


def stage_auto_ack(ticket: Ticket, inbound: TicketMessage) -> TicketMessage | None:
    """The acknowledgement of a new ticket, unless the sender had enough of them lately."""
    sender = inbound.from_address
    if not sender or not deliverable(sender):
        return None
    recent = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(TicketMessage)
        .where(
            TicketMessage.kind == "auto_reply",
            TicketMessage.to_address == sender,
            TicketMessage.created_at >= utcnow() - timedelta(hours=1),
        )
    )
    if recent >= AUTO_ACK_PER_HOUR:
        log.info("auto-acknowledgement to %s skipped: rate limit", mask(sender))
        return None
    body = (
        f"Thank you for your message. We have opened ticket {ticket.number} and will reply "
        f"as soon as we can.\n\nTo add anything, reply to this mail and keep [#{ticket.number}] "
        "in the subject."
    )
    return stage_mail(
        ticket, "auto_reply", body, subject=f"We received your message: {ticket.subject}", to=sender
    )


def queue_send(message: TicketMessage) -> None:
    """Hand a committed outbound message to the workers.

    If Redis is down the message stays queued in the database, and a routing rebuild
    queues it again: the caller's committed work must not turn into an error (and a retry).
    """
    try:
        jobs.enqueue(send_message, message.id, job_id=f"mail-{message.id}-{message.send_attempts}")
    except redis.RedisError:
        log.exception("mail %s stays queued until `flask routing rebuild`", message.id)


def build_email(message: TicketMessage) -> EmailMessage:
    """The RFC 5322 message for an outbound TicketMessage."""
    config = current_app.config
    mail = EmailMessage()
    mail["From"] = formataddr(("Customer Service", config["MAIL_FROM"]))
    mail["To"] = message.to_address
    mail["Reply-To"] = reply_address(message.ticket)
    mail["Subject"] = message.subject or subject_with_token(message.ticket)
    mail["Message-ID"] = message.message_id
    mail["Date"] = format_datetime(message.created_at)
    if message.in_reply_to:
        mail["In-Reply-To"] = message.in_reply_to
    if message.references:
        mail["References"] = message.references
    if message.kind == "auto_reply":
        mail["Auto-Submitted"] = "auto-replied"  # RFC 3834: robots must not answer it
        mail["X-Auto-Response-Suppress"] = "All"
    mail.set_content(message.body)
    return mail


def smtp_send(mail: EmailMessage) -> None:
    """Hand one message to the configured SMTP server."""
    config = current_app.config
    with smtplib.SMTP(config["SMTP_HOST"], config["SMTP_PORT"], timeout=SMTP_TIMEOUT_S) as smtp:
        if config["SMTP_STARTTLS"]:
            smtp.starttls()
        if config["SMTP_USERNAME"]:
            smtp.login(config["SMTP_USERNAME"], config["SMTP_PASSWORD"] or "")
        smtp.send_message(mail)


def send_message(message_id: int) -> str:
    """RQ job: send one outbound message; on failure retry with back-off, then give up visibly."""
    message = db.session.scalar(
        sa.select(TicketMessage).where(TicketMessage.id == message_id).with_for_update()
    )
    if message is None or message.delivery_status not in ("queued", "retrying"):
        db.session.rollback()
        return "nothing to send"
    if not current_app.config.get("SMTP_HOST"):
        db.session.rollback()
        return "queued: SMTP_HOST is not set"
    if not deliverable(message.to_address):
        message.delivery_status = "failed"
        message.delivery_error = "The address is marked undeliverable after a bounce."
        db.session.commit()
        return "failed"
    message.send_attempts += 1
    try:
        mail = build_email(message)
    except ValueError as exc:  # a header Python refuses to write: no retry can fix it
        message.delivery_status = "failed"
        message.delivery_error = f"The message cannot be written: {exc}"[:2000]
        db.session.commit()
        return "failed"
    # A lease: should this worker die mid-send, the timer queues the send again. The row
    # lock taken above makes a second sender wait for this one, so a live send is never
    # doubled; a finished one leaves the timer nothing to do.
    from contact_center.routing.services import get_store

    lease_s = int(current_app.config["MAIL_SEND_LEASE_S"])
    get_store().add_timer(f"mail:{message.id}", utcnow().timestamp() + lease_s)
    try:
        smtp_send(mail)
    except (smtplib.SMTPException, OSError) as exc:
        return _send_failed(message, exc)
    message.delivery_status = "sent"
    message.delivery_error = None
    message.sent_at = utcnow()
    db.session.commit()
    log.info("mail %s sent to %s", message.id, mask(message.to_address))
    return "sent"


def _send_failed(message: TicketMessage, exc: Exception) -> str:
    permanent = isinstance(exc, smtplib.SMTPRecipientsRefused) or (
        isinstance(exc, smtplib.SMTPResponseException) and 500 <= exc.smtp_code < 600
    )
    message.delivery_error = f"{type(exc).__name__}: {exc}"[:2000]
    if permanent or message.send_attempts >= MAX_SEND_ATTEMPTS:
        message.delivery_status = "failed"
        db.session.commit()
        log.warning("mail %s failed for good: %s", message.id, type(exc).__name__)
        return "failed"
    message.delivery_status = "retrying"
    db.session.commit()
    delay = RETRY_BACKOFF_S[min(message.send_attempts, len(RETRY_BACKOFF_S)) - 1]
    from contact_center.routing.services import get_store

    get_store().add_timer(f"mail:{message.id}", utcnow().timestamp() + delay)
    log.warning("mail %s will be retried in %s s: %s", message.id, delay, type(exc).__name__)
    return "retrying"


def retry_send(message_id: int) -> None:
    """Timer: a retry is due (or a rebuild found the mail unsent): queue the send job again."""
    message = db.session.get(TicketMessage, message_id)
    if message is not None and message.delivery_status in ("queued", "retrying"):
        queue_send(message)


def unsent_message_ids() -> list[int]:
    """Outbound mail still to send: a Redis rebuild queues it again."""
    return list(
        db.session.scalars(
            sa.select(TicketMessage.id).where(
                TicketMessage.delivery_status.in_(("queued", "retrying"))
            )
        )
    )
