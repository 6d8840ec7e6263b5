"""`/api/v1/tickets` and `/api/v1/canned-responses`: the ticket lifecycle, replies, notes,
calls, merge, links, audit trail, settings."""

from collections.abc import Callable

import sqlalchemy as sa
from flask import Response, g
from flask_smorest import Blueprint

from contact_center.agents.auth import require_role
from contact_center.audit import trail
from contact_center.errors import APIError, Conflict, NotFound
from contact_center.extensions import db
from contact_center.routing import services as routing
from contact_center.routing.models import Interaction
from contact_center.system_settings import get_setting, put_setting
from contact_center.tickets import outbound, services
from contact_center.tickets.models import CannedResponse, MailAttachment, Ticket
from contact_center.tickets.schemas import (
    AttachCallSchema,
    AuditEventSchema,
    CannedResponseSchema,
    LinkSchema,
    MergeSchema,
    RenderedSchema,
    ReplySchema,
    TicketCreateSchema,
    TicketDetailSchema,
    TicketMessageSchema,
    TicketNoteSchema,
    TicketQuerySchema,
    TicketSchema,
    TicketSettingsSchema,
    TicketUpdateSchema,
)


def _referenced(model, record_id: int, field: str, readable: Callable | None = None):
    """A record named in the request body; a dangling reference is a 422 on that field, and
    so is one the user may not read (`readable`: a restricted queue's ticket or call)."""
    record = db.session.get(model, record_id)
    if record is None or (readable is not None and not readable(g.user, record)):
        raise APIError(422, f"Unknown {field}.", fields={field: ["No such record."]})
    return record


blp = Blueprint("tickets", __name__, url_prefix="/api/v1/tickets", description="Tickets")
canned_blp = Blueprint(
    "canned", __name__, url_prefix="/api/v1/canned-responses", description="Canned responses"
)


@blp.get("")
@require_role("agent")
@blp.arguments(TicketQuerySchema, location="query")
@blp.response(200, TicketSchema(many=True))
def list_tickets(args: dict):
    """Tickets, newest first; filter by status or customer (an agent sees none of another
    team's restricted queue)."""
    return services.list_tickets(**args, reader=g.user)


@blp.post("")
@require_role("agent")
@blp.arguments(TicketCreateSchema)
@blp.response(201, TicketDetailSchema)
def create_ticket(data: dict):
    """Open a ticket (for a caller, say), optionally assigned and with a first note."""
    return services.open_ticket(data, g.user.id)


@blp.get("/<int:ticket_id>")
@require_role("agent")
@blp.response(200, TicketDetailSchema)
def get_ticket(ticket_id: int):
    """One ticket with its messages (voicemails carry their recording, mail its delivery)."""
    return services.get_ticket(ticket_id, g.user)


@blp.patch("/<int:ticket_id>")
@require_role("agent")
@blp.arguments(TicketUpdateSchema)
@blp.response(200, TicketDetailSchema)
def update_ticket(data: dict, ticket_id: int):
    """Change status (409 for a change the lifecycle forbids), priority, type, queue,
    assignee, tags or custom fields; every change is in the audit trail."""
    return services.update_ticket(services.get_ticket(ticket_id, g.user), data, g.user.id)


@blp.post("/<int:ticket_id>/replies")
@require_role("agent")
@blp.arguments(ReplySchema)
@blp.response(201, TicketMessageSchema)
def reply(data: dict, ticket_id: int):
    """A public reply by mail (a body, or a canned response filled in); a worker sends it."""
    ticket = services.get_ticket(ticket_id, g.user)
    body = data.get("body")
    if body is None:
        canned = _referenced(CannedResponse, data["canned_response_id"], "canned_response_id")
        body = services.render_canned(canned, ticket, g.user)
    return outbound.reply(ticket, g.user.id, body)


@blp.post("/<int:ticket_id>/notes")
@require_role("agent")
@blp.arguments(TicketNoteSchema)
@blp.response(201, TicketMessageSchema)
def add_note(data: dict, ticket_id: int):
    """An internal note: agents see it, the customer never does."""
    return services.add_note(services.get_ticket(ticket_id, g.user), g.user.id, data["body"])


@blp.post("/<int:ticket_id>/calls")
@require_role("agent")
@blp.arguments(AttachCallSchema)
@blp.response(201, TicketMessageSchema)
def attach_call(data: dict, ticket_id: int):
    """Attach a call to the ticket as a summary (time, duration, outcome, notes, recording)."""
    ticket = services.get_ticket(ticket_id, g.user)
    interaction = _referenced(
        Interaction, data["interaction_id"], "interaction_id", routing.can_read_interaction
    )
    return services.attach_call(ticket, interaction, g.user.id)


