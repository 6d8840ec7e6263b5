"""`/api/v1/queues`, `/api/v1/interactions`, `/api/v1/routing/events`."""

from __future__ import annotations

import sqlalchemy as sa
from flask import g
from flask_smorest import Blueprint

from contact_center.agents.auth import require_role
from contact_center.agents.services import can_read_queue
from contact_center.customers.models import Customer
from contact_center.errors import APIError, Conflict, NotFound
from contact_center.extensions import db
from contact_center.routing import services
from contact_center.routing.models import Interaction, Queue, Reservation
from contact_center.routing.schemas import (
    EstimateSchema,
    EventsQuerySchema,
    InteractionSchema,
    InteractionUpdateSchema,
    QueueCreateSchema,
    QueueSchema,
    QueueUpdateSchema,
    QueueWithStatsSchema,
)

blp = Blueprint("routing", __name__, url_prefix="/api/v1", description="Queues and routing")


def _queue(queue_id: int) -> Queue:
    """The queue, or 404: also for a restricted queue the user may not read."""
    queue = db.session.get(Queue, queue_id)
    if queue is None or not can_read_queue(g.user, queue):
        raise NotFound("No such queue.")
    return queue


@blp.get("/queues")
@require_role("agent")
@blp.response(200, QueueWithStatsSchema(many=True))
def list_queues():
    """Queues with their waiting count, staffing and estimated wait for a new arrival
    (an agent sees no restricted queue of another team)."""
    queues = db.session.scalars(sa.select(Queue).order_by(Queue.name)).all()
    return [
        {**QueueSchema().dump(q), "estimate": services.estimate(q)}
        for q in queues
        if can_read_queue(g.user, q)
    ]


@blp.post("/queues")
@require_role("supervisor")
@blp.arguments(QueueCreateSchema)
@blp.response(201, QueueSchema)
def create_queue(data: dict):
    """Create a queue."""
    if db.session.scalar(sa.select(Queue.id).where(Queue.name == data["name"])):
        raise Conflict("A queue with that name exists.", fields={"name": ["Taken."]})
    queue = services.create_queue(**data)
    db.session.commit()
    return queue


@blp.patch("/queues/<int:queue_id>")
@require_role("supervisor")
@blp.arguments(QueueUpdateSchema)
@blp.response(200, QueueSchema)
def update_queue(data: dict, queue_id: int):
    """Change a queue (supervisors): any field of the create body; those left out stay.
    Waiting work and free agents follow new skills, teams, steps or strategy at once."""
    return services.update_queue(_queue(queue_id), data, g.user.id)


@blp.get("/queues/<int:queue_id>/estimate")
@require_role("agent")
@blp.response(200, EstimateSchema)
def queue_estimate(queue_id: int):
    """Position and estimated wait for a new arrival in this queue."""
    return services.estimate(_queue(queue_id))


@blp.get("/interactions/<int:interaction_id>")
@require_role("agent")
@blp.response(200, InteractionSchema)
def get_interaction(interaction_id: int):
    """An interaction with every offer made for it and why (the decision record).

    Agents see the interactions offered to them, less those of a restricted queue outside
    their team that they do not hold; supervisors and admins see all.
    """
    interaction = db.session.get(Interaction, interaction_id)
    if interaction is None or not services.can_read_interaction(g.user, interaction):
        raise NotFound("No such interaction.")
    reservations = db.session.scalars(
        sa.select(Reservation)
        .where(Reservation.interaction_id == interaction_id)
        .order_by(Reservation.created_at)
    ).all()
    user = g.user
    if not user.has_role("supervisor") and all(r.agent_id != user.id for r in reservations):
        raise NotFound("No such interaction.")
    return {
        **services.interaction_payload(interaction),
        "reservations": [services.reservation_payload(r) for r in reservations],
    }


@blp.patch("/interactions/<int:interaction_id>")
@require_role("agent")
@blp.arguments(InteractionUpdateSchema)
@blp.response(200, InteractionSchema)
def identify_interaction(data: dict, interaction_id: int):
    """Say who the customer is (an unknown caller matched or just created) on work in hand.

    The interaction's agent, or a supervisor; its ticket, if it has none, gets the customer too.
    """
    interaction = services.handled_by(g.user, interaction_id)
    customer = db.session.get(Customer, data["customer_id"])
    if customer is None:
        raise APIError(422, "Unknown customer.", fields={"customer_id": ["No such customer."]})
    return services.interaction_payload(services.identify(interaction, customer, g.user.id))


@blp.get("/routing/events")
@require_role("supervisor")
@blp.arguments(EventsQuerySchema, location="query")
def routing_events(args: dict):
    """The latest routing events: offered, accepted, rejected, timeout, abandoned, completed."""
    return {"events": services.routing_events(args["count"])}
