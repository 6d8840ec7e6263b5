"""`/api/v1/tickets`: list and read tickets."""

from flask import Response, g
from flask_smorest import Blueprint

from contact_center.agents.auth import require_role
from contact_center.errors import NotFound
from contact_center.extensions import db
from contact_center.tickets import outbound, services
from contact_center.tickets.models import MailAttachment, Ticket
from contact_center.tickets.schemas import (
    ReplySchema,
    TicketDetailSchema,
    TicketMessageSchema,
    TicketQuerySchema,
    TicketSchema,
)

blp = Blueprint("tickets", __name__, url_prefix="/api/v1/tickets", description="Tickets")


@blp.get("")
@require_role("agent")
@blp.arguments(TicketQuerySchema, location="query")
@blp.response(200, TicketSchema(many=True))
def list_tickets(args: dict):
    """Tickets, newest first; filter by status or customer."""
    return services.list_tickets(**args)


@blp.get("/<int:ticket_id>")
@require_role("agent")
@blp.response(200, TicketDetailSchema)
def get_ticket(ticket_id: int):
    """One ticket with its messages (voicemails carry their recording, mail its delivery)."""
    return _ticket(ticket_id)


def _ticket(ticket_id: int) -> Ticket:
    ticket = db.session.get(Ticket, ticket_id)
    if ticket is None:
        raise NotFound("No such ticket.")
    return ticket


@blp.post("/<int:ticket_id>/replies")
@require_role("agent")
@blp.arguments(ReplySchema)
@blp.response(201, TicketMessageSchema)
def reply(data: dict, ticket_id: int):
    """A public reply by mail to the customer (threaded; a worker sends it)."""
    return outbound.reply(_ticket(ticket_id), g.user.id, data["body"])


@blp.get("/<int:ticket_id>/attachments/<int:attachment_id>")
@require_role("agent")
@blp.response(200)
def attachment(ticket_id: int, attachment_id: int):
    """Download an attachment (always as a download, never rendered in the page)."""
    item = db.session.get(MailAttachment, attachment_id)
    if item is None or item.message.ticket_id != ticket_id:
        raise NotFound("No such attachment.")
    return Response(
        item.data,
        mimetype="application/octet-stream",
        headers={
            "Content-Disposition": f'attachment; filename="{_safe_filename(item.filename)}"',
            "X-Content-Type-Options": "nosniff",
        },
    )


def _safe_filename(name: str) -> str:
    return "".join(c if c.isalnum() or c in "._- " else "_" for c in name)[:200] or "attachment"
