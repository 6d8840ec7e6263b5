"""Mail in: every message lands on the right ticket exactly once and, if it needs an answer,
is routed to an agent.

Threading, in order: the ticket token in the subject ([#12345], from the ticket's own
customer), a signed plus-address reply token, In-Reply-To/References against stored
Message-IDs; otherwise a new ticket. A repeated delivery (same Message-ID, or the same
bytes when there is none) changes nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import redis
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from contact_center.customers.models import Customer, CustomerIdentity
from contact_center.customers.services import find_by_identity, mask, normalise_email
from contact_center.db_types import utcnow
from contact_center.extensions import db
from contact_center.routing import services as routing
from contact_center.routing.models import Interaction, Queue
from contact_center.tickets import mail, outbound
from contact_center.tickets.models import MailAttachment, Ticket, TicketMessage
from contact_center.tickets.services import (
    accepts_customer_reply,
    add_message,
    create_ticket,
    link,
    reopen_for_customer,
    ticket_by_number,
)

log = logging.getLogger(__name__)


@dataclass
class Ingested:
    ticket_id: int | None
    message_id: int | None
    duplicate: bool = False
    new_ticket: bool = False
    bounce: bool = False


def _existing(message_id: str) -> TicketMessage | None:
    return db.session.scalar(sa.select(TicketMessage).where(TicketMessage.message_id == message_id))


def email_queue() -> Queue:
    """The queue for mail: the default queue if it takes email, else the first that does."""
    queues = db.session.scalars(sa.select(Queue).order_by(Queue.is_default.desc(), Queue.id))
    for queue in queues:
        if "email" in (queue.channels or []):
            return queue
    return routing.default_queue()


def _customer(parsed: mail.ParsedMail) -> Customer:
    """The sender's customer record; an unknown sender becomes a new customer."""
    address = normalise_email(parsed.sender) or parsed.sender
    customer = find_by_identity("email", address)
    if customer is None:
        customer = Customer(name=(parsed.sender_name or address.split("@")[0])[:200])
        customer.identities = [CustomerIdentity(kind="email", value=address)]
        db.session.add(customer)
        db.session.flush()
    return customer


def _thread(parsed: mail.ParsedMail, customer: Customer) -> Ticket | None:
    """The ticket this message is about, by the four rules in order; None for a new one."""
    number = mail.subject_ticket_number(parsed.subject)
    if number is not None:
        ticket = ticket_by_number(number)
        # A subject token is easy to type: it threads only the ticket's own customer's mail.
        if ticket is not None and ticket.customer_id == customer.id:
            return _survivor(ticket)
    number = outbound.ticket_number_from_addresses(parsed.recipients)
    if number is not None and (ticket := ticket_by_number(number)) is not None:
        return _survivor(ticket)
    for message_id in [*parsed.in_reply_to, *reversed(parsed.references)]:
        earlier = _existing(message_id)
        if earlier is not None:
            return _survivor(earlier.ticket)
    return None


def _survivor(ticket: Ticket) -> Ticket:
    """Follow merges to the ticket that absorbed this one."""
    seen = {ticket.id}
    while ticket.merged_into_id is not None and ticket.merged_into_id not in seen:
        ticket = db.session.get(Ticket, ticket.merged_into_id)
        seen.add(ticket.id)
    return ticket


def _store_attachments(message: TicketMessage, parsed: mail.ParsedMail) -> None:
    for attachment in parsed.attachments:
        message.attachments.append(
            MailAttachment(
                filename=attachment.filename,
                content_type=attachment.content_type,
                size=attachment.size,
                data=attachment.data,
            )
        )
    if parsed.oversize:
        limit_mb = mail.MAX_ATTACHMENT_BYTES // (1024 * 1024)
        names = ", ".join(f"{name} ({size // 1024} KB)" for name, size in parsed.oversize)
        add_message(
            message.ticket,
            "note",
            f"Attachments over the {limit_mb} MB limit were not kept: {names}.",
        )


