"""Routing services: enqueue, offer, accept, reject, time out, complete, wrap-up, rebuild.

The database is the record; Redis (RoutingStore) holds who waits where and who is free.
Reservations are made atomically in Redis (one Lua script), then recorded in the database;
everything else is committed to the database first and mirrored to Redis, so a rebuild
from the database always restores a consistent Redis.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import make_transient_to_detached
from twilio.base.exceptions import TwilioRestException

from contact_center import audit
from contact_center.agents.models import PRESENCES, AgentSkill, User
from contact_center.agents.services import can_read
from contact_center.board import live, metrics
from contact_center.customers.models import Customer
from contact_center.customers.services import (
    history,
    identify_caller,
    mask,
    screen_pop_for_caller,
    scrub,
)
from contact_center.db_types import isoformat, utcnow
from contact_center.errors import APIError, Conflict, NotFound
from contact_center.extensions import db
from contact_center.ivr import calls
from contact_center.realtime.events import emit_to_agent
from contact_center.redis_client import get_redis
from contact_center.routing import offers, policy
from contact_center.routing.models import (
    HOLDING_STATUSES,
    LIVE_STATUSES,
    Interaction,
    Queue,
    Reservation,
)
from contact_center.routing.store import (
    REBUILD_LOCK,
    TAG,
    NotBuilt,
    Offer,
    RoutingStore,
    idle_key,
    personal_key,
    waiting_key,
)
from contact_center.tickets.models import Ticket
from contact_center.tickets.services import refresh_call_summary

log = logging.getLogger(__name__)

SETTABLE_STATUSES = PRESENCES
FINAL_CALL_STATUSES = ("completed", "busy", "failed", "no-answer", "canceled")
DISCONNECT_GRACE_S = 30
STEP_RETRY_S = 2
MAX_MATCHES_PER_CALL = 1000
PREFERRED_AGENT_S = 20  # how long an interaction waits for its preferred agent
# How long a process trusts that the routing state is built before asking Redis again.
# Arrivals check exactly (inside their script); after a Redis restart other processes
# notice within this time and rebuild, which restores whatever they wrote meanwhile.
BUILT_CHECK_S = 1.0
# How long a process reuses the default queue's row (every call without an IVR flow needs
# it); a new default or a change to it (queue_changed) reaches other processes within this.
DEFAULT_QUEUE_CACHE_S = 1.0
# An offer Redis made whose database row has not appeared by its timeout: how long to wait
# for the row (a commit delayed by load; a dead process's row never comes), checking every
# UNRECORDED_OFFER_RECHECK_S. Longer than a request can wait for a pooled connection.
UNRECORDED_OFFER_GRACE_S = 60.0
UNRECORDED_OFFER_RECHECK_S = 2.0
# Twilio's errors for updating a call that has ended (20404: no such call in progress;
# 21220: invalid call state for this operation).
CALL_ENDED_CODES = (20404, 21220)
# How long a process reuses a queue's count of staffed agents (the estimated wait's input).
STAFFED_CACHE_S = 1.0
# Session.info key: this session created the default queue and may not have committed it.
CREATED_DEFAULT_QUEUE = "created_default_queue"


# ---------------------------------------------------------------- store and queues


def get_store() -> RoutingStore:
    """The routing store; rebuilds Redis from the database if Redis lost its state."""
    store = _store()
    if not store.is_built(max_age=BUILT_CHECK_S):
        rebuild_state()
    return store


def _store() -> RoutingStore:
    store = current_app.extensions.get("routing_store")
    if store is None:
        store = RoutingStore(get_redis())
        current_app.extensions["routing_store"] = store
    return store


def _sigs_key(queue_id: int) -> str:
    return f"{TAG}:sigs:{queue_id}"


def default_queue() -> Queue:
    """The queue calls go to before the IVR picks one; created on first use.

    Read from the database at most once every DEFAULT_QUEUE_CACHE_S per process; meanwhile
    each session gets its own copy of the row, without a query.
    """
    cached = current_app.extensions.get("default_queue")
    if cached is not None and time.monotonic() - cached[0] < DEFAULT_QUEUE_CACHE_S:
        return _session_copy(cached[1])
    query = sa.select(Queue).order_by(Queue.is_default.desc(), Queue.id).limit(1)
    queue = db.session.scalar(query)
    if queue is None:
        try:
            with db.session.begin_nested():  # concurrent first calls race to create it
                queue = Queue(name="General", channels=["voice", "email"], is_default=True)
                db.session.add(queue)
        except IntegrityError:
            return db.session.scalar(query)
        get_store()
        _admit_available_agents()
        # Not committed yet: statements on other connections must not rely on it.
        db.session.info[CREATED_DEFAULT_QUEUE] = queue.id
        return queue  # not cached: this transaction may still roll it back
    row = {attr.key: getattr(queue, attr.key) for attr in sa.inspect(Queue).column_attrs}
    current_app.extensions["default_queue"] = (time.monotonic(), row)
    return queue


def _session_copy(row: dict[str, Any]) -> Queue:
    """A queue row as a persistent, unmodified object of this session (no query)."""
    existing = db.session.identity_map.get(db.session.identity_key(Queue, row["id"]))
    if existing is not None:
        return existing
    # JSON values (lists, dicts) are this session's own to change; the rest is immutable.
    queue = Queue(
        **{k: copy.deepcopy(v) if isinstance(v, list | dict) else v for k, v in row.items()}
    )
    make_transient_to_detached(queue)  # as if loaded: no history, nothing to write
    db.session.add(queue)
    return queue


def create_queue(**fields: Any) -> Queue:
    """Create a queue (flushed, the caller commits) and let available agents who qualify wait."""
    queue = Queue(**fields)
    db.session.add(queue)
    db.session.flush()
    get_store()
    _admit_available_agents()
    return queue


def update_queue(queue: Queue, fields: dict[str, Any], actor_id: int) -> Queue:
    """Change a queue's settings (audited, committed); routing follows (queue_changed)."""
    if "name" in fields and fields["name"] != queue.name:
        taken = sa.select(Queue.id).where(Queue.name == fields["name"], Queue.id != queue.id)
        if db.session.scalar(taken):
            raise Conflict("A queue with that name exists.", fields={"name": ["Taken."]})
    changed = {key: value for key, value in fields.items() if getattr(queue, key) != value}
    if not changed:
        return queue
    before = {key: getattr(queue, key) for key in changed}
    for key, value in changed.items():
        setattr(queue, key, value)
    audit.record(
        "queue.updated", "queue", queue.id, actor_id=actor_id, before=before, after=changed
    )
    db.session.commit()
    queue_changed(queue)
    return queue


def _admit_available_agents() -> None:
    """Let every available agent wait on the pools they now serve (a new queue or signature).

    Uses the store as it is: this also runs inside a rebuild, which must not start another.
    """
    for agent in _available_agents():
        _make_available(agent)


def _all_queues() -> list[Queue]:
    return list(db.session.scalars(sa.select(Queue).order_by(Queue.id)))


def _available_agents() -> list[User]:
    return list(db.session.scalars(sa.select(User).where(User.presence == "available")))


# ---------------------------------------------------------------- pools


@dataclass(frozen=True)
class Membership:
    queue: Queue
    channel: str
    sig: str
    tier: int
    tier_count: int


def _tiers(queue: Queue, sig: str) -> list[policy.Requirement]:
    return policy.tiers(
        queue.required_skills or {},
        queue.teams or [],
        queue.overflow_steps or [],
        policy.parse_signature(sig),
    )


def _sigs(queue_id: int) -> list[str]:
    return ["", *sorted(s for s in _store().redis.smembers(_sigs_key(queue_id)) if s)]


def _extra_skills(interaction: Interaction, queue: Queue) -> dict[str, int]:
    own = interaction.required_skills or {}
    base = queue.required_skills or {}
    return {s: lv for s, lv in own.items() if int(lv) > int(base.get(s, 0))}


def _steps(queue: Queue) -> list[dict[str, Any]]:
    """A queue's overflow steps in the order they fire (step indices refer to this order)."""
    return sorted(queue.overflow_steps or [], key=lambda step: step.get("after_s", 0))


def _interaction_tier(interaction: Interaction, queue: Queue) -> int:
    return len(policy.relaxing_steps(_steps(queue)[: interaction.overflow_step]))


def _pool_of(interaction: Interaction) -> str:
    queue = interaction.queue
    sig = policy.signature(_extra_skills(interaction, queue))
    tier = min(_interaction_tier(interaction, queue), len(_tiers(queue, sig)) - 1)
    return policy.pool_name(queue.id, policy.capacity_channel(interaction.channel), sig, tier)


def _waiting_key_of(interaction: Interaction, now: datetime) -> str:
    if (
        interaction.preferred_agent_id
        and interaction.preferred_until
        and (interaction.preferred_until > now)
    ):
        return personal_key(
            interaction.preferred_agent_id, policy.capacity_channel(interaction.channel)
        )
    return waiting_key(_pool_of(interaction))


def _register_sig(queue: Queue, sig: str) -> None:
    """Remember a skill signature in use; agents who qualify join its pools at once."""
    if sig and _store().redis.sadd(_sigs_key(queue.id), sig):
        _admit_available_agents()


def memberships(agent: User) -> list[Membership]:
    """Every pool an agent serves: per queue, channel with capacity, signature, strictest tier."""
    levels = agent.skill_levels()
    capacity = agent.capacity or {}
    result = []
    for queue in _all_queues():
        for channel in queue.channels or []:
            if capacity.get(channel, 0) <= 0:
                continue
            for sig in _sigs(queue.id):
                requirements = _tiers(queue, sig)
                tier = policy.strictest_tier(requirements, levels, agent.team)
                if tier is not None:
                    result.append(Membership(queue, channel, sig, tier, len(requirements)))
    return result


def _make_available(agent: User, members: list[Membership] | None = None) -> None:
    """Put a free agent in the idle set of every pool they serve, scored by each strategy."""
    if agent.presence != "available":
        return
    store = _store()
    idle_since = (agent.idle_since or agent.status_since or utcnow()).timestamp()
    last_offer = agent.last_offer_at.timestamp() if agent.last_offer_at else 0.0
    scores = {}
    for m in memberships(agent) if members is None else members:
        load = store.load(agent.id, m.channel)
        pool = policy.pool_name(m.queue.id, m.channel, m.sig, m.tier)
        scores[idle_key(pool)] = policy.agent_score(
            m.queue.strategy, idle_since=idle_since, last_offer_at=last_offer, load=load
        )
    store.add_idle(agent.id, scores)


