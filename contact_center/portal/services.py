"""Portal services: submissions become tickets (or complaints) with their clocks running,
signed links let the customer follow their case and rate how it was handled."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import redis
import sqlalchemy as sa
from flask import current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer

from contact_center import audit
from contact_center.complaints import services as complaints
from contact_center.complaints.models import Complaint
from contact_center.complaints.profiles import PROFILES
from contact_center.customers.models import Customer, CustomerIdentity
from contact_center.customers.services import (
    find_by_identity,
    mask,
    normalise_email,
    normalise_phone,
)
from contact_center.errors import APIError
from contact_center.extensions import db
from contact_center.redis_client import get_redis
from contact_center.routing import services as routing
from contact_center.routing.models import Interaction, Queue
from contact_center.tickets import inbound, outbound
from contact_center.tickets.models import MailAttachment, Ticket, TicketMessage
from contact_center.tickets.services import (
    accepts_customer_reply,
    add_message,
    create_ticket,
    reopen_for_customer,
)

log = logging.getLogger(__name__)
STATUS_LINK_DAYS = 400  # past the 6-month ombudsman window of a complaint
SURVEY_LINK_DAYS = 30
SUBMISSIONS_PER_WINDOW = 5
RATE_WINDOW_S = 600
MAX_FILES = 3
MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_REQUEST_BYTES = MAX_FILES * MAX_FILE_BYTES + 1024 * 1024  # the files and the form
PUBLIC_KINDS = ("inbound", "outbound", "auto_reply")
CUSTOMER_STATUS = {
    "new": "Received: waiting for one of our team",
    "open": "In progress",
    "pending": "Waiting for information from you",
    "on_hold": "On hold: we are waiting for someone else",
    "solved": "Solved",
    "closed": "Closed",
}


def _serializer(salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=salt)


def status_token(ticket: Ticket) -> str:
    """The signed token of a ticket's public status page."""
    return _serializer("ticket-status").dumps(ticket.id)


def ticket_for_token(token: str) -> Ticket | None:
    """The ticket a status link points at; None for a forged or expired link."""
    try:
        ticket_id = _serializer("ticket-status").loads(token, max_age=STATUS_LINK_DAYS * 86400)
    except BadSignature:
        return None
    return db.session.get(Ticket, ticket_id) if isinstance(ticket_id, int) else None


def survey_token(interaction: Interaction) -> str:
    """The signed token of a satisfaction survey about one interaction."""
    return _serializer("csat").dumps(interaction.id)


def interaction_for_survey(token: str) -> Interaction | None:
    """The interaction a survey link is about; None for a forged or expired link."""
    try:
        interaction_id = _serializer("csat").loads(token, max_age=SURVEY_LINK_DAYS * 86400)
    except BadSignature:
        return None
    return db.session.get(Interaction, interaction_id) if isinstance(interaction_id, int) else None


def within_rate_limit(client: str) -> bool:
    """At most SUBMISSIONS_PER_WINDOW posts per client address per window."""
    key = f"cc:portal:rate:{client}"
    try:
        count = get_redis().incr(key)
        if count == 1:
            get_redis().expire(key, RATE_WINDOW_S)
    except redis.RedisError:
        return True  # the portal stays up without Redis; the database still validates
    return count <= SUBMISSIONS_PER_WINDOW


@dataclass
class Upload:
    filename: str
    content_type: str
    data: bytes


def _customer(name: str, email: str, phone: str | None) -> Customer:
    """The customer the submission belongs to: by email only (what the acknowledgement proves
    they own), never by a phone number anyone could type."""
    customer = find_by_identity("email", email)
    if customer is None:
        customer = Customer(name=name)
        customer.identities = [CustomerIdentity(kind="email", value=email)]
        if phone and find_by_identity("phone", phone) is None:
            customer.identities.append(CustomerIdentity(kind="phone", value=phone))
        db.session.add(customer)
        db.session.flush()
    return customer


def _attach(message: TicketMessage, uploads: list[Upload]) -> None:
    for upload in uploads:
        message.attachments.append(
            MailAttachment(
                filename=upload.filename[:255] or "attachment",
                content_type=upload.content_type[:255] or "application/octet-stream",
                size=len(upload.data),
                data=upload.data,
            )
        )


def check_uploads(uploads: list[Upload]) -> None:
    """Within the limits, or a clear refusal naming the file."""
    if len(uploads) > MAX_FILES:
        raise APIError(
            422, f"At most {MAX_FILES} files.", fields={"attachments": ["Too many files."]}
        )
    for upload in uploads:
        if len(upload.data) > MAX_FILE_BYTES:
            raise APIError(
                422,
                f"{upload.filename} is over {MAX_FILE_BYTES // (1024 * 1024)} MB.",
                fields={"attachments": [f"{upload.filename} is too large."]},
            )


