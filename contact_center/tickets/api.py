"""`/api/v1/tickets`: list and read tickets."""

from flask_smorest import Blueprint

from contact_center.agents.auth import require_role
from contact_center.errors import NotFound
from contact_center.extensions import db
from contact_center.tickets import services
from contact_center.tickets.models import Ticket
from contact_center.tickets.schemas import TicketDetailSchema, TicketQuerySchema, TicketSchema

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
    """One ticket with its messages (voicemails carry their recording)."""
    ticket = db.session.get(Ticket, ticket_id)
    if ticket is None:
        raise NotFound("No such ticket.")
    return ticket