def _pools(queue: Queue) -> list[str]:
    """Every pool of a queue as it is configured now (channels, signatures, tiers)."""
    return [
        policy.pool_name(queue.id, channel, sig, tier)
        for channel in queue.channels or []
        for sig in _sigs(queue.id)
        for tier in range(len(_tiers(queue, sig)))
    ]


def _refresh_idle(agent: User, queues: list[Queue]) -> None:
    """Make an agent's idle sets what they serve now: out of the pools they no longer serve
    (or serve at another tier), into the ones they do (only while available)."""
    serving = set()
    if agent.presence == "available":
        serving = {
            idle_key(policy.pool_name(m.queue.id, m.channel, m.sig, m.tier))
            for m in memberships(agent)
        }
    stale = {idle_key(pool) for queue in queues for pool in _pools(queue)} - serving
    _store().remove_idle(agent.id, sorted(stale))
    _make_available(agent)


def agent_changed(agent: User) -> None:
    """After an agent's skills, team or capacity changed (committed): Redis follows at once,
    and a free agent gets any waiting work they now fit."""
    store = get_store()
    store.set_capacity(agent.id, agent.capacity or {})
    _refresh_idle(agent, _all_queues())
    _offer_agent(agent)


def queue_changed(queue: Queue) -> None:
    """After a queue's routing settings changed (committed): its waiting interactions move to
    the pools they now belong to, keeping their place, their next overflow step follows the
    new steps, free agents join the idle sets they now qualify for, and offers go out."""
    store = get_store()
    current_app.extensions.pop("default_queue", None)
    waiting = db.session.scalars(
        sa.select(Interaction).where(
            Interaction.queue_id == queue.id, Interaction.status == "queued"
        )
    ).all()
    for interaction in waiting:
        _register_sig(queue, policy.signature(_extra_skills(interaction, queue)))
        store.move(interaction.id, _waiting_key_of(interaction, utcnow()))
        store.cancel_timer(_step_timer(interaction, interaction.overflow_step))
        _schedule_next_step(interaction)
    queues = _all_queues()
    for agent in _available_agents():
        _refresh_idle(agent, queues)
    for pool in _pools(queue):
        _offer_pool(pool)


# ---------------------------------------------------------------- offers


def _expiry(queue: Queue | None, now: datetime) -> datetime:
    timeout = queue.offer_timeout_s if queue else current_app.config["OFFER_TIMEOUT_S"]
    return now + timedelta(seconds=timeout)


def _idle_keys(pool: str) -> list[str]:
    """The idle sets whose agents may take a pool's interactions (tiers 0..t)."""
    queue_id, channel, sig, tier = policy.parse_pool(pool)
    return [idle_key(policy.pool_name(queue_id, channel, sig, t)) for t in range(tier + 1)]


def _offer_pool(pool: str) -> list[Reservation]:
    """Offer a pool's waiting interactions to idle agents until one side runs out."""
    store = get_store()
    queue_id, channel, _sig, tier = policy.parse_pool(pool)
    queue = db.session.get(Queue, queue_id)
    if queue is None:
        return []
    idle_keys = _idle_keys(pool)
    offers = []
    for _ in range(MAX_MATCHES_PER_CALL):
        now = utcnow()
        offer = store.match_waiting(
            waiting_key(pool),
            idle_keys,
            channel=channel,
            voice_exclusive=not queue.allow_during_voice,
            reservation_id=str(uuid.uuid4()),
            now=now.timestamp(),
            expires=_expiry(queue, now).timestamp(),
        )
        if offer is None:
            break
        reservation = _record_offer(offer, step=f"tier {tier}")
        if reservation is not None:
            offers.append(reservation)
    return offers


def _free_for_work(agent: User) -> None:
    """A free agent joins the idle sets of the pools they serve and is offered the best work
    waiting there (the pools worked out once for both)."""
    members = memberships(agent) if agent.presence == "available" else []
    _make_available(agent, members)
    _offer_agent(agent, members)


def _offer_agent(agent: User, members: list[Membership] | None = None) -> Reservation | None:
    """Offer a free agent the best waiting interaction across all their pools."""
    if agent.presence != "available":
        return None
    store = get_store()
    members = memberships(agent) if members is None else members
    sources: list[tuple[str, str, bool, float]] = [
        (personal_key(agent.id, channel), channel, True, 1e9)
        for channel, cap in (agent.capacity or {}).items()
        if cap > 0
    ]
    for m in members:
        for tier in range(m.tier, m.tier_count):
            key = waiting_key(policy.pool_name(m.queue.id, m.channel, m.sig, tier))
            sources.append((key, m.channel, not m.queue.allow_during_voice, m.queue.weight))
    for _ in range(10):  # a stale head (hung up meanwhile) is dropped and the next one tried
        now = utcnow()
        offer = store.match_agent(
            agent.id,
            sources,
            reservation_id=str(uuid.uuid4()),
            now=now.timestamp(),
            expires=(now + timedelta(seconds=current_app.config["OFFER_TIMEOUT_S"])).timestamp(),
        )
        if offer is None:
            return None
        reservation = _record_offer(offer, step="agent free")
        if reservation is not None:
            return reservation
    return None


def _record_offer(offer: Offer, *, step: str) -> Reservation | None:
    """Record a reservation Redis made; undo it if the database says it cannot stand."""
    # Timed once the script has run, not before: under load the script may run long after
    # a time read before it, and the offer it closed for another agent (its time read
    # before its own script) would then seem to overlap this one.
    now = utcnow()
    if offer.waiting_key.startswith(f"{TAG}:pw:"):
        step = "preferred agent"
    decision = {
        "step": step,
        "pool": offer.waiting_key,
        "score": offer.score,
        "candidates": _candidates(offer),
        "stale_skipped": offer.why.get("stale_skipped", 0),
    }
    if db.engine.dialect.name == "postgresql":
        try:
            reservation, interaction, agent = offers.record(
                offer.reservation_id,
                offer.interaction_id,
                offer.agent_id,
                now,
                default_timeout_s=current_app.config["OFFER_TIMEOUT_S"],
                decision=decision,
            )
        except offers.Refused as refused:
            _refuse_offer(offer, now, refused.interaction_status, refused.agent_row)
            return None
    else:
        recorded = _record_offer_orm(offer, now, decision)
        if recorded is None:
            return None
        reservation, interaction, agent = recorded
    _commit_keeping(reservation, interaction, interaction.queue, agent)
    # The script timed the offer with the default timeout; the queue's own one wins.
    _store().add_timer(f"offer:{reservation.id}", reservation.expires_at.timestamp())
    emit_to_agent(agent.id, "offer", offer_payload(reservation))
    _emit_status(agent)
    return reservation


def _record_offer_orm(
    offer: Offer, now: datetime, decision: dict[str, Any]
) -> tuple[Reservation, Interaction, User] | None:
    """The offer's checks and writes through the ORM (where offers.record cannot run)."""
    # Fresh from the locked rows, whatever this session holds (it may have kept its values
    # over a commit): only the database can say the interaction still waits.
    interaction = db.session.get(
        Interaction, offer.interaction_id, with_for_update=True, populate_existing=True
    )
    if interaction is None or interaction.status != "queued":
        _refuse_offer(offer, now, interaction.status if interaction else None, None)
        return None
    agent = db.session.get(User, offer.agent_id, with_for_update=True, populate_existing=True)
    if agent is None or agent.presence != "available":
        known = agent is not None
        agent_row = {"presence": agent.presence, "capacity": agent.capacity} if known else None
        _refuse_offer(offer, now, "queued", agent_row)
        return None
    queue = interaction.queue
    reservation = Reservation(
        id=offer.reservation_id,
        interaction_id=interaction.id,
        agent_id=agent.id,
        status="pending",
        created_at=now,
        expires_at=_expiry(queue, now),
        decision={
            **decision,
            "strategy": queue.strategy,
            "queue": queue.name,
            "waited_s": _waited_s(interaction, now),
        },
    )
    _derive_status(agent, now, offering=True)
    db.session.add(reservation)
    interaction.status = "offered"
    interaction.offered_at = now
    agent.last_offer_at = now
    return reservation, interaction, agent


def _refuse_offer(
    offer: Offer, now: datetime, interaction_status: str | None, agent_row: dict | None
) -> None:
    """Undo a reservation the database will not have, and put Redis right."""
    db.session.rollback()
    store = _store()
    if interaction_status != "queued":
        # "offered" here means a closing offer has put it back in Redis but not yet committed
        # "queued": it is still waiting, so it goes back; any other status means it is gone.
        still_waiting = interaction_status == "offered"
        store.resolve(offer.reservation_id, "revoked", now.timestamp(), requeue=still_waiting)
        return
    store.resolve(offer.reservation_id, "revoked", now.timestamp(), requeue=True)
    if agent_row is not None:  # Redis thought them available: correct it
        store.set_agent(offer.agent_id, agent_row["presence"], agent_row["capacity"] or {})


def _commit_keeping(*rows: Any) -> None:
    """Commit, expiring every object of the session but `rows`, which keep what this
    transaction wrote: the events and the next offer that follow read them, where reading
    them back would cost a round trip each (four before an offer rings)."""
    session = db.session()
    expire_on_commit, session.expire_on_commit = session.expire_on_commit, False
    try:
        session.commit()
    finally:
        session.expire_on_commit = expire_on_commit
    kept = {id(row) for row in rows}
    for obj in list(session.identity_map.values()):
        if id(obj) not in kept:
            session.expire(obj)


def _candidates(offer: Offer) -> list[dict[str, Any]]:
    candidates = offer.why.get("candidates") or []
    if candidates and isinstance(candidates, list):
        return [
            {"id": int(c[0]), "score": c[1], "tier_or_set": c[2]}
            for c in candidates
            if isinstance(c, list) and len(c) == 3
        ]
    return []


def _reoffer(key: str) -> list[Reservation]:
    """Try to place whatever waits in `key` (a pool or an agent's personal set)."""
    prefix_pool, prefix_personal = f"{TAG}:w:", f"{TAG}:pw:"
    if key.startswith(prefix_pool):
        return _offer_pool(key[len(prefix_pool) :])
    if key.startswith(prefix_personal):
        agent = db.session.get(User, int(key[len(prefix_personal) :].split(":")[0]))
        offer = _offer_agent(agent) if agent is not None else None
        return [offer] if offer else []
    return []


