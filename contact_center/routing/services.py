"""Routing services: enqueue, offer, accept, reject, complete, agent status, rebuild.

The database is the record; Redis (RoutingStore) holds who waits and who is idle. Every
change is committed to the database first, then mirrored to Redis, so a rebuild from the
database can always restore Redis.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app
from twilio.base.exceptions import TwilioRestException

from contact_center.agents.models import User
from contact_center.customers.services import identify_caller, mask, screen_pop_for_caller
from contact_center.db_types import isoformat, utcnow
from contact_center.errors import APIError, Conflict, NotFound
from contact_center.extensions import db
from contact_center.ivr import calls
from contact_center.realtime.events import emit_to_agent
from contact_center.redis_client import get_redis
from contact_center.routing.models import Interaction, Queue, Reservation
from contact_center.routing.store import REBUILD_LOCK_KEY, RoutingStore

log = logging.getLogger(__name__)

# Seconds of queue credit: a tier-A caller is placed as if they had called two minutes earlier.
TIER_CREDIT_S = {"A": 120.0, "B": 30.0, "C": 0.0}
PRIORITY_CREDIT_S = 30.0
SETTABLE_STATUSES = ("available", "away", "offline")
FINAL_CALL_STATUSES = ("completed", "busy", "failed", "no-answer", "canceled")


def get_store() -> RoutingStore:
    """The routing store; rebuilds Redis from the database if Redis lost its state."""
    store = _store()
    if not store.is_built():
        rebuild_state()
    return store


def _store() -> RoutingStore:
    store = current_app.extensions.get("routing_store")
    if store is None:
        store = RoutingStore(get_redis())
        current_app.extensions["routing_store"] = store
    return store


def default_queue() -> Queue:
    """The queue calls go to before the IVR picks one; created on first use."""
    queue = db.session.scalar(sa.select(Queue).order_by(Queue.is_default.desc(), Queue.id).limit(1))
    if queue is None:
        queue = create_queue(name="General", channels=["voice", "email"], is_default=True)
    return queue


def create_queue(**fields: Any) -> Queue:
    """Create a queue (flushed) and let the available agents who qualify wait on it."""
    queue = Queue(**fields)
    db.session.add(queue)
    db.session.flush()
    store = get_store()
    available = db.session.scalars(sa.select(User).where(User.status == "available"))
    for agent in available:
        if qualifies(agent, queue):
            store.set_available(agent.id, [queue.id], agent.status_since.timestamp())
    return queue


def queue_score(enqueued_at: datetime, priority: int, tier: str | None) -> float:
    """Enqueue time minus priority credit: boosted callers jump ahead but time still counts."""
    credit = TIER_CREDIT_S.get(tier or "C", 0.0) + PRIORITY_CREDIT_S * priority
    return enqueued_at.timestamp() - credit


def qualifies(agent: User, queue: Queue) -> bool:
    """True when the agent has every skill the queue needs and capacity on its channels."""
    levels = agent.skill_levels()
    skilled = all(levels.get(skill, 0) >= level for skill, level in queue.required_skills.items())
    has_capacity = any((agent.capacity or {}).get(channel, 0) > 0 for channel in queue.channels)
    return skilled and has_capacity


def eligible_queue_ids(agent: User) -> list[int]:
    """The queues an agent serves."""
    queues = db.session.scalars(sa.select(Queue).order_by(Queue.id))
    return [queue.id for queue in queues if qualifies(agent, queue)]


def receive_call(call_sid: str, from_number: str | None, to_number: str | None) -> Interaction:
    """Record an incoming call as a queued interaction (flushed, not committed)."""
    existing = db.session.scalar(sa.select(Interaction).where(Interaction.external_id == call_sid))
    if existing is not None:
        return existing
    customer = identify_caller(from_number)
    queue = default_queue()
    now = utcnow()
    interaction = Interaction(
        channel="voice",
        direction="inbound",
        external_id=call_sid,
        from_address=from_number,
        to_address=to_number,
        customer_id=customer.id if customer else None,
        queue_id=queue.id,
        required_skills=dict(queue.required_skills),
        status="queued",
        enqueued_at=now,
        queue_score=queue_score(now, 0, customer.tier if customer else None),
    )
    db.session.add(interaction)
    db.session.flush()
    log.info(
        "call %s from %s queued as interaction %s", call_sid, mask(from_number), interaction.id
    )
    return interaction


def enqueue(interaction: Interaction) -> list[Reservation]:
    """Mirror a committed, queued interaction into Redis and offer it if an agent is free."""
    store = get_store()
    if interaction.status != "queued" or interaction.queue_id is None:
        return []
    store.enqueue(interaction.queue_id, interaction.id, interaction.queue_score or 0.0)
    return dispatch_queue(interaction.queue_id)


def dispatch_queue(queue_id: int) -> list[Reservation]:
    """Offer waiting interactions of a queue to idle agents until one side runs out."""
    store = get_store()
    offers = []
    while (match := store.match(queue_id)) is not None:
        reservation = _create_offer(store, queue_id, match.interaction_id, match.agent_id)
        if reservation is not None:
            offers.append(reservation)
    return offers


def _create_offer(
    store: RoutingStore, queue_id: int, interaction_id: int, agent_id: int
) -> Reservation | None:
    interaction = db.session.get(Interaction, interaction_id, with_for_update=True)
    agent = db.session.get(User, agent_id, with_for_update=True)
    interaction_ok = interaction is not None and interaction.status == "queued"
    agent_ok = agent is not None and agent.status == "available"
    if not (interaction_ok and agent_ok):
        # The match raced with a hang-up or a status change: undo the half that is still valid.
        db.session.rollback()
        if interaction_ok:
            store.enqueue(queue_id, interaction.id, interaction.queue_score or 0.0)
        if agent_ok:
            store.release(agent.id, eligible_queue_ids(agent), agent.status_since.timestamp())
        return None
    now = utcnow()
    queue = db.session.get(Queue, queue_id)
    timeout = queue.offer_timeout_s if queue else current_app.config["OFFER_TIMEOUT_S"]
    reservation = Reservation(
        id=str(uuid.uuid4()),
        interaction_id=interaction.id,
        agent_id=agent.id,
        status="pending",
        created_at=now,
        expires_at=now + timedelta(seconds=timeout),
        decision={
            "step": "longest_idle",
            "queue": queue.name if queue else None,
            "waited_s": _waited_s(interaction, now),
            "agent_idle_since": isoformat(agent.status_since),
        },
    )
    db.session.add(reservation)
    interaction.status = "offered"
    interaction.offered_at = now
    _set_agent(agent, "reserved", now)
    db.session.commit()
    emit_to_agent(agent.id, "offer", offer_payload(reservation))
    emit_to_agent(agent.id, "status", agent_status_payload(agent))
    return reservation


def _waited_s(interaction: Interaction, now: datetime) -> int:
    start = interaction.enqueued_at or interaction.created_at
    return max(0, int((now - start).total_seconds()))


def interaction_payload(interaction: Interaction) -> dict[str, Any]:
    """The interaction as events and the API show it."""
    return {
        "id": interaction.id,
        "channel": interaction.channel,
        "direction": interaction.direction,
        "status": interaction.status,
        "queue": interaction.queue.name if interaction.queue else None,
        "from": interaction.from_address,
        "customer_id": interaction.customer_id,
        "agent_id": interaction.agent_id,
        "waited_s": _waited_s(interaction, interaction.answered_at or utcnow()),
        "created_at": isoformat(interaction.created_at),
        "answered_at": isoformat(interaction.answered_at),
        "ended_at": isoformat(interaction.ended_at),
        "outcome": interaction.outcome,
        "disposition": interaction.disposition,
        "duration_s": interaction.duration_s,
    }


def offer_payload(reservation: Reservation) -> dict[str, Any]:
    """The `offer` event: the interaction and the caller's screen pop, together."""
    interaction = reservation.interaction
    return {
        "reservation_id": reservation.id,
        "expires_at": isoformat(reservation.expires_at),
        "interaction": interaction_payload(interaction),
        "screen_pop": screen_pop_for_caller(interaction.from_address),
    }