@blp.post("/<int:ticket_id>/merge")
@require_role("agent")
@blp.arguments(MergeSchema)
@blp.response(200, TicketDetailSchema)
def merge(data: dict, ticket_id: int):
    """Merge this ticket into another: its messages and calls move there, it is closed."""
    source = services.get_ticket(ticket_id, g.user)
    target = _referenced(Ticket, data["into_ticket_id"], "into_ticket_id", services.can_read_ticket)
    return services.merge(source, target, g.user.id)


@blp.post("/<int:ticket_id>/links")
@require_role("agent")
@blp.arguments(LinkSchema)
@blp.response(200, TicketDetailSchema)
def link(data: dict, ticket_id: int):
    """Relate two tickets."""
    ticket = services.get_ticket(ticket_id, g.user)
    other = _referenced(Ticket, data["ticket_id"], "ticket_id", services.can_read_ticket)
    services.link(ticket, other, g.user.id)
    db.session.commit()
    return ticket


@blp.get("/<int:ticket_id>/audit")
@require_role("agent")
@blp.response(200, AuditEventSchema(many=True))
def audit_trail(ticket_id: int):
    """Who changed what on the ticket, when and from where, oldest first."""
    return trail("ticket", services.get_ticket(ticket_id, g.user).id)


@blp.get("/<int:ticket_id>/attachments/<int:attachment_id>")
@require_role("agent")
@blp.response(200)
def attachment(ticket_id: int, attachment_id: int):
    """Download an attachment (always as a download, never rendered in the page)."""
    services.get_ticket(ticket_id, g.user)
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


@blp.get("/settings")
@require_role("supervisor")
@blp.response(200, TicketSettingsSchema)
def get_settings():
    """The reopen window and the custom fields per ticket type."""
    return {
        "reopen_window_days": get_setting(
            services.REOPEN_WINDOW_KEY, services.REOPEN_WINDOW_DEFAULT
        )["days"],
        "custom_fields": get_setting(services.CUSTOM_FIELDS_KEY, {}),
    }


@blp.put("/settings")
@require_role("admin")
@blp.arguments(TicketSettingsSchema)
@blp.response(200, TicketSettingsSchema)
def put_settings(data: dict):
    """Replace the reopen window and the custom field definitions."""
    put_setting(services.REOPEN_WINDOW_KEY, {"days": data["reopen_window_days"]}, g.user.id)
    put_setting(services.CUSTOM_FIELDS_KEY, data["custom_fields"], g.user.id)
    db.session.commit()
    return data


@canned_blp.get("")
@require_role("agent")
@canned_blp.response(200, CannedResponseSchema(many=True))
def list_canned():
    """Every canned response, by name."""
    return db.session.scalars(sa.select(CannedResponse).order_by(CannedResponse.name)).all()


@canned_blp.post("")
@require_role("supervisor")
@canned_blp.arguments(CannedResponseSchema)
@canned_blp.response(201, CannedResponseSchema)
def create_canned(data: dict):
    """Add a canned response (placeholders: customer_name, ticket_number, subject, agent_name)."""
    if db.session.scalar(sa.select(CannedResponse.id).where(CannedResponse.name == data["name"])):
        raise Conflict("A canned response with that name exists.", fields={"name": ["Taken."]})
    canned = CannedResponse(
        name=data["name"], body=services.check_placeholders(data["body"]), created_by_id=g.user.id
    )
    db.session.add(canned)
    db.session.commit()
    return canned


@canned_blp.delete("/<int:canned_id>")
@require_role("supervisor")
@canned_blp.response(204)
def delete_canned(canned_id: int):
    """Remove a canned response."""
    db.session.delete(_canned(canned_id))
    db.session.commit()


@blp.get("/<int:ticket_id>/canned/<int:canned_id>")
@require_role("agent")
@blp.response(200, RenderedSchema)
def preview_canned(ticket_id: int, canned_id: int):
    """A canned response filled in for this ticket, to edit before sending."""
    canned = _canned(canned_id)
    return {"body": services.render_canned(canned, services.get_ticket(ticket_id, g.user), g.user)}


def _canned(canned_id: int) -> CannedResponse:
    canned = db.session.get(CannedResponse, canned_id)
    if canned is None:
        raise NotFound("No such canned response.")
    return canned