def _waited_s(interaction: Interaction, now: datetime) -> int:
    start = interaction.enqueued_at or interaction.created_at
    return max(0, int((now - start).total_seconds()))


# ---------------------------------------------------------------- payloads


def interaction_payload(interaction: Interaction) -> dict[str, Any]:
    """The interaction as events and the API show it."""
    return {
        "id": interaction.id,
        "channel": interaction.channel,
        "direction": interaction.direction,
        "status": interaction.status,
        "queue": interaction.queue.name if interaction.queue else None,
        "queue_id": interaction.queue_id,
        "from": interaction.from_address,
        "customer_id": interaction.customer_id,
        "agent_id": interaction.agent_id,
        "priority": interaction.priority,
        "required_skills": interaction.required_skills or {},
        "waited_s": _waited_s(interaction, interaction.answered_at or utcnow()),
        "created_at": isoformat(interaction.created_at),
        "enqueued_at": isoformat(interaction.enqueued_at),
        "offered_at": isoformat(interaction.offered_at),
        "answered_at": isoformat(interaction.answered_at),
        "ended_at": isoformat(interaction.ended_at),
        "ringing_at": isoformat(interaction.ringing_at),
        "connected_at": isoformat(interaction.connected_at),
        "agent_ringing_at": isoformat(interaction.agent_ringing_at),
        "agent_connected_at": isoformat(interaction.agent_connected_at),
        "wrapup_until": isoformat(interaction.wrapup_until),
        "outcome": interaction.outcome,
        "disposition": interaction.disposition,
        "duration_s": interaction.duration_s,
        "on_hold": interaction.on_hold,
        "hold_s": interaction.hold_s,
        "recording_paused": interaction.recording_paused,
        "ticket_id": interaction.ticket_id,
        "consult_agent_id": interaction.consult_agent_id,
    }


def can_read_interaction(user: User, interaction: Interaction) -> bool:
    """Whether `user` may read the interaction (a restricted queue's: see can_read)."""
    return can_read(user, interaction.queue_id, interaction.agent_id)


def handled_by(user: User, interaction_id: int) -> Interaction:
    """The interaction, if `user` holds it as its agent or is a supervisor; else 404."""
    interaction = db.session.get(Interaction, interaction_id)
    if interaction is None or not (user.has_role("supervisor") or interaction.agent_id == user.id):
        raise NotFound("No such interaction.")
    return interaction


def identify(interaction: Interaction, customer: Customer, actor_id: int) -> Interaction:
    """Set the interaction's customer (and its ticket's, if that has none); audited."""
    before = interaction.customer_id
    interaction.customer_id = customer.id
    ticket = db.session.get(Ticket, interaction.ticket_id) if interaction.ticket_id else None
    if ticket is not None and ticket.customer_id is None:
        ticket.customer_id = customer.id
    audit.record(
        "interaction.identified",
        "interaction",
        interaction.id,
        actor_id=actor_id,
        before={"customer_id": before},
        after={"customer_id": customer.id},
    )
    db.session.commit()
    return interaction


def screen_pop(interaction: Interaction, reader: User) -> dict[str, Any]:
    """The customer's history for an interaction (the interaction itself left out), as
    `reader` may see it."""
    if interaction.customer_id is not None:  # by id: the screen pop reads it in one statement
        return history(interaction.customer_id, interaction.id, reader)
    return screen_pop_for_caller(interaction.from_address, interaction.id, reader)


def offer_payload(reservation: Reservation) -> dict[str, Any]:
    """The `offer` event: the interaction and the caller's screen pop, together."""
    interaction = reservation.interaction
    return {
        "reservation_id": reservation.id,
        "expires_at": isoformat(reservation.expires_at),
        "server_time": isoformat(utcnow()),
        "timeout_s": round((reservation.expires_at - reservation.created_at).total_seconds()),
        "interaction": interaction_payload(interaction),
        "screen_pop": screen_pop(interaction, reservation.agent),
    }


def held_interactions(agent: User) -> list[dict[str, Any]]:
    """The work an agent holds (live or in wrap-up), as the console shows it on (re)connect."""
    interactions = db.session.scalars(
        sa.select(Interaction)
        .where(Interaction.agent_id == agent.id, Interaction.status.in_(HOLDING_STATUSES))
        .order_by(Interaction.answered_at, Interaction.id)
    ).all()
    result = []
    for interaction in interactions:
        accepted = db.session.scalar(
            sa.select(Reservation.id).where(
                Reservation.interaction_id == interaction.id,
                Reservation.agent_id == agent.id,
                Reservation.status == "accepted",
            )
        )
        result.append(
            {
                "reservation_id": accepted,
                "interaction": interaction_payload(interaction),
                "screen_pop": screen_pop(interaction, agent),
            }
        )
    handed_on = db.session.scalars(
        sa.select(Interaction).where(
            Interaction.handoff_agent_id == agent.id,
            Interaction.handoff_wrapup_until.is_not(None),
            Interaction.agent_id.is_distinct_from(agent.id),
        )
    ).all()
    for interaction in handed_on:
        result.append(
            {
                "reservation_id": None,
                "interaction": handoff_view(interaction, agent),
                "screen_pop": screen_pop(interaction, agent),
            }
        )
    return result


def handoff_view(interaction: Interaction, agent: User) -> dict[str, Any]:
    """An interaction as the agent who handed it on sees it: in their wrap-up, then ended."""
    payload = interaction_payload(interaction)
    in_wrapup = (
        interaction.handoff_agent_id == agent.id and interaction.handoff_wrapup_until is not None
    )
    payload.update(
        agent_id=agent.id,
        status="wrapup" if in_wrapup else "ended",
        outcome="transferred",
        wrapup_until=isoformat(interaction.handoff_wrapup_until) if in_wrapup else None,
    )
    return payload


def pending_offer(agent: User) -> Reservation | None:
    """The agent's ringing offer, if any."""
    return db.session.scalar(
        sa.select(Reservation).where(
            Reservation.agent_id == agent.id, Reservation.status == "pending"
        )
    )


def _emit_interaction(interaction: Interaction) -> None:
    """Tell the agent holding an interaction that its status changed."""
    if interaction.agent_id is not None:
        emit_to_agent(interaction.agent_id, "interaction_updated", interaction_payload(interaction))


def interaction_joined(interaction: Interaction) -> None:
    """The caller's leg joined the conference: the conversation is live."""
    if interaction.status != "connecting":
        return
    interaction.status = "active"
    interaction.answered_at = interaction.answered_at or utcnow()
    db.session.commit()
    _emit_interaction(interaction)


def agent_status_payload(agent: User) -> dict[str, Any]:
    """The `status` event."""
    payload = {
        "status": agent.status,
        "presence": agent.presence,
        "since": isoformat(agent.status_since),
    }
    if agent.status_reason:
        payload["reason"] = agent.status_reason
    return payload


def revoked_payload(reservation: Reservation, reason: str) -> dict[str, Any]:
    """The `offer_revoked` event: which offer, why, and when it was taken back."""
    return {
        "reservation_id": reservation.id,
        "reason": reason,
        "revoked_at": isoformat(reservation.responded_at or utcnow()),
    }


def reservation_payload(reservation: Reservation) -> dict[str, Any]:
    """A reservation with its decision record: why this agent."""
    return {
        "id": reservation.id,
        "agent_id": reservation.agent_id,
        "agent": reservation.agent.display_name if reservation.agent else None,
        "status": reservation.status,
        "created_at": isoformat(reservation.created_at),
        "expires_at": isoformat(reservation.expires_at),
        "responded_at": isoformat(reservation.responded_at),
        "reason": reservation.reason,
        "decision": reservation.decision or {},
    }


# ---------------------------------------------------------------- agent state


def _derive_status(agent: User, now: datetime, *, offering: bool = False) -> None:
    """What the agent is doing: busy > reserved > wrap-up > their chosen presence."""
    db.session.flush()  # derived from the rows: this transaction's changes count
    status = db.session.scalar(
        sa.select(offers.derived_status(agent.id, agent.presence, offering=offering))
    )
    if status != agent.status:
        agent.status = status
        agent.status_since = now


def _wait_ended(interaction: Interaction, outcome: str, now: datetime) -> None:
    """The board's count of a wait that ended: answered, abandoned, or gone another way."""
    if interaction.queue is not None:
        live.wait_ended(
            interaction.queue_id,
            interaction.id,
            outcome=outcome,
            waited_s=(now - (interaction.enqueued_at or interaction.created_at)).total_seconds(),
            threshold_s=metrics.sl_threshold_s(interaction.queue),
        )


def _emit_status(agent: User) -> None:
    """The agent's status to their consoles and to every supervisor's board."""
    emit_to_agent(agent.id, "status", agent_status_payload(agent))
    live.agent_changed(agent)


def set_agent_status(agent: User, status: str, reason: str | None = None) -> User:
    """Change an agent's presence; going available starts offers flowing."""
    if status not in PRESENCES:
        raise APIError(422, f"Status must be one of {', '.join(PRESENCES)}.")
    store = get_store()
    now = utcnow()
    _staffing_changed()
    became_available = status == "available" and agent.presence != "available"
    agent.presence = status
    agent.status_reason = None if status == "available" else reason
    if became_available:
        agent.idle_since = now
    _derive_status(agent, now)
    db.session.commit()
    store.set_agent(agent.id, status, agent.capacity or {})
    if status != "available":
        revoke_pending_offer(agent, f"agent went {status}")
    else:
        store.reset_missed(agent.id)
        _make_available(agent)
    _emit_status(agent)
    if status == "available":
        _offer_agent(agent)
    return agent


def revoke_pending_offer(agent: User, reason: str) -> Reservation | None:
    """Take back an agent's ringing offer; the interaction returns to its place."""
    reservation = pending_offer(agent)
    if reservation is None:
        return None
    return _close_offer(reservation, "revoked", reason, missed=False)