def agent_status_payload(agent: User) -> dict[str, Any]:
    """The `status` event."""
    payload = {"status": agent.status, "since": isoformat(agent.status_since)}
    if agent.status_reason:
        payload["reason"] = agent.status_reason
    return payload


def _set_agent(agent: User, status: str, now: datetime, reason: str | None = None) -> None:
    agent.status = status
    agent.status_since = now
    agent.status_reason = reason


def _pending_reservation(reservation_id: str, agent: User) -> Reservation:
    reservation = db.session.get(Reservation, reservation_id, with_for_update=True)
    if reservation is None or reservation.agent_id != agent.id:
        raise NotFound("No such offer for this agent.")
    if reservation.status != "pending":
        raise Conflict(f"The offer is no longer pending (it was {reservation.status}).")
    return reservation


def accept(agent: User, reservation_id: str) -> Interaction:
    """Accept an offer: the caller is sent into the interaction's conference, the agent dialled."""
    reservation = _pending_reservation(reservation_id, agent)
    now = utcnow()
    if reservation.expires_at <= now:
        raise Conflict("The offer has expired.")
    interaction = reservation.interaction
    reservation.status = "accepted"
    reservation.responded_at = now
    interaction.status = "connecting"
    interaction.agent_id = agent.id
    interaction.answered_at = now
    _set_agent(agent, "busy", now)
    db.session.commit()
    get_store().set_status(agent.id, "busy")
    emit_to_agent(
        agent.id, "assigned", {"interaction_id": interaction.id, "reservation_id": reservation.id}
    )
    emit_to_agent(agent.id, "status", agent_status_payload(agent))
    if interaction.channel == "voice":
        _connect_call(interaction, reservation, agent)
    return interaction