def submit(data: dict[str, Any], uploads: list[Upload]) -> Ticket:
    """A web submission: a ticket (a complaint with its clocks when it is one), routed to an
    agent, acknowledged by mail with the status link."""
    check_uploads(uploads)
    email = normalise_email(data["email"])
    if email is None:
        raise APIError(422, "Not a valid email address.", fields={"email": ["Not valid."]})
    phone = normalise_phone(data["phone"]) if data.get("phone") else None
    if data.get("phone") and phone is None:
        raise APIError(422, "Not a valid phone number.", fields={"phone": ["Not valid."]})
    queue = inbound.email_queue()
    customer = _customer(data["name"], email, phone)
    if data["kind"] == "complaint":
        complaint = complaints.stage_complaint(
            {
                "customer_id": customer.id,
                "subject": data["subject"],
                "category": data["category"],
                "channel_received": "web",
            },
            actor_id=None,
        )
        ticket = complaint.ticket
        ticket.queue_id = queue.id
    else:
        ticket = create_ticket(data["subject"], "web", customer_id=customer.id, queue_id=queue.id)
        ticket.custom_fields = {}
        ticket.tags = [f"category:{data['category']}"]
    message = add_message(ticket, "inbound", data["description"])
    message.from_address = email
    message.subject = data["subject"]
    _attach(message, uploads)
    db.session.flush()
    interaction = routing.stage_interaction(
        channel="email",
        queue=queue,
        from_address=email,
        customer_id=customer.id,
        customer_tier=customer.tier,
        complaint=data["kind"] == "complaint",
        ticket_id=ticket.id,
    )
    ack = outbound.stage_mail(
        ticket,
        "auto_reply",
        acknowledgement(ticket, data["kind"]),
        subject=f"We received your {data['kind']}: {ticket.subject}",
        to=email,
    )
    db.session.commit()
    log.info("portal %s from %s: ticket %s", data["kind"], mask(email), ticket.number)
    inbound.route_and_send(interaction, ack)
    return ticket


def acknowledgement(ticket: Ticket, kind: str) -> str:
    """The acknowledgement mail, with the signed link to follow the case."""
    link = f"{current_app.config['PUBLIC_BASE_URL']}/support/status/{status_token(ticket)}"
    lines = [f"Thank you. We have received your {kind} and given it the number {ticket.number}."]
    complaint = complaint_of(ticket)
    if complaint is not None:
        due = PROFILES[complaint.profile].local_date(complaint.final_response_due)
        lines.append(f"We will send you our final response by {due} at the latest.")
    lines.append(f"You can follow its progress and add information here:\n{link}")
    return "\n\n".join(lines)


def complaint_of(ticket: Ticket) -> Complaint | None:
    """The complaint record of a complaint ticket."""
    return db.session.scalar(sa.select(Complaint).where(Complaint.ticket_id == ticket.id))


def public_messages(ticket: Ticket) -> list[TicketMessage]:
    """What the customer may see: their messages and our mail to them, not internal notes."""
    return [m for m in ticket.messages if m.kind in PUBLIC_KINDS]


def add_information(ticket: Ticket, text: str, uploads: list[Upload]) -> TicketMessage:
    """The customer adds information from the status page; it reaches an agent again."""
    check_uploads(uploads)
    if not accepts_customer_reply(ticket):
        raise APIError(409, "This case is closed. Please open a new one.")
    reopen_for_customer(ticket)
    message = add_message(ticket, "inbound", text)
    message.from_address = outbound.customer_address(ticket)
    _attach(message, uploads)
    interaction = None
    if ticket.queue_id is not None:
        interaction = routing.stage_interaction(
            channel="email",
            queue=db.session.get(Queue, ticket.queue_id),
            from_address=message.from_address,
            customer_id=ticket.customer_id,
            ticket_id=ticket.id,
        )
    db.session.commit()
    inbound.route_and_send(interaction, None)
    return message


def record_satisfaction(interaction: Interaction, score: int, comment: str | None) -> Interaction:
    """A CSAT answer (1-5 and an optional comment) on the interaction it is about."""
    before = {"satisfaction": interaction.satisfaction}
    interaction.satisfaction = score
    interaction.satisfaction_comment = comment or None
    audit.record(
        "interaction.rated",
        "interaction",
        interaction.id,
        before=before,
        after={"satisfaction": score},
    )
    db.session.commit()
    return interaction


def send_survey(ticket: Ticket) -> TicketMessage | None:
    """A solved ticket: ask the customer to rate its last interaction (a signed link)."""
    interaction = db.session.scalar(
        sa.select(Interaction)
        .where(Interaction.ticket_id == ticket.id)
        .order_by(Interaction.id.desc())
        .limit(1)
    )
    address = outbound.customer_address(ticket)
    if interaction is None or interaction.satisfaction is not None or address is None:
        return None
    if not outbound.deliverable(address):
        return None
    link = f"{current_app.config['PUBLIC_BASE_URL']}/survey/{survey_token(interaction)}"
    message = outbound.stage_mail(
        ticket,
        "auto_reply",
        f"We have solved your request {ticket.number}. How did we do? It takes a few "
        f"seconds to tell us:\n{link}",
        subject=f"How did we do? {ticket.subject}",
        to=address,
    )
    db.session.commit()
    outbound.queue_send(message)
    return message