def _close_offer(
    reservation: Reservation, outcome: str, reason: str, *, missed: bool
) -> Reservation | None:
    """Close a pending offer that was not accepted and put the interaction back in its place."""
    now = utcnow()
    resolved = _store().resolve(
        reservation.id, outcome, now.timestamp(), requeue=True, missed=missed
    )
    if resolved is None:
        # Another process resolved it first (an accept racing a timeout): it decides.
        db.session.rollback()
        return None
    interaction = reservation.interaction
    agent = reservation.agent
    reservation.status = outcome
    reservation.responded_at = now
    reservation.reason = reason
    if interaction.status == "offered":
        interaction.status = "queued"
    # A transfer to one agent is offered to them once; declined or missed, the queue takes it.
    single_offer = interaction.preferred_single_offer and resolved.waiting_key.startswith(
        f"{TAG}:pw:"
    )
    if outcome in ("rejected", "timeout"):
        agent.idle_since = now  # the agent goes to the back of the idle line
    queue = interaction.queue
    limit = queue.max_missed_offers if queue else 2
    if missed and resolved.missed >= limit > 0:
        _staffing_changed()
        agent.presence = "away"
        agent.status_reason = f"missed {resolved.missed} offers in a row"
        _store().set_agent(agent.id, "away", agent.capacity or {})
    _derive_status(agent, now)
    db.session.commit()
    emit_to_agent(agent.id, "offer_revoked", revoked_payload(reservation, reason))
    if missed:
        live.offer_missed(agent.id)
    _emit_status(agent)
    _make_available(agent)
    if single_offer and interaction.status == "queued" and _end_preference(interaction):
        _offer_placed(interaction)
    else:
        _reoffer(resolved.waiting_key)
    _offer_agent(agent)
    return reservation


def _lock_reservation(reservation_id: str) -> Reservation | None:
    """Lock an offer's interaction, then the offer: the order every path locks them in."""
    reservation = db.session.get(Reservation, reservation_id)
    if reservation is None:
        return None
    db.session.get(Interaction, reservation.interaction_id, with_for_update=True)
    return db.session.get(Reservation, reservation_id, with_for_update=True, populate_existing=True)


def _pending_reservation(reservation_id: str, agent: User) -> Reservation:
    reservation = _lock_reservation(reservation_id)
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
    if _store().resolve(reservation.id, "accepted", now.timestamp(), requeue=False) is None:
        raise Conflict("The offer is no longer pending.")
    interaction = reservation.interaction
    reservation.status = "accepted"
    reservation.responded_at = now
    # A call is live once the caller joins the conference; other channels are live at once.
    calling = interaction.channel in ("voice", "callback")
    interaction.status = "connecting" if calling else "active"
    interaction.agent_id = agent.id
    interaction.answered_at = now
    _derive_status(agent, now)
    # What follows (events, the call's legs, the next offer) reads these rows as written.
    _commit_keeping(reservation, interaction, interaction.queue, agent)
    emit_to_agent(
        agent.id, "assigned", {"interaction_id": interaction.id, "reservation_id": reservation.id}
    )
    _emit_interaction(interaction)
    live.work_started(agent.id, interaction.id, interaction.channel)
    _emit_status(agent)
    if interaction.channel == "voice" and interaction.external_id:
        if not _connect_call(interaction, reservation, agent):
            _caller_gone(interaction, now)
            raise Conflict("The caller hung up before the call could be connected.")
    elif interaction.channel == "callback":
        _place_callback(interaction, reservation, agent)
    # Counted once the caller is on their way to the agent: a caller who hung up as the
    # agent accepted was not answered, on the board as in the reports.
    _wait_ended(interaction, "answered", now)
    # Capacity left on other channels (email alongside email, say) keeps work coming.
    _free_for_work(agent)
    return interaction


def _connect_call(interaction: Interaction, reservation: Reservation, agent: User) -> bool:
    """Redirect the caller into the conference and dial the agent; False when the caller's
    call has already ended (Twilio will not redirect it)."""
    connect_path = f"/webhooks/twilio/voice/connect/{reservation.id}"
    try:
        calls.redirect_call(interaction.external_id, calls.public_url(f"{connect_path}?leg=caller"))
    except TwilioRestException as exc:
        if exc.status == 404 or exc.code in CALL_ENDED_CODES:
            return False
        # Anything else (Twilio briefly failing): the caller's status callback decides.
        log.warning("could not connect interaction %s: %s", interaction.id, scrub(exc.msg))
        return True
    try:
        interaction.agent_call_sid = calls.dial(
            agent.call_address(),
            calls.public_url(f"{connect_path}?leg=agent"),
            calls.public_url("/webhooks/twilio/voice/status"),
        )
        _commit_keeping(interaction, interaction.queue, reservation, agent)
    except TwilioRestException as exc:
        log.warning("could not dial the agent of %s: %s", interaction.id, scrub(exc.msg))
    return True


def _caller_gone(interaction: Interaction, now: datetime) -> None:
    """The caller hung up while their agent accepted: abandoned, not answered; the agent is
    free at once (no wrap-up for a call that never was)."""
    interaction.answered_at = None
    _end(interaction, "abandoned", 0, wrapup=False)
    _wait_ended(interaction, "abandoned", now)


def _place_callback(interaction: Interaction, reservation: Reservation, agent: User) -> None:
    """A callback: the agent is called into the conference first, then the customer."""
    connect_path = f"/webhooks/twilio/voice/connect/{reservation.id}"
    status_url = calls.public_url("/webhooks/twilio/voice/status")
    try:
        interaction.agent_call_sid = calls.dial(
            agent.call_address(),
            calls.public_url(f"{connect_path}?leg=agent"),
            status_url,
        )
        interaction.external_id = calls.dial(
            interaction.from_address or "",
            calls.public_url(f"{connect_path}?leg=caller"),
            status_url,
        )
        _commit_keeping(interaction, interaction.queue, reservation, agent)
    except TwilioRestException as exc:
        log.warning("could not place callback %s: %s", interaction.id, scrub(exc.msg))


def reject(agent: User, reservation_id: str, reason: str | None = None) -> Reservation:
    """Decline an offer: the interaction goes back to its place and is offered again."""
    reservation = _pending_reservation(reservation_id, agent)
    closed = _close_offer(reservation, "rejected", reason or "rejected by agent", missed=False)
    if closed is None:
        raise Conflict("The offer is no longer pending.")
    return closed


def offer_timed_out(timer: str) -> Reservation | None:
    """An offer nobody answered: back to its place; the agent is set away after N misses.

    `timer` is the reservation id, then (once its row was found missing) when to give up
    waiting for the row.
    """
    reservation_id, _, give_up = timer.partition(":")
    reservation = _lock_reservation(reservation_id)
    if reservation is None:
        # Redis reserved but the database has no row yet. Its process may still be recording
        # it (a slow commit under load): requeueing now would let another agent be offered
        # the call while this offer stands. Look again shortly; only when the row has not
        # come within UNRECORDED_OFFER_GRACE_S (that process died) return the call.
        db.session.rollback()
        now = utcnow().timestamp()
        deadline = float(give_up) if give_up else now + UNRECORDED_OFFER_GRACE_S
        if now < deadline:
            _store().add_timer(
                f"offer:{reservation_id}:{deadline}", now + UNRECORDED_OFFER_RECHECK_S
            )
            return None
        _store().resolve(reservation_id, "timeout", now, requeue=True)
        return None
    if reservation.status != "pending":
        return None
    return _close_offer(reservation, "timeout", "offer timed out", missed=True)


def agent_connected(agent: User) -> None:
    """Count a console socket; a reconnect within the grace period restores the agent."""
    store = get_store()
    first = store.sockets(agent.id, +1, web_process()) == 1
    store.cancel_timer(f"disconnect:{agent.id}")
    if first and agent.presence == "available":
        store.set_agent(agent.id, agent.presence, agent.capacity or {})
        _free_for_work(agent)


def agent_disconnected(agent: User) -> None:
    """When an agent's last console closes, their ringing offer goes back at once.

    Routing stops offering them work now; their presence turns offline only if no console
    comes back within the grace period (a page reload keeps them available).
    """
    if get_store().sockets(agent.id, -1, web_process()) > 0:
        return
    _last_console_gone(agent)


def _last_console_gone(agent: User) -> None:
    store = get_store()
    store.set_agent(agent.id, "disconnected", agent.capacity or {})
    revoke_pending_offer(agent, "agent disconnected")
    store.add_timer(f"disconnect:{agent.id}", utcnow().timestamp() + DISCONNECT_GRACE_S)


def web_process() -> str | None:
    """This web process's name in the socket counts, once it beats (gunicorn workers do;
    a single embedded process has no one to outlive it)."""
    return current_app.extensions.get("web_process")


def web_process_beat(name: str) -> None:
    """This web process is alive: its consoles' sockets count."""
    current_app.extensions["web_process"] = name
    _store().process_alive(name, time.time())


def reap_silent_web_processes(now: float | None = None) -> int:
    """Take the console sockets of web processes silent for WEB_PROCESS_SILENT_S (killed,
    or their machine lost) off the counts: an agent left with no console is disconnected,
    as when a console closes. Returns how many processes were reaped."""
    store = _store()
    since = (now or time.time()) - current_app.config["WEB_PROCESS_SILENT_S"]
    silent = store.silent_processes(since)
    for process in silent:
        for agent_id in store.reap_process(process, since):
            agent = db.session.get(User, agent_id)
            if agent is not None:
                log.warning("agent %s lost their console with web process %s", agent_id, process)
                _last_console_gone(agent)
    return len(silent)


def _disconnect_grace_over(agent_id: int) -> None:
    agent = db.session.get(User, agent_id)
    if agent is None or _store().sockets(agent_id, 0) > 0 or agent.presence == "offline":
        return
    set_agent_status(agent, "offline", "disconnected")


# ---------------------------------------------------------------- interactions


def receive_call(
    call_sid: str,
    from_number: str | None,
    to_number: str | None,
    *,
    ivr_flow_id: int | None = None,
    queue_now: bool = True,
    queue: Queue | None = None,
) -> Interaction:
    """Stage an incoming call (added, not flushed): queued at once, or in the IVR.

    The webhook has found no answer stored for this CallSid, and a call and its answer are
    committed together, so the call is new; a concurrent delivery of the same call loses on
    the unique CallSid when the session flushes.
    """
    customer = identify_caller(from_number)
    interaction = new_call(
        call_sid,
        from_number,
        to_number,
        customer,
        ivr_flow_id=ivr_flow_id,
        queue=(queue or default_queue()) if queue_now else None,
    )
    db.session.add(interaction)
    return interaction