def _connect_call(interaction: Interaction, reservation: Reservation, agent: User) -> None:
    connect_path = f"/webhooks/twilio/voice/connect/{reservation.id}"
    try:
        calls.redirect_call(interaction.external_id, calls.public_url(f"{connect_path}?leg=caller"))
        calls.dial(
            f"client:{agent.username}",
            calls.public_url(f"{connect_path}?leg=agent"),
            calls.public_url("/webhooks/twilio/voice/status"),
        )
    except TwilioRestException as exc:
        # The caller may have hung up meanwhile; their status callback ends the interaction.
        log.warning("could not connect interaction %s: %s", interaction.id, exc.msg)


def reject(agent: User, reservation_id: str, reason: str | None = None) -> Reservation:
    """Decline an offer: the interaction goes back to its place and is offered again."""
    reservation = _pending_reservation(reservation_id, agent)
    return _return_offer(reservation, "rejected", reason or "rejected by agent", agent_free=True)


def _return_offer(
    reservation: Reservation, outcome: str, reason: str, *, agent_free: bool
) -> Reservation:
    now = utcnow()
    interaction = reservation.interaction
    agent = reservation.agent
    reservation.status = outcome
    reservation.responded_at = now
    reservation.reason = reason
    if interaction.status == "offered":
        interaction.status = "queued"
    if agent_free and agent.status == "reserved":
        _set_agent(agent, "available", now)
    db.session.commit()
    store = get_store()
    if interaction.status == "queued":
        store.enqueue(interaction.queue_id, interaction.id, interaction.queue_score or 0.0)
    if agent_free and agent.status == "available":
        # Idle-since restarts now, so other idle agents are tried first.
        store.release(agent.id, eligible_queue_ids(agent), now.timestamp())
    emit_to_agent(agent.id, "offer_revoked", {"reservation_id": reservation.id, "reason": reason})
    emit_to_agent(agent.id, "status", agent_status_payload(agent))
    if interaction.queue_id is not None:
        dispatch_queue(interaction.queue_id)
    return reservation


