"""The `/agent` namespace: presence, offers, accept/reject, complete, wrap-up, and who is
viewing or replying to a ticket.

Thin: each event is validated with marshmallow, handed to a routing service, and acked
`{"ok": true, ...}` or `{"ok": false, "error": {code, message}}`.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from flask import session
from flask_login import current_user
from flask_socketio import Namespace, disconnect, emit, join_room, leave_room
from marshmallow import Schema, ValidationError, fields, validate
from sqlalchemy.exc import SQLAlchemyError

from contact_center.agents.models import User
from contact_center.agents.services import token_record, token_record_by_hash
from contact_center.errors import APIError, database_unavailable, discard_session, unavailable
from contact_center.extensions import db
from contact_center.realtime.events import AGENT_NAMESPACE, agent_room
from contact_center.routing import services as routing
from contact_center.tickets import collision
from contact_center.tickets import services as tickets
from contact_center.tickets.collision import ticket_room

log = logging.getLogger(__name__)


class SetStatusEvent(Schema):
    status = fields.String(required=True, validate=validate.OneOf(routing.SETTABLE_STATUSES))
    reason = fields.String(load_default=None, validate=validate.Length(max=200))


class ReservationEvent(Schema):
    reservation_id = fields.String(required=True, validate=validate.Length(min=1, max=36))


class RejectEvent(ReservationEvent):
    reason = fields.String(load_default=None, validate=validate.Length(max=200))


class CompleteEvent(Schema):
    interaction_id = fields.Integer(required=True, strict=True)
    disposition = fields.String(load_default=None, validate=validate.Length(max=80))
    notes = fields.String(load_default=None, validate=validate.Length(max=10000))


class WrapupDoneEvent(Schema):
    interaction_id = fields.Integer(required=True, strict=True)


class TicketViewEvent(Schema):
    ticket_id = fields.Integer(required=True, strict=True)
    replying = fields.Boolean(load_default=None)


def socket_user(auth: Any) -> User | None:
    """The user of a connecting socket: an API token in `auth`, or the login session.

    What authenticated the socket is kept in its session and checked again on every
    event, so a revoked token or a sign-out ends the socket's rights at once.
    """
    if isinstance(auth, dict) and auth.get("token") is not None:
        token = auth["token"]
        record = token_record(token) if isinstance(token, str) else None
        if record is None:
            return None
        session["auth"] = {"token_hash": record.token_hash}
        return record.user
    if current_user.is_authenticated:
        user = current_user._get_current_object()
        session["auth"] = {"epoch": user.session_epoch}
        return user
    return None


def _still_authorised(agent: User) -> bool:
    auth = session.get("auth") or {}
    if "token_hash" in auth:
        record = token_record_by_hash(auth["token_hash"])
        return record is not None and record.user_id == agent.id
    return auth.get("epoch") == agent.session_epoch


def failure(code: str, message: str, fields_: dict | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if fields_:
        error["fields"] = fields_
    return {"ok": False, "error": error}


def agent_event(schema: type[Schema]) -> Callable:
    """Validate an event's payload and run it as the socket's agent; always ack."""

    def decorator(handler: Callable) -> Callable:
        @functools.wraps(handler)
        def wrapper(self: AgentNamespace, data: Any = None) -> dict[str, Any]:
            try:
                return run(self, data)
            except SQLAlchemyError as exc:
                # Out of the database's reach (down, or no pooled connection in time under
                # load): the agent is told to try again, not left waiting for an ack.
                if not database_unavailable(exc):
                    raise
                log.warning("database unavailable for %s: %s", handler.__name__, type(exc).__name__)
                discard_session()
                error = unavailable()
                return failure(error.code, error.message)

        def run(self: AgentNamespace, data: Any) -> dict[str, Any]:
            agent = db.session.get(User, session.get("agent_id"))
            if (
                agent is None
                or not agent.has_role("agent")
                or not agent.is_active
                or not _still_authorised(agent)
            ):
                disconnect()
                return failure("unauthorized", "Sign in again.")
            if not isinstance(data, dict):
                return failure("bad_request", "The event payload must be an object.")
            try:
                payload = schema().load(data)
            except ValidationError as exc:
                return failure("validation_error", "Some fields are invalid.", exc.messages)
            try:
                result = handler(self, agent, payload) or {}
            except APIError as exc:
                db.session.rollback()
                return failure(exc.code, exc.message, exc.fields)
            return {"ok": True, **result}

        return wrapper

    return decorator


class AgentNamespace(Namespace):
    def on_connect(self, auth: Any = None) -> bool:
        user = socket_user(auth)
        if user is None or not user.is_active or not user.has_role("agent"):
            return False  # refuses the connection
        session["agent_id"] = user.id
        join_room(agent_room(user.id))
        emit("status", routing.agent_status_payload(user))
        # A reload or reconnect picks up where the agent was: held work, then a ringing offer.
        emit("current", {"interactions": routing.held_interactions(user)})
        pending = routing.pending_offer(user)
        if pending is not None:
            emit("offer", routing.offer_payload(pending))
        # Last: coming back may bring a new offer, which then follows the state above.
        routing.agent_connected(user)
        return True

    def on_disconnect(self, reason: Any = None) -> None:
        agent = db.session.get(User, session.get("agent_id"))
        if agent is not None:
            routing.agent_disconnected(agent)
            for ticket_id in session.pop("viewing", []):
                collision.leave(ticket_id, agent.id)

    @agent_event(SetStatusEvent)
    def on_set_status(self, agent: User, payload: dict) -> dict:
        routing.set_agent_status(agent, payload["status"], payload["reason"])
        return routing.agent_status_payload(agent)

    @agent_event(ReservationEvent)
    def on_accept(self, agent: User, payload: dict) -> dict:
        interaction = routing.accept(agent, payload["reservation_id"])
        return {"interaction": routing.interaction_payload(interaction)}

    @agent_event(RejectEvent)
    def on_reject(self, agent: User, payload: dict) -> dict:
        routing.reject(agent, payload["reservation_id"], payload["reason"])
        return {}

    @agent_event(CompleteEvent)
    def on_complete(self, agent: User, payload: dict) -> dict:
        interaction = routing.complete(
            agent, payload["interaction_id"], payload["disposition"], payload["notes"]
        )
        return {"interaction": routing.interaction_payload(interaction)}

    @agent_event(WrapupDoneEvent)
    def on_wrapup_done(self, agent: User, payload: dict) -> dict:
        routing.wrapup_done(agent, payload["interaction_id"])
        return routing.agent_status_payload(agent)

    @agent_event(TicketViewEvent)
    def on_view_ticket(self, agent: User, payload: dict) -> dict:
        """The agent has a ticket open (sent again every 30 s while it is, and when they
        start or stop replying): everyone viewing it gets `ticket_activity`."""
        ticket_id = tickets.get_ticket(payload["ticket_id"], agent).id
        join_room(ticket_room(ticket_id))
        session["viewing"] = sorted({*session.get("viewing", []), ticket_id})
        return collision.touch(ticket_id, agent, payload["replying"])

    @agent_event(TicketViewEvent)
    def on_leave_ticket(self, agent: User, payload: dict) -> dict:
        """The agent closed the ticket."""
        ticket_id = payload["ticket_id"]
        leave_room(ticket_room(ticket_id))
        session["viewing"] = [t for t in session.get("viewing", []) if t != ticket_id]
        return collision.leave(ticket_id, agent.id)


def register(socketio) -> None:
    """Attach the namespaces to the Socket.IO server (once, however many apps are built)."""
    if not any(h.namespace == AGENT_NAMESPACE for h in socketio.namespace_handlers):
        socketio.on_namespace(AgentNamespace(AGENT_NAMESPACE))