def new_call(
    call_sid: str,
    from_number: str | None,
    to_number: str | None,
    customer: Customer | None,
    *,
    ivr_flow_id: int | None = None,
    queue: Queue | None = None,
) -> Interaction:
    """An incoming call as a new Interaction, not in the session: waiting in `queue`, or in
    the IVR when there is none. (The webhook's fast path writes it without the ORM.)"""
    interaction = Interaction(
        channel="voice",
        direction="inbound",
        external_id=call_sid,
        from_address=from_number,
        to_address=to_number,
        customer_id=customer.id if customer else None,
        customer=customer,
        required_skills={},
        status="ivr",
        ivr_flow_id=ivr_flow_id,
    )
    if queue is not None:
        queue_waiting(interaction, queue)
    return interaction


def queue_waiting(
    interaction: Interaction, queue: Queue, *, priority: int = 0, skills: dict | None = None
) -> None:
    """Stage an interaction as waiting in a queue (the caller commits, then `enqueue`s)."""
    now = utcnow()
    customer = interaction.customer
    interaction.queue_id = queue.id
    interaction.queue = queue
    interaction.priority = priority
    interaction.required_skills = policy.merge_skills(
        interaction.required_skills or {}, skills or {}
    )
    interaction.status = "queued"
    interaction.enqueued_at = now
    interaction.queue_entered_at = now
    interaction.overflow_step = 0  # the new queue's steps count from now
    interaction.preferred_single_offer = False
    interaction.queue_score = policy.queue_score(
        now, priority=priority, customer_tier=customer.tier if customer else None
    )
    owner = customer.owner if customer is not None else None
    if owner is not None and owner.presence == "available":
        # The account owner gets first refusal, but only while signed in and free.
        interaction.preferred_agent_id = owner.id
        interaction.preferred_until = now + timedelta(seconds=PREFERRED_AGENT_S)


def stage_interaction(
    *,
    channel: str,
    queue: Queue,
    external_id: str | None = None,
    priority: int = 0,
    required_skills: dict[str, int] | None = None,
    customer_tier: str | None = None,
    complaint: bool = False,
    preferred_agent_id: int | None = None,
    preferred_for_s: int = PREFERRED_AGENT_S,
    from_address: str | None = None,
    customer_id: int | None = None,
    deadline: datetime | None = None,
    ticket_id: int | None = None,
) -> Interaction:
    """Stage a new queued interaction; once the caller commits, `enqueue` places it."""
    now = utcnow()
    interaction = Interaction(
        channel=channel,
        direction="inbound",
        external_id=external_id,
        from_address=from_address,
        customer_id=customer_id,
        queue_id=queue.id,
        priority=priority,
        required_skills=dict(required_skills or {}),
        is_complaint=complaint,
        status="queued",
        enqueued_at=now,
        queue_entered_at=now,
        queue_score=policy.queue_score(
            now,
            priority=priority,
            customer_tier=customer_tier,
            complaint=complaint,
            deadline=deadline if queue.ordering == "deadline" else None,
        ),
        preferred_agent_id=preferred_agent_id,
        preferred_until=now + timedelta(seconds=preferred_for_s) if preferred_agent_id else None,
        ticket_id=ticket_id,
    )
    db.session.add(interaction)
    return interaction


def create_interaction(**fields: Any) -> Interaction:
    """Record a new queued interaction (committed) and place it in routing."""
    interaction = stage_interaction(**fields)
    db.session.commit()
    enqueue(interaction)
    return interaction


def enqueue(interaction: Interaction) -> list[Reservation]:
    """Mirror a committed, queued interaction into Redis and offer it if an agent is free.

    One script places it, arms its timers, logs it and offers it to the best idle agent of
    its pool. An interaction waiting for its preferred agent is offered to that agent alone.
    """
    store = get_store()
    if interaction.status != "queued" or interaction.queue_id is None:
        return []
    # On the board before it can be offered, so an answer can never precede it there.
    live.wait_started(
        interaction.queue_id, interaction.id, interaction.enqueued_at or interaction.created_at
    )
    now = utcnow()
    key, timers = _placement(interaction, now)
    pool = key[len(f"{TAG}:w:") :] if key.startswith(f"{TAG}:w:") else None
    queue = interaction.queue
    try:
        offer = store.enqueue_and_match(
            key,
            interaction.id,
            interaction.queue_score or 0.0,
            queue_id=interaction.queue_id,
            timers=timers,
            idle_keys=_idle_keys(pool) if pool is not None else [],
            channel=policy.capacity_channel(interaction.channel),
            voice_exclusive=not queue.allow_during_voice,
            reservation_id=str(uuid.uuid4()),
            now=now.timestamp(),
            expires=_expiry(queue, now).timestamp(),
        )
    except NotBuilt:
        # Redis lost its state: the rebuild places every queued interaction (this one is
        # committed) and offers them to whoever is free. The event log survives a rebuild.
        store.event("enqueued", interaction=interaction.id, queue=interaction.queue_id)
        rebuild_state()
        return []
    if pool is None:
        return _reoffer(key)
    if offer is None:
        return []
    tier = policy.parse_pool(pool)[3]
    reservation = _record_offer(offer, step=f"tier {tier}")
    if reservation is not None and offer.waiting_left == 0:
        return [reservation]  # nothing else waits there: no other match to look for
    offers = [reservation] if reservation is not None else []
    # Then whatever else the pool can place now, as after any match.
    return offers + _offer_pool(pool)


def _placement(interaction: Interaction, now: datetime) -> tuple[str, dict[str, float]]:
    """The waiting set a queued interaction goes to and the timers it arms {name: due}."""
    queue = interaction.queue
    _register_sig(queue, policy.signature(_extra_skills(interaction, queue)))
    key = _waiting_key_of(interaction, now)
    timers = {}
    if key.startswith(f"{TAG}:pw:"):
        timers[f"preferred:{interaction.id}"] = interaction.preferred_until.timestamp()
    step = _next_step_timer(interaction)
    if step is not None:
        timers[step[0]] = step[1]
    return key, timers


def _place(interaction: Interaction) -> str:
    """Put a queued interaction in its waiting set and arm its timers (no offer)."""
    key, timers = _placement(interaction, utcnow())
    _store().enqueue(key, interaction.id, interaction.queue_score or 0.0, timers)
    return key


def _offer_placed(interaction: Interaction) -> list[Reservation]:
    key = _store().location(interaction.id)
    return _reoffer(key) if key is not None else []


def _step_timer(interaction: Interaction, index: int) -> str:
    # The queue is in the name: a step of a queue the interaction has left never fires.
    return f"step:{interaction.id}:{interaction.queue_id}:{index}"


def _next_step_timer(
    interaction: Interaction, delay_s: float | None = None
) -> tuple[str, float] | None:
    """The timer (name, due) of an interaction's next overflow step, if it has one left."""
    steps = _steps(interaction.queue)
    index = interaction.overflow_step
    if index >= len(steps):
        return None
    if delay_s is None:
        base = interaction.queue_entered_at or interaction.enqueued_at or interaction.created_at
        due = base.timestamp() + float(steps[index].get("after_s", 0))
    else:
        due = utcnow().timestamp() + delay_s
    return _step_timer(interaction, index), due


def _schedule_next_step(interaction: Interaction, delay_s: float | None = None) -> None:
    timer = _next_step_timer(interaction, delay_s)
    if timer is not None:
        _store().add_timer(*timer)


def _overflow_step(interaction_id: int, queue_id: int, index: int) -> None:
    """Apply an overflow step: widen who qualifies, or move to another queue keeping the place."""
    store = _store()
    interaction = db.session.get(Interaction, interaction_id, with_for_update=True)
    if interaction is None or interaction.queue_id != queue_id:
        return
    if interaction.overflow_step != index or interaction.status not in ("queued", "offered"):
        return
    if index >= len(_steps(interaction.queue)):
        return  # the queue's steps were changed since this timer was set (queue_changed)
    if interaction.status == "offered" or store.location(interaction.id) is None:
        # Ringing now: decide again shortly, when the offer has been answered or timed out.
        db.session.rollback()
        _schedule_next_step(interaction, delay_s=STEP_RETRY_S)
        return
    step = _steps(interaction.queue)[index]
    target = None
    if step.get("queue"):
        target = db.session.scalar(sa.select(Queue).where(Queue.name == step["queue"]))
    left_queue_id = interaction.queue_id
    if target is not None and target.id != interaction.queue_id:
        interaction.queue_id = target.id
        interaction.queue = target
        interaction.overflow_step = 0
        interaction.queue_entered_at = utcnow()
    else:
        interaction.overflow_step = index + 1
    new_key = _waiting_key_of(interaction, utcnow())
    # Move in Redis first: if a match took it meanwhile, the step waits for its return.
    if not store.move(interaction.id, new_key):
        db.session.rollback()
        _schedule_next_step(interaction, delay_s=STEP_RETRY_S)
        return
    db.session.commit()
    store.event("overflow", interaction=interaction.id, step=index, to=new_key)
    if interaction.queue_id != left_queue_id:
        live.wait_moved(left_queue_id, interaction)
    _register_sig(
        interaction.queue, policy.signature(_extra_skills(interaction, interaction.queue))
    )
    _schedule_next_step(interaction)
    _offer_placed(interaction)


def _preferred_expired(interaction_id: int) -> None:
    """The preferred agent did not take it in time: the interaction joins its queue's pool."""
    interaction = db.session.get(Interaction, interaction_id, with_for_update=True)
    if interaction is None or interaction.status not in ("queued", "offered"):
        return
    if interaction.status == "offered" or not _end_preference(interaction):
        # Ringing (or being matched) now: decide again shortly, once it is back waiting.
        db.session.rollback()
        _store().add_timer(f"preferred:{interaction_id}", utcnow().timestamp() + STEP_RETRY_S)
        return
    _offer_placed(interaction)


def _end_preference(interaction: Interaction) -> bool:
    """Move a waiting interaction from its preferred agent's set to its queue's pool (committed).

    False when it is not waiting there now (matched meanwhile): nothing changes.
    """
    if not _store().move(interaction.id, waiting_key(_pool_of(interaction))):
        return False
    interaction.preferred_until = None
    interaction.preferred_single_offer = False
    db.session.commit()
    _store().cancel_timer(f"preferred:{interaction.id}")
    return True


def interaction_by_external_id(external_id: str) -> Interaction | None:
    """The interaction of a CallSid or Message-ID."""
    return db.session.scalar(sa.select(Interaction).where(Interaction.external_id == external_id))