def set_agent_status(agent: User, status: str, reason: str | None = None) -> User:
    """Change an agent's presence; going available starts offers flowing."""
    if status not in SETTABLE_STATUSES:
        raise APIError(422, f"Status must be one of {', '.join(SETTABLE_STATUSES)}.")
    if agent.status == "busy":
        raise Conflict("Finish the current interaction first.")
    pending = _pending_reservations(agent)
    now = utcnow()
    if status == "available" and agent.status == "available":
        return agent
    if status == "available" and agent.status == "reserved":
        return agent
    for reservation in pending:
        _return_offer(reservation, "revoked", f"agent went {status}", agent_free=False)
    _set_agent(agent, status, now, reason)
    db.session.commit()
    store = get_store()
    if status == "available":
        store.set_available(agent.id, eligible_queue_ids(agent), now.timestamp())
    else:
        store.set_status(agent.id, status)
    emit_to_agent(agent.id, "status", agent_status_payload(agent))
    if status == "available":
        dispatch_for_agent(agent)
    return agent


def _pending_reservations(agent: User) -> list[Reservation]:
    return list(
        db.session.scalars(
            sa.select(Reservation).where(
                Reservation.agent_id == agent.id, Reservation.status == "pending"
            )
        )
    )


def dispatch_for_agent(agent: User) -> None:
    """Offer a newly free agent the oldest waiting work across their queues."""
    store = get_store()
    queue_ids = eligible_queue_ids(agent)
    scored = [(store.head_score(q), q) for q in queue_ids]
    for _score, queue_id in sorted((s, q) for s, q in scored if s is not None):
        dispatch_queue(queue_id)
        if store.agent_status(agent.id) != "available":
            break


def call_status(call_sid: str, status: str, duration_s: int | None) -> Interaction | None:
    """Apply a Twilio call status callback: a final status ends or abandons the interaction."""
    interaction = db.session.scalar(
        sa.select(Interaction).where(Interaction.external_id == call_sid).with_for_update()
    )
    if interaction is None or status not in FINAL_CALL_STATUSES:
        return interaction
    if interaction.status == "ended":
        return interaction
    now = utcnow()
    if interaction.status in ("queued", "offered"):
        return _abandon(interaction, now)
    interaction.status = "ended"
    interaction.outcome = "answered"
    interaction.ended_at = now
    interaction.duration_s = duration_s
    agent = interaction.agent
    if agent is not None and agent.status == "busy":
        _set_agent(agent, "wrapup", now)
    db.session.commit()
    if agent is not None:
        get_store().set_status(agent.id, agent.status)
        emit_to_agent(agent.id, "interaction_ended", interaction_payload(interaction))
        emit_to_agent(agent.id, "status", agent_status_payload(agent))
        _finish_wrapup_if_none(agent, interaction)
    return interaction


def _abandon(interaction: Interaction, now: datetime) -> Interaction:
    interaction.status = "ended"
    interaction.outcome = "abandoned"
    interaction.ended_at = now
    pending = db.session.scalars(
        sa.select(Reservation).where(
            Reservation.interaction_id == interaction.id, Reservation.status == "pending"
        )
    ).all()
    db.session.commit()
    store = get_store()
    if interaction.queue_id is not None:
        store.remove(interaction.queue_id, interaction.id)
    for reservation in pending:
        _return_offer(reservation, "revoked", "caller hung up", agent_free=True)
    log.info("interaction %s abandoned", interaction.id)
    return interaction


def _finish_wrapup_if_none(agent: User, interaction: Interaction) -> None:
    if (
        interaction.queue is not None
        and interaction.queue.wrapup_s == 0
        and agent.status == "wrapup"
    ):
        finish_wrapup(agent)


def _agent_interaction(agent: User, interaction_id: int) -> Interaction:
    interaction = db.session.get(Interaction, interaction_id, with_for_update=True)
    if interaction is None or interaction.agent_id != agent.id:
        raise NotFound("No such interaction for this agent.")
    return interaction