def ingest(raw: bytes) -> Ingested:
    """Take one raw message (committed before returning); raises MalformedMail for garbage."""
    parsed = mail.parse(raw)
    for attempt in (1, 2):
        if (earlier := _existing(parsed.message_id)) is not None:
            return Ingested(earlier.ticket_id, earlier.id, duplicate=True)
        try:
            return _ingest(raw, parsed)
        except IntegrityError:
            # A concurrent delivery of the same message (or the same new sender) won.
            db.session.rollback()
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _ingest(raw: bytes, parsed: mail.ParsedMail) -> Ingested:
    if parsed.report is not None:
        return _ingest_report(parsed)
    # Resolved before anything is staged: creating the first queue commits on its own.
    queue = email_queue()
    customer = _customer(parsed)
    earlier = _thread(parsed, customer)
    if parsed.automatic and earlier is not None:
        ticket = earlier  # an out-of-office reply is kept, but reopens and starts nothing
    elif earlier is not None and accepts_customer_reply(earlier):
        ticket = earlier
        reopen_for_customer(ticket)
    else:
        ticket = None
    new_ticket = ticket is None
    if ticket is None:
        ticket = create_ticket(
            parsed.subject or "(no subject)", "email", customer_id=customer.id, queue_id=queue.id
        )
        if earlier is not None:  # about a closed ticket, or one solved too long ago
            link(ticket, earlier, None, kind="follow_up")
    message = add_message(ticket, "inbound", parsed.reply_text)
    message.message_id = parsed.message_id
    message.in_reply_to = parsed.in_reply_to[0] if parsed.in_reply_to else None
    message.references = " ".join(parsed.references) or None
    message.subject = parsed.subject
    message.from_address = normalise_email(parsed.sender) or parsed.sender
    message.to_address = ", ".join(parsed.recipients)[:320] or None
    message.body_original = parsed.text
    _store_attachments(message, parsed)
    db.session.flush()
    interaction = ack = None
    if not parsed.automatic:
        # A message that needs an answer is work for an agent.
        interaction = routing.stage_interaction(
            channel="email",
            queue=(db.session.get(Queue, ticket.queue_id) if ticket.queue_id else None) or queue,
            external_id=parsed.message_id,
            from_address=message.from_address,
            customer_id=customer.id,
            customer_tier=customer.tier,
            ticket_id=ticket.id,
        )
        if new_ticket:
            ack = outbound.stage_auto_ack(ticket, message)
    db.session.commit()
    log.info(
        "mail from %s on ticket %s%s",
        mask(message.from_address),
        ticket.number,
        " (new)" if new_ticket else "",
    )
    route_and_send(interaction, ack)
    return Ingested(ticket.id, message.id, new_ticket=new_ticket)


def route_and_send(interaction: Interaction | None, ack: TicketMessage | None) -> None:
    """Routing and sending once the message is safe; a Redis failure is recovered by a rebuild."""
    try:
        if interaction is not None:
            routing.enqueue(interaction)
        if ack is not None:
            outbound.queue_send(ack)
    except redis.RedisError:
        log.exception("mail stored; routing or sending waits for `flask routing rebuild`")


def _ingest_report(parsed: mail.ParsedMail) -> Ingested:
    """A delivery report: it joins the ticket of our message; a permanent failure stops mail
    to that address."""
    failures = mail.delivery_failures(parsed.report)
    original_id = next((f.original_message_id for f in failures if f.original_message_id), None)
    original = _existing(original_id) if original_id else None
    ticket = original.ticket if original is not None else None
    if ticket is None:
        log.warning("a delivery report for a message we do not know was dropped")
        return Ingested(None, None, bounce=True)
    summary = "; ".join(
        f"{mask(f.recipient)}: {f.status} {'(permanent)' if f.permanent else '(temporary)'}"
        for f in failures
    )
    message = add_message(ticket, "bounce", f"Delivery failed: {summary}\n\n{parsed.text}")
    message.message_id = parsed.message_id
    message.subject = parsed.subject
    message.from_address = parsed.sender
    for failure in failures:
        if not failure.permanent:
            continue
        if original is not None and original.to_address == failure.recipient:
            original.delivery_status = "bounced"
            original.delivery_error = f"{failure.status} {failure.diagnostic}".strip()
        identity = db.session.scalar(
            sa.select(CustomerIdentity).where(
                CustomerIdentity.kind == "email", CustomerIdentity.value == failure.recipient
            )
        )
        # Only the address our message went to: a report cannot silence other addresses.
        if original is None or original.to_address != failure.recipient:
            continue
        if identity is not None and identity.undeliverable_at is None:
            identity.undeliverable_at = utcnow()
            identity.undeliverable_reason = f"{failure.status} {failure.diagnostic}"[:500]
    db.session.commit()
    return Ingested(ticket.id, message.id, bounce=True)