def call_status(call_sid: str, status: str, duration_s: int | None) -> Interaction | None:
    """Apply a Twilio call status callback: ringing and pick-up times of the customer's and
    the agent's legs; a final status of the customer's leg ends or abandons the interaction."""
    interaction = db.session.scalar(
        sa.select(Interaction)
        .where(sa.or_(Interaction.external_id == call_sid, Interaction.agent_call_sid == call_sid))
        .with_for_update()
    )
    if interaction is None:
        # A consulted agent's leg is known by its own column.
        return _other_leg_ended(call_sid, status) if status in FINAL_CALL_STATUSES else None
    customer_leg = interaction.external_id == call_sid
    _note_leg_time(interaction, status, customer_leg)
    if not customer_leg or status not in FINAL_CALL_STATUSES:
        db.session.commit()
        if not customer_leg and status in FINAL_CALL_STATUSES:
            return _other_leg_ended(call_sid, status) or interaction
        return interaction
    if interaction.status in ("queued", "offered"):
        return abandon(interaction)
    if interaction.status == "ivr":
        interaction.status = "ended"
        interaction.outcome = "hung_up_in_ivr"
        interaction.ended_at = utcnow()
        db.session.commit()
        return interaction
    if _unanswered_outbound(interaction):
        # The customer never joined: say why, and free the agent waiting in the conference.
        outcome = {"busy": "busy", "no-answer": "no_answer"}.get(status, "failed")
        _end(interaction, outcome, 0, wrapup=False)
        _hang_up_leg(interaction, interaction.agent_call_sid)
    elif interaction.status in LIVE_STATUSES:
        _end(interaction, "answered", duration_s)
    return interaction


def _note_leg_time(interaction: Interaction, status: str, customer_leg: bool) -> None:
    """Keep the first ringing and pick-up time of a leg (retries and repeats change nothing)."""
    field = {"ringing": "ringing_at", "in-progress": "connected_at"}.get(status)
    if field is None:
        return
    field = field if customer_leg else f"agent_{field}"
    if getattr(interaction, field) is None:
        setattr(interaction, field, utcnow())


def _unanswered_outbound(interaction: Interaction) -> bool:
    return (
        interaction.channel == "voice"
        and interaction.direction == "outbound"
        and interaction.status == "connecting"
    )


def _other_leg_ended(call_sid: str, status: str) -> Interaction | None:
    """A leg other than the customer's ended: a consulted agent's, or an outbound agent's."""
    consulted = db.session.scalar(
        sa.select(Interaction)
        .where(Interaction.consult_call_sid == call_sid, Interaction.status.in_(LIVE_STATUSES))
        .with_for_update()
    )
    if consulted is not None:
        end_consult(consulted, f"consulted agent's leg {status}")
        return consulted
    calling = db.session.scalar(
        sa.select(Interaction)
        .where(Interaction.agent_call_sid == call_sid, Interaction.direction == "outbound")
        .with_for_update()
    )
    if calling is not None and _unanswered_outbound(calling):
        # The agent's own leg failed or hung up before the customer joined.
        _end(calling, "failed", 0, wrapup=False)
        _hang_up_leg(calling, calling.external_id)
        return calling
    return None


def _hang_up_leg(interaction: Interaction, call_sid: str | None) -> None:
    if not call_sid:
        return
    try:
        calls.hang_up(call_sid)
    except TwilioRestException as exc:
        log.info("leg of interaction %s already gone: %s", interaction.id, scrub(exc.msg))


def caller_sent_to_fallback(interaction: Interaction) -> Interaction:
    """A caller we could not put through while the database was down heard the fallback (an
    apology and a voicemail): the call ends there, unanswered, giving up its place in the
    queue or its agent; a message they left becomes a voicemail when its callback is replayed.
    """
    if interaction.status in ("queued", "offered"):
        interaction.leave_reason = "fallback"
        return leave_queue(interaction, "abandoned", "caller sent to the fallback")
    if interaction.status == "connecting":
        interaction.leave_reason = "fallback"
        _end(interaction, "abandoned", 0, wrapup=False)
    return interaction


def abandon(interaction: Interaction) -> Interaction:
    """The customer hung up while waiting: an abandon, and a callback for a known customer."""
    leave_queue(interaction, "abandoned", "caller hung up")
    queue = interaction.queue
    if (
        queue is not None
        and queue.callback_on_abandon
        and interaction.customer_id is not None
        and interaction.channel == "voice"
    ):
        create_callback(interaction)
    return interaction


def request_callback(interaction: Interaction) -> Interaction:
    """The caller chose to be called back: the call ends, a callback takes its place."""
    leave_queue(interaction, "callback", "caller asked for a callback")
    return create_callback(interaction)


def create_callback(original: Interaction) -> Interaction:
    """A callback interaction in the original's queue, at the original's place in line."""
    now = utcnow()
    callback = Interaction(
        channel="callback",
        direction="outbound",
        from_address=original.from_address,
        customer_id=original.customer_id,
        queue_id=original.queue_id,
        priority=original.priority,
        required_skills=dict(original.required_skills or {}),
        status="queued",
        enqueued_at=now,
        queue_entered_at=now,
        queue_score=original.queue_score,
        origin_interaction_id=original.id,
    )
    db.session.add(callback)
    db.session.commit()
    enqueue(callback)
    return callback


def leave_queue(interaction: Interaction, outcome: str, reason: str) -> Interaction:
    """Take an interaction out of waiting for good; any ringing offer is withdrawn."""
    now = utcnow()
    store = get_store()
    if interaction.status == "queued":
        interaction.left_at_position = queue_position(interaction)
    interaction.status = "ended"
    interaction.outcome = outcome
    interaction.ended_at = now
    # Locked (after the interaction): an accept that won the race is seen here as accepted.
    pending = db.session.scalars(
        sa.select(Reservation)
        .where(Reservation.interaction_id == interaction.id, Reservation.status == "pending")
        .with_for_update()
    ).all()
    for reservation in pending:
        reservation.status = "revoked"
        reservation.responded_at = now
        reservation.reason = reason
    db.session.commit()
    store.remove(interaction.id)
    store.event(outcome, interaction=interaction.id, waited_s=_waited_s(interaction, now))
    _wait_ended(interaction, outcome, now)
    for reservation in pending:
        store.resolve(reservation.id, "revoked", now.timestamp(), requeue=False)
        agent = reservation.agent
        _derive_status(agent, now)
        db.session.commit()
        emit_to_agent(agent.id, "offer_revoked", revoked_payload(reservation, reason))
        _emit_status(agent)
        _free_for_work(agent)
    log.info("interaction %s left the queue: %s", interaction.id, outcome)
    return interaction


def _end(
    interaction: Interaction, outcome: str, duration_s: int | None, *, wrapup: bool = True
) -> None:
    """The conversation is over: wrap-up starts (or the slot frees at once without wrap-up)."""
    now = utcnow()
    interaction.outcome = outcome
    interaction.ended_at = now
    if duration_s is None:
        start = interaction.answered_at or interaction.created_at
        duration_s = int((now - start).total_seconds())
    interaction.duration_s = duration_s
    _stop_hold(interaction, now)
    consulted = interaction.consult_agent
    interaction.consult_agent_id = None
    interaction.consult_agent = None
    interaction.consult_call_sid = None
    wrapup_s = _wrapup_s(interaction) if wrapup else 0
    agent = interaction.agent
    if agent is not None and wrapup_s > 0:
        interaction.status = "wrapup"
        interaction.wrapup_until = now + timedelta(seconds=wrapup_s)
    else:
        interaction.status = "ended"
    if agent is not None:
        _derive_status(agent, now)
    _commit_keeping(interaction, interaction.queue, agent, consulted)
    if interaction.queue_id is not None and duration_s:
        _store().record_handle_time(interaction.queue_id, duration_s + wrapup_s)
    if consulted is not None:  # the customer left mid-consult: the consulted agent is free
        emit_to_agent(
            consulted.id, "consult_ended", _consult_payload(interaction, consulted, "call ended")
        )
        _release_slot(consulted, interaction, event="consult_ended")
    if agent is None:
        return
    emit_to_agent(agent.id, "interaction_ended", interaction_payload(interaction))
    _emit_interaction(interaction)
    _emit_status(agent)
    if interaction.status == "wrapup":
        _store().add_timer(f"wrapup:{interaction.id}", interaction.wrapup_until.timestamp())
    else:
        _release_slot(agent, interaction)


def _release_slot(agent: User, interaction: Interaction, event: str = "completed") -> None:
    """The agent's capacity slot for this interaction is free again: more work may come."""
    store = _store()
    store.change_load(agent.id, policy.capacity_channel(interaction.channel), -1)
    store.event(event, interaction=interaction.id, agent=agent.id)
    live.work_ended(agent.id, interaction.id, interaction.channel)
    now = utcnow()
    if event == "completed" and interaction.answered_at is not None:
        live.handled(
            interaction.queue_id, agent.id, (now - interaction.answered_at).total_seconds()
        )
    agent.idle_since = now
    _derive_status(agent, now)
    _commit_keeping(agent, interaction, interaction.queue)
    _emit_status(agent)
    _free_for_work(agent)


def _wrapup_s(interaction: Interaction) -> int:
    """Wrap-up after this interaction: its queue's, or OUTBOUND_WRAPUP_S without a queue."""
    if interaction.queue is not None:
        return interaction.queue.wrapup_s
    return int(current_app.config["OUTBOUND_WRAPUP_S"])


def _stop_hold(interaction: Interaction, now: datetime) -> None:
    """Take the customer off hold in the record, counting the hold time."""
    if interaction.on_hold and interaction.hold_started_at is not None:
        interaction.hold_s += int((now - interaction.hold_started_at).total_seconds())
    interaction.on_hold = False
    interaction.hold_started_at = None


def check_transferable(interaction: Interaction) -> User:
    """The agent handing a live call on; 409 when it cannot be handed on now."""
    if interaction.status not in LIVE_STATUSES or interaction.agent is None:
        raise Conflict("Only a live interaction with an agent can be transferred.")
    if interaction.consult_agent_id is not None:
        raise Conflict("A consultation is in progress: complete or cancel it first.")
    return interaction.agent