def complete(
    agent: User, interaction_id: int, disposition: str | None = None, notes: str | None = None
) -> Interaction:
    """The agent finishes an interaction: it ends (hanging up a live call) and wrap-up starts."""
    interaction = _agent_interaction(agent, interaction_id)
    now = utcnow()
    live_call = interaction.status in ("connecting", "active")
    if live_call:
        interaction.status = "ended"
        interaction.outcome = "answered"
        interaction.ended_at = now
        start = interaction.answered_at or interaction.created_at
        interaction.duration_s = int((now - start).total_seconds())
    if disposition is not None:
        interaction.disposition = disposition
    if notes is not None:
        interaction.notes = notes
    if agent.status == "busy":
        _set_agent(agent, "wrapup", now)
    db.session.commit()
    get_store().set_status(agent.id, agent.status)
    emit_to_agent(agent.id, "status", agent_status_payload(agent))
    if live_call and interaction.channel == "voice" and interaction.external_id:
        try:
            calls.hang_up(interaction.external_id)
        except TwilioRestException as exc:
            log.warning("could not hang up interaction %s: %s", interaction.id, exc.msg)
    return interaction


def wrapup_done(agent: User, interaction_id: int) -> User:
    """The agent ends wrap-up for an interaction and becomes available."""
    interaction = _agent_interaction(agent, interaction_id)
    if interaction.status != "ended":
        raise Conflict("The interaction has not ended yet.")
    if agent.status != "wrapup":
        raise Conflict("The agent is not in wrap-up.")
    return finish_wrapup(agent)


def finish_wrapup(agent: User) -> User:
    """Move an agent from wrap-up to available."""
    return set_agent_status(agent, "available")


def rebuild_state() -> dict[str, int]:
    """Rebuild all Redis routing state from the database (after a Redis restart or on demand)."""
    store = _store()
    with get_redis().lock(REBUILD_LOCK_KEY, timeout=120, blocking_timeout=120):
        store.clear()
        now = utcnow()
        pending = db.session.scalars(
            sa.select(Reservation).where(Reservation.status == "pending")
        ).all()
        for reservation in pending:
            # Offers in flight cannot be trusted after Redis lost them: return them to the queue.
            reservation.status = "revoked"
            reservation.reason = "routing state rebuilt"
            reservation.responded_at = now
            if reservation.interaction.status == "offered":
                reservation.interaction.status = "queued"
            if reservation.agent.status == "reserved":
                _set_agent(reservation.agent, "available", now)
        db.session.commit()
        waiting = db.session.scalars(
            sa.select(Interaction).where(Interaction.status == "queued")
        ).all()
        for interaction in waiting:
            if interaction.queue_id is not None:
                store.enqueue(interaction.queue_id, interaction.id, interaction.queue_score or 0.0)
        agents = db.session.scalars(sa.select(User)).all()
        for agent in agents:
            if agent.status == "available":
                store.set_available(
                    agent.id, eligible_queue_ids(agent), agent.status_since.timestamp()
                )
            else:
                store.set_status(agent.id, agent.status)
        store.mark_built()
    for reservation in pending:
        emit_to_agent(
            reservation.agent_id,
            "offer_revoked",
            {"reservation_id": reservation.id, "reason": "routing state rebuilt"},
        )
    queue_ids = db.session.scalars(sa.select(Queue.id)).all()
    for queue_id in queue_ids:
        dispatch_queue(queue_id)
    return {"waiting": len(waiting), "agents": len(agents), "revoked_offers": len(pending)}


def queue_position(interaction: Interaction) -> int | None:
    """Where a waiting interaction stands in its queue (1 = next)."""
    if interaction.queue_id is None:
        return None
    return get_store().position(interaction.queue_id, interaction.id)


def interaction_by_external_id(external_id: str) -> Interaction | None:
    """The interaction of a CallSid or Message-ID."""
    return db.session.scalar(sa.select(Interaction).where(Interaction.external_id == external_id))