def transfer_to_queue(interaction: Interaction, queue: Queue) -> Interaction:
    """A blind transfer: the agent goes to wrap-up and the caller waits again, in `queue`."""
    return _transfer(interaction, queue, None)


def transfer_to_agent(interaction: Interaction, target: User, queue: Queue) -> Interaction:
    """A blind transfer to one agent: offered to them once, then to `queue` if not taken."""
    if target.presence == "offline" or not target.is_active_user:
        raise Conflict(f"{target.display_name} is not signed in.")
    if (target.capacity or {}).get("voice", 0) <= 0:
        raise Conflict(f"{target.display_name} takes no calls.")
    if target.id == interaction.agent_id:
        raise Conflict("The call is already with that agent.")
    return _transfer(interaction, queue, target)


def _transfer(interaction: Interaction, queue: Queue, target: User | None) -> Interaction:
    agent = check_transferable(interaction)
    _finish_handoff(interaction)  # an earlier hand-off's wrap-up ends now
    now = utcnow()
    _stop_hold(interaction, now)
    _record_transfer(interaction, agent, "blind", queue.id, target.id if target else None)
    interaction.agent_id = None
    interaction.agent = None
    queue_waiting(interaction, queue, priority=interaction.priority)
    if target is not None:
        interaction.preferred_agent_id = target.id
        interaction.preferred_agent = target
        interaction.preferred_until = now + timedelta(seconds=PREFERRED_AGENT_S)
        interaction.preferred_single_offer = True
    _stage_handoff(interaction, agent, now)
    _derive_status(agent, now)
    db.session.commit()
    _after_handoff(interaction, agent)
    enqueue(interaction)
    return interaction


def _record_transfer(
    interaction: Interaction,
    agent: User,
    kind: str,
    to_queue_id: int | None,
    to_agent_id: int | None,
) -> None:
    """Stage the transfer's audit entry: the record reports count transfers from."""
    audit.record(
        "interaction.transferred",
        "interaction",
        interaction.id,
        actor_id=agent.id,
        before={"queue_id": interaction.queue_id, "agent_id": agent.id},
        after={"queue_id": to_queue_id, "agent_id": to_agent_id, "kind": kind},
    )


def _stage_handoff(interaction: Interaction, agent: User, now: datetime) -> None:
    """The agent handing the call on wraps up as after a normal end (staged, not committed)."""
    wrapup_s = _wrapup_s(interaction)
    if wrapup_s > 0:
        interaction.handoff_agent_id = agent.id
        interaction.handoff_agent = agent
        interaction.handoff_wrapup_until = now + timedelta(seconds=wrapup_s)


def _after_handoff(interaction: Interaction, agent: User) -> None:
    """After the commit: the handing-on agent's console, their wrap-up timer or free slot."""
    _store().event("transferred", interaction=interaction.id, agent=agent.id)
    emit_to_agent(agent.id, "interaction_ended", handoff_view(interaction, agent))
    if interaction.handoff_agent_id == agent.id and interaction.handoff_wrapup_until:
        _emit_status(agent)
        _store().add_timer(
            f"handoff:{interaction.id}", interaction.handoff_wrapup_until.timestamp()
        )
    else:
        _release_slot(agent, interaction, event="handed_on")


def _finish_handoff(interaction: Interaction) -> None:
    """The wrap-up of the agent who handed the call on is over: their slot is free."""
    agent = interaction.handoff_agent
    if agent is None or interaction.handoff_wrapup_until is None:
        return
    interaction.handoff_agent_id = None
    interaction.handoff_agent = None
    interaction.handoff_wrapup_until = None
    db.session.commit()
    _store().cancel_timer(f"handoff:{interaction.id}")
    emit_to_agent(agent.id, "interaction_updated", handoff_view(interaction, agent))
    _release_slot(agent, interaction)


def finish_handoff_timer(interaction_id: int) -> None:
    """The hand-off wrap-up time is over."""
    interaction = db.session.get(Interaction, interaction_id, with_for_update=True)
    if interaction is not None:
        _finish_handoff(interaction)


# ---------------------------------------------------------------- warm transfer


def _consult_payload(
    interaction: Interaction, target: User, reason: str | None = None
) -> dict[str, Any]:
    payload = {
        "interaction_id": interaction.id,
        "from_agent": interaction.agent.display_name if interaction.agent else None,
        "from_agent_id": interaction.agent_id,
        "interaction": interaction_payload(interaction),
        "screen_pop": screen_pop(interaction, target),
    }
    if reason:
        payload["reason"] = reason
    return payload


def check_consult(interaction: Interaction, target: User) -> None:
    """409 unless `target` can be consulted on this live call now."""
    check_transferable(interaction)
    if target.id == interaction.agent_id:
        raise Conflict("An agent cannot consult themselves.")
    if target.presence == "offline" or not target.is_active_user:
        raise Conflict(f"{target.display_name} is not signed in.")


def take_voice_slot(agent: User) -> None:
    """Take a free voice slot of the agent's capacity (for a consult or an outbound call)."""
    store = get_store()
    if not store.take_slot(agent.id, "voice"):
        raise Conflict(f"{agent.display_name} has no free voice capacity.")


def give_back_voice_slot(agent: User) -> None:
    """Undo `take_voice_slot` when the call could not be placed."""
    _store().change_load(agent.id, "voice", -1)
    _free_for_work(agent)


def start_consult(interaction: Interaction, target: User, call_sid: str) -> Interaction:
    """Record a consult whose leg is being dialled: the customer is on hold meanwhile."""
    now = utcnow()
    interaction.consult_agent_id = target.id
    interaction.consult_agent = target
    interaction.consult_call_sid = call_sid
    if not interaction.on_hold:
        interaction.on_hold = True
        interaction.hold_started_at = now
    _derive_status(target, now)
    db.session.commit()
    _store().event("consult", interaction=interaction.id, agent=target.id)
    emit_to_agent(target.id, "consult", _consult_payload(interaction, target))
    _emit_status(target)
    _emit_interaction(interaction)
    return interaction


def end_consult(interaction: Interaction, reason: str) -> Interaction:
    """The consult is over without a transfer: the consulted agent's slot is free again."""
    target = interaction.consult_agent
    if target is None:
        raise Conflict("No consultation is in progress.")
    interaction.consult_agent_id = None
    interaction.consult_agent = None
    interaction.consult_call_sid = None
    db.session.commit()
    emit_to_agent(target.id, "consult_ended", _consult_payload(interaction, target, reason))
    _emit_interaction(interaction)
    _release_slot(target, interaction, event="consult_ended")
    return interaction


def complete_consult(interaction: Interaction) -> Interaction:
    """The consulted agent takes the call over; the consulting agent goes to wrap-up."""
    target = interaction.consult_agent
    if target is None:
        raise Conflict("No consultation is in progress.")
    agent = interaction.agent
    _finish_handoff(interaction)
    now = utcnow()
    _stop_hold(interaction, now)
    if agent is not None:
        _record_transfer(interaction, agent, "warm", interaction.queue_id, target.id)
    interaction.agent_id = target.id
    interaction.agent = target
    interaction.agent_call_sid = interaction.consult_call_sid
    interaction.consult_agent_id = None
    interaction.consult_agent = None
    interaction.consult_call_sid = None
    if agent is not None:
        _stage_handoff(interaction, agent, now)
        _derive_status(agent, now)
    _derive_status(target, now)
    db.session.commit()
    # The consult's slot of the target's capacity is now this call's: no load changes.
    if agent is not None:
        _after_handoff(interaction, agent)
    emit_to_agent(target.id, "assigned", {"interaction_id": interaction.id, "reservation_id": None})
    _emit_interaction(interaction)
    _emit_status(target)
    return interaction


# ---------------------------------------------------------------- outbound calls


def start_outbound_call(agent: User, customer_id: int, phone: str) -> Interaction:
    """An agent calls a customer: the interaction holds the agent's voice slot (committed)."""
    take_voice_slot(agent)
    now = utcnow()
    interaction = Interaction(
        channel="voice",
        direction="outbound",
        from_address=current_app.config["TWILIO_CALLER_ID"],
        to_address=phone,
        customer_id=customer_id,
        required_skills={},
        status="connecting",
        agent_id=agent.id,
        agent=agent,
        created_at=now,
    )
    db.session.add(interaction)
    _derive_status(agent, now)
    db.session.commit()
    _store().event("outbound", interaction=interaction.id, agent=agent.id)
    _emit_interaction(interaction)
    _emit_status(agent)
    log.info("agent %s calls %s (interaction %s)", agent.id, mask(phone), interaction.id)
    return interaction


def outbound_failed(interaction: Interaction) -> None:
    """The agent's leg could not be placed: the attempt ends as failed, the agent is free."""
    _end(interaction, "failed", 0, wrapup=False)


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
    if disposition is not None:
        interaction.disposition = disposition
    if notes is not None:
        interaction.notes = notes
    live_call = interaction.status in LIVE_STATUSES
    if live_call:
        _end(interaction, "answered", None)
    refresh_call_summary(interaction)  # the ticket's copy of the outcome
    db.session.commit()
    if live_call and interaction.channel == "voice" and interaction.external_id:
        try:
            calls.hang_up(interaction.external_id)
        except TwilioRestException as exc:
            log.warning("could not hang up interaction %s: %s", interaction.id, scrub(exc.msg))
    return interaction


def wrapup_done(agent: User, interaction_id: int) -> User:
    """The agent ends wrap-up for an interaction early (also one they handed on)."""
    handed_on = db.session.get(Interaction, interaction_id, with_for_update=True)
    if (
        handed_on is not None
        and handed_on.handoff_agent_id == agent.id
        and handed_on.agent_id != agent.id
    ):
        _finish_handoff(handed_on)
        return agent
    interaction = _agent_interaction(agent, interaction_id)
    if interaction.status != "wrapup":
        raise Conflict("The interaction is not in wrap-up.")
    _finish_wrapup(interaction)
    return agent


def _finish_wrapup(interaction: Interaction) -> None:
    if interaction.status != "wrapup":
        return
    interaction.status = "ended"
    now = utcnow()
    if interaction.wrapup_until is not None and interaction.wrapup_until > now:
        interaction.wrapup_until = now  # finished early: the record keeps the real wrap-up
    db.session.commit()
    _store().cancel_timer(f"wrapup:{interaction.id}")
    _emit_interaction(interaction)
    if interaction.agent is not None:
        _release_slot(interaction.agent, interaction)


def finish_wrapup_timer(interaction_id: int) -> None:
    """The queue's wrap-up time is over."""
    interaction = db.session.get(Interaction, interaction_id, with_for_update=True)
    if interaction is not None:
        _finish_wrapup(interaction)


def boost(interaction: Interaction, points: int) -> bool:
    """Raise a queued interaction's priority (an SLA escalation): it moves up its queue now,
    and keeps the better place if an offer returns it. Staged; True if it moved in Redis."""
    points = max(0, min(points, policy.MAX_PRIORITY - interaction.priority))
    if points == 0 or interaction.status not in ("queued", "offered"):
        return False
    interaction.priority += points
    interaction.queue_score = (interaction.queue_score or 0.0) - policy.PRIORITY_CREDIT_S * points
    return _store().rescore(interaction.id, interaction.queue_score)


# ---------------------------------------------------------------- timers


def run_due_timers(now: float | None = None, limit: int = 100) -> int:
    """Fire the routing timers due by `now`; each is claimed by exactly one process."""
    store = get_store()
    due = store.claim_due(now if now is not None else utcnow().timestamp(), limit)
    for name in due:
        kind, _, rest = name.partition(":")
        try:
            if kind == "offer":
                offer_timed_out(rest)
            elif kind == "step":
                interaction_id, queue_id, index = rest.split(":")
                _overflow_step(int(interaction_id), int(queue_id), int(index))
            elif kind == "preferred":
                _preferred_expired(int(rest))
            elif kind == "wrapup":
                finish_wrapup_timer(int(rest))
            elif kind == "handoff":
                finish_handoff_timer(int(rest))
            elif kind == "disconnect":
                _disconnect_grace_over(int(rest))
            elif kind == "mail":
                from contact_center.tickets.outbound import retry_send

                retry_send(int(rest))
            elif kind == "recording":
                from contact_center.recording_deletions import retry_deletion

                retry_deletion(int(rest))
            else:
                log.warning("unknown routing timer %s", name)
        except Exception:
            db.session.rollback()
            log.exception("routing timer %s failed", name)
    return len(due)


# ---------------------------------------------------------------- estimates


def queue_waiting_keys(queue: Queue) -> list[str]:
    """Every waiting set of a queue (all channels, signatures and tiers)."""
    keys = []
    for channel in queue.channels or []:
        for sig in _sigs(queue.id):
            for tier in range(len(_tiers(queue, sig))):
                keys.append(waiting_key(policy.pool_name(queue.id, channel, sig, tier)))
    return keys


def _staffing_changed() -> None:
    """An agent's presence changes here: this process counts staffed agents afresh at the
    next ask (other processes within STAFFED_CACHE_S)."""
    staffing = current_app.extensions.get("available_agents")
    if staffing is not None:
        staffing.counted_at = float("-inf")


class _Staffing:
    """The teams and skill levels of the agents available, as this process last read them,
    and the queue counts worked out from that reading."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counted_at = float("-inf")
        self.agents: list[tuple[str | None, dict[str, int]]] = []
        self.counts: dict[tuple, int] = {}

    def read(self) -> None:
        levels: dict[int, dict[str, int]] = {}
        teams: dict[int, str | None] = {}
        rows = db.session.execute(
            sa.select(User.id, User.team, AgentSkill.skill, AgentSkill.level)
            .outerjoin(AgentSkill, AgentSkill.user_id == User.id)
            .where(User.presence == "available")
        )
        for agent_id, team, skill, level in rows:
            teams[agent_id] = team
            agent_levels = levels.setdefault(agent_id, {})
            if skill is not None:
                agent_levels[skill] = level
        self.agents = [(teams[agent_id], levels[agent_id]) for agent_id in teams]
        self.counts = {}
        self.counted_at = time.monotonic()


def agents_staffed(queue: Queue) -> int:
    """Agents signed in (not away or offline) who qualify for the queue.

    Every caller's hold loop asks (the estimated wait), so the available agents are read
    once per STAFFED_CACHE_S per process, by one request at a time: staffing moves by the
    minute, and an estimate a second old is as good. While one request reads, the others
    use the last reading rather than each reading it again.
    """
    staffing = current_app.extensions.setdefault("available_agents", _Staffing())
    if time.monotonic() - staffing.counted_at >= STAFFED_CACHE_S:
        never_read = staffing.counted_at == float("-inf") and not staffing.agents
        if staffing.lock.acquire(blocking=never_read):
            try:
                if time.monotonic() - staffing.counted_at >= STAFFED_CACHE_S:
                    staffing.read()
            finally:
                staffing.lock.release()
    key = (queue.id, repr(queue.required_skills), repr(queue.teams))
    if key not in staffing.counts:
        requirement = _tiers(queue, "")[0]
        staffing.counts[key] = sum(
            1 for team, levels in staffing.agents if requirement.admits(levels, team)
        )
    return staffing.counts[key]


def estimate(queue: Queue, interaction: Interaction | None = None) -> dict[str, Any]:
    """Position and estimated wait in a queue (for one interaction, or for a new arrival)."""
    store = get_store()
    keys = queue_waiting_keys(queue)
    waiting = store.size(keys)
    if interaction is not None and store.location(interaction.id) is not None:
        position = store.count_before(keys, interaction.queue_score or 0.0) + 1
    else:
        position = waiting + 1
    staffed = agents_staffed(queue)
    aht = store.handle_time(queue.id)
    return {
        "queue_id": queue.id,
        "waiting": waiting,
        "position": position,
        "agents_staffed": staffed,
        "handle_time_s": round(aht or policy.DEFAULT_HANDLE_TIME_S, 1),
        "estimated_wait_s": policy.estimated_wait_s(position, staffed, aht),
    }


def queue_position(interaction: Interaction) -> int | None:
    """Where a waiting interaction stands in its queue (1 = next)."""
    store = _store()
    if interaction.queue is None or store.location(interaction.id) is None:
        return None
    keys = queue_waiting_keys(interaction.queue)
    return store.count_before(keys, interaction.queue_score or 0.0) + 1


# ---------------------------------------------------------------- rebuild


def rebuild_state(force: bool = False) -> dict[str, int]:
    """Rebuild all Redis routing state from the database (after a Redis restart or on demand)."""
    store = _store()
    with get_redis().lock(REBUILD_LOCK, timeout=120, blocking_timeout=120):
        if store.is_built() and not force:
            return {"waiting": 0, "agents": 0, "revoked_offers": 0}  # another process did it
        store.clear()
        now = utcnow()
        pending = db.session.scalars(
            sa.select(Reservation).where(Reservation.status == "pending")
        ).all()
        for reservation in pending:
            # Offers in flight cannot be trusted after Redis lost them: back to the queue.
            reservation.status = "revoked"
            reservation.reason = "routing state rebuilt"
            reservation.responded_at = now
            if reservation.interaction.status == "offered":
                reservation.interaction.status = "queued"
        agents = db.session.scalars(sa.select(User)).all()
        loads = _loads_from_database()
        for agent in agents:
            _derive_status(agent, now)
        db.session.commit()
        for agent in agents:
            store.set_agent(agent.id, agent.presence, agent.capacity or {}, loads.get(agent.id, {}))
        waiting = db.session.scalars(
            sa.select(Interaction).where(Interaction.status == "queued").order_by(Interaction.id)
        ).all()
        live.rebuild_waiting(
            (i.queue_id, i.id, i.enqueued_at or i.created_at) for i in waiting if i.queue
        )
        for interaction in waiting:
            if interaction.queue is not None:
                _place(interaction)
        in_wrapup = db.session.scalars(
            sa.select(Interaction).where(Interaction.status == "wrapup")
        ).all()
        for interaction in in_wrapup:
            due = interaction.wrapup_until or now
            store.add_timer(f"wrapup:{interaction.id}", due.timestamp())
        from contact_center.tickets.outbound import unsent_message_ids

        for message_id in unsent_message_ids():  # their jobs were in the Redis that was lost
            store.add_timer(f"mail:{message_id}", now.timestamp())
        from contact_center.recording_deletions import pending_ids

        for deletion_id in pending_ids():  # recordings still to delete at Twilio
            store.add_timer(f"recording:{deletion_id}", now.timestamp())
        handed_on = db.session.scalars(
            sa.select(Interaction).where(Interaction.handoff_wrapup_until.is_not(None))
        ).all()
        for interaction in handed_on:
            store.add_timer(
                f"handoff:{interaction.id}", interaction.handoff_wrapup_until.timestamp()
            )
        store.mark_built()
    for reservation in pending:
        emit_to_agent(
            reservation.agent_id,
            "offer_revoked",
            revoked_payload(reservation, "routing state rebuilt"),
        )
    for agent in agents:
        _make_available(agent)
    for agent in agents:
        _offer_agent(agent)
    return {"waiting": len(waiting), "agents": len(agents), "revoked_offers": len(pending)}


def _loads_from_database() -> dict[int, dict[str, int]]:
    """Slots each agent holds: their interactions, calls they are consulted on, hand-offs."""
    held = (
        sa.select(Interaction.agent_id, Interaction.channel, sa.func.count())
        .where(Interaction.status.in_(HOLDING_STATUSES), Interaction.agent_id.is_not(None))
        .group_by(Interaction.agent_id, Interaction.channel)
    )
    consulted = (
        sa.select(Interaction.consult_agent_id, Interaction.channel, sa.func.count())
        .where(Interaction.status.in_(LIVE_STATUSES), Interaction.consult_agent_id.is_not(None))
        .group_by(Interaction.consult_agent_id, Interaction.channel)
    )
    handed_on = (
        sa.select(Interaction.handoff_agent_id, Interaction.channel, sa.func.count())
        .where(
            Interaction.handoff_wrapup_until.is_not(None), Interaction.handoff_agent_id.is_not(None)
        )
        .group_by(Interaction.handoff_agent_id, Interaction.channel)
    )
    rows = [row for query in (held, consulted, handed_on) for row in db.session.execute(query)]
    loads: dict[int, dict[str, int]] = {}
    for agent_id, channel, count in rows:
        key = policy.capacity_channel(channel)
        loads.setdefault(agent_id, {})[key] = loads.get(agent_id, {}).get(key, 0) + count
    return loads


def routing_events(count: int = 100) -> list[dict[str, str]]:
    """The latest routing events (offered, accepted, rejected, timeout, abandoned, ...)."""
    return get_store().events(count)
