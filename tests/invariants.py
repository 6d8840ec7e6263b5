"""The invariants of ARCHITECTURE.md ("Invariants the tests must hold"), checked against the
database and the routing Redis as they stand. Fault tests end with `assert_invariants(app)`.

Read only: nothing here rebuilds Redis, fires a timer or writes a row, so a broken state is
reported as it is found. Each violation names the rows (and Redis entries) that broke it.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import Flask

from contact_center.agents.models import User
from contact_center.db_types import utcnow
from contact_center.extensions import db
from contact_center.routing import policy
from contact_center.routing.models import (
    HOLDING_STATUSES,
    LIVE_STATUSES,
    Interaction,
    Reservation,
)
from contact_center.routing.store import BUILT, CAP, LOAD, OFFER, RESERVATIONS, TAG, WHERE
from contact_center.sla.models import SlaEvent
from contact_center.tickets.models import TicketMessage
from contact_center.webhook_receipts import WebhookReceipt

# The timestamps of two offers come from different processes (each takes its own utcnow()
# after its Redis step): overlaps this short are that noise, longer ones are double offers.
OVERLAP_SLACK = timedelta(milliseconds=500)


def assert_invariants(app: Flask, *, settle_s: float = 0.0, timer_lag_s: float = 30.0) -> None:
    """Fail, naming the rows, unless every invariant holds (within `settle_s` seconds)."""
    end = time.monotonic() + settle_s
    while True:
        problems = invariant_violations(app, timer_lag_s=timer_lag_s)
        if not problems or time.monotonic() >= end:
            break
        time.sleep(0.2)  # other processes may still be finishing a step
    assert not problems, "invariants broken:\n" + "\n".join(problems)


def invariant_violations(app: Flask, *, timer_lag_s: float = 30.0) -> list[str]:
    """Every broken invariant, one line each; an offer may stay pending `timer_lag_s` past
    its expiry (the timer poller's lag) before it counts as never returned."""
    with app.app_context():  # a session of its own: a fresh look, given back at the end
        try:
            return _violations(app.extensions["redis"], timer_lag_s)
        finally:
            db.session.remove()


def _violations(redis: Any, timer_lag_s: float) -> list[str]:
    now = utcnow()
    reservations = db.session.execute(
        sa.select(
            Reservation.id,
            Reservation.interaction_id,
            Reservation.agent_id,
            Reservation.status,
            Reservation.created_at,
            Reservation.expires_at,
            Reservation.responded_at,
        )
    ).all()
    pending = [r for r in reservations if r.status == "pending"]
    return [
        *_one_offer_at_a_time(reservations, pending),
        *_capacity(redis, pending),
        *_nothing_lost(redis, pending),
        *_idempotent(),
        *_offers_return(pending, now, timer_lag_s),
        *_escalations_once(),
    ]


def _one_offer_at_a_time(reservations: list, pending: list) -> list[str]:
    """Invariant 1: one pending offer per interaction (and agent), no overlapping offers."""
    problems = []
    for field, what in (("interaction_id", "interaction"), ("agent_id", "agent")):
        groups = defaultdict(list)
        for r in pending:
            groups[getattr(r, field)].append(r)
        for key, rows in sorted(groups.items()):
            if len(rows) > 1:
                offers = ", ".join(
                    f"{r.id} (interaction {r.interaction_id}, agent {r.agent_id})" for r in rows
                )
                problems.append(
                    f"invariant 1: {what} {key} has {len(rows)} pending reservations: {offers}"
                )
    by_interaction = defaultdict(list)
    for r in reservations:
        by_interaction[r.interaction_id].append(r)
    for interaction_id, rows in sorted(by_interaction.items()):
        rows.sort(key=lambda r: r.created_at)
        for i, a in enumerate(rows):
            for b in rows[i + 1 :]:
                if a.agent_id == b.agent_id:
                    continue
                if b.created_at + OVERLAP_SLACK < _rang_until(a) and (
                    a.created_at + OVERLAP_SLACK < _rang_until(b)
                ):
                    problems.append(
                        f"invariant 1: interaction {interaction_id} offered to two agents at "
                        f"once: reservation {a.id} (agent {a.agent_id}, {a.status}, "
                        f"{a.created_at.isoformat()} .. {_rang_until(a).isoformat()}) and "
                        f"{b.id} (agent {b.agent_id}, {b.status}, {b.created_at.isoformat()} "
                        f".. {_rang_until(b).isoformat()})"
                    )
    return problems


def _rang_until(reservation: Any) -> datetime:
    """An offer rings from its creation until answered or expired, whichever is first (the
    timer may record a timeout late)."""
    if reservation.responded_at is None:
        return reservation.expires_at
    return min(reservation.responded_at, reservation.expires_at)


def _capacity(redis: Any, pending: list) -> list[str]:
    """Invariant 1: no agent holds more than their capacity on any channel."""
    problems = []
    held: dict[tuple[int, str], set[int]] = defaultdict(set)
    rows = db.session.execute(
        sa.select(Interaction.id, Interaction.agent_id, Interaction.channel).where(
            Interaction.status.in_(HOLDING_STATUSES), Interaction.agent_id.is_not(None)
        )
    ).all()
    for row in rows:
        held[(row.agent_id, policy.capacity_channel(row.channel))].add(row.id)
    if pending:
        channels = dict(
            db.session.execute(
                sa.select(Interaction.id, Interaction.channel).where(
                    Interaction.id.in_({r.interaction_id for r in pending})
                )
            ).all()
        )
        for r in pending:
            held[(r.agent_id, policy.capacity_channel(channels[r.interaction_id]))].add(
                r.interaction_id
            )
    capacities = dict(db.session.execute(sa.select(User.id, User.capacity)).all())
    for (agent_id, channel), interactions in sorted(held.items()):
        capacity = int((capacities.get(agent_id) or {}).get(channel, 0))
        if len(interactions) > capacity:
            problems.append(
                f"invariant 1: agent {agent_id} holds {len(interactions)} {channel} "
                f"interactions (offered or live) over a capacity of {capacity}: "
                f"interactions {sorted(interactions)}"
            )
    caps = redis.hgetall(CAP)
    loads = redis.hgetall(LOAD)
    for slot, load in sorted(loads.items()):
        cap = int(caps.get(slot, 0))
        if not 0 <= int(load) <= cap:
            problems.append(
                f"invariant 1: Redis {LOAD} {slot} = {load}, outside 0..{CAP} {slot} = {cap}"
            )
    if not redis.exists(BUILT):
        return problems
    # Redis counts the slots matching trusts: they must be what the database holds, or an
    # agent can be offered more than their capacity (or never offered again).
    slots = {key: [f"interaction {i}" for i in sorted(ids)] for key, ids in held.items()}
    for column, statuses, what in (
        (Interaction.consult_agent_id, LIVE_STATUSES, "consulted on"),
        (Interaction.handoff_agent_id, None, "handed on"),
    ):
        query = sa.select(Interaction.id, column, Interaction.channel).where(column.is_not(None))
        if statuses is None:
            query = query.where(Interaction.handoff_wrapup_until.is_not(None))
        else:
            query = query.where(Interaction.status.in_(statuses))
        for interaction_id, agent_id, channel in db.session.execute(query):
            key = (agent_id, policy.capacity_channel(channel))
            slots.setdefault(key, []).append(f"{what} {interaction_id}")
    for key in sorted(set(slots) | {_slot_key(k) for k in loads}):
        agent_id, channel = key
        load = int(loads.get(f"{agent_id}:{channel}", 0))
        if load != len(slots.get(key, [])):
            problems.append(
                f"invariant 1: Redis {LOAD} {agent_id}:{channel} = {load} but the database "
                f"holds {len(slots.get(key, []))} slots: {slots.get(key, [])}"
            )
    return problems


def _slot_key(slot: str) -> tuple[int, str]:
    agent_id, channel = slot.split(":", 1)
    return int(agent_id), channel


def _nothing_lost(redis: Any, pending: list) -> list[str]:
    """Invariant 2: what the database says waits is in Redis; what it says rings is offered."""
    problems = []
    rows = db.session.execute(
        sa.select(Interaction.id, Interaction.status, Interaction.queue_id).where(
            Interaction.status.in_(("queued", "offered"))
        )
    ).all()
    offered_by = {r.interaction_id: r.id for r in pending}
    for row in rows:
        if row.status == "offered" and row.id not in offered_by:
            problems.append(
                f"invariant 2: interaction {row.id} is offered but has no pending reservation"
            )
    if not redis.exists(BUILT):
        return problems  # Redis is unbuilt: the next routing step rebuilds it from the database
    where = redis.hgetall(WHERE)
    reserved: dict[int, list[str]] = defaultdict(list)
    for reservation_id, raw in redis.hgetall(RESERVATIONS).items():
        reserved[int(json.loads(raw)["interaction"])].append(reservation_id)
    for row in rows:
        if row.status == "queued" and row.queue_id is not None:
            key = where.get(str(row.id))
            waiting = key is not None and redis.zscore(key, str(row.id)) is not None
            if not waiting and not reserved.get(row.id):
                problems.append(
                    f"invariant 2: interaction {row.id} is queued (queue {row.queue_id}) but "
                    f"waits nowhere in Redis ({WHERE} says {key!r}) and has no reservation "
                    f"in {RESERVATIONS}"
                )
        elif row.status == "offered" and row.id in offered_by:
            if offered_by[row.id] not in reserved.get(row.id, []):
                problems.append(
                    f"invariant 2: interaction {row.id} is offered (reservation "
                    f"{offered_by[row.id]}) but Redis {RESERVATIONS} does not hold that offer"
                )
    # And the other way: nothing waits or rings in Redis that the database does not say
    # waits or rings (a stale entry would be offered again).
    queued = {row.id for row in rows if row.status == "queued"}
    pending_ids = {r.id for r in pending}
    for key in sorted(redis.scan_iter(match=f"{TAG}:*w:*")):
        for member in redis.zrange(key, 0, -1):
            if int(member) not in queued:
                problems.append(
                    f"invariant 2: interaction {member} waits in Redis {key} but the "
                    f"database does not have it queued"
                )
    offers = redis.hgetall(OFFER)
    for r in pending:
        if offers.get(str(r.agent_id)) != r.id:
            problems.append(
                f"invariant 2: reservation {r.id} is pending for agent {r.agent_id} but Redis "
                f"{OFFER} has {offers.get(str(r.agent_id))!r} for that agent"
            )
    for agent_id, reservation_id in sorted(offers.items()):
        if reservation_id not in pending_ids:
            problems.append(
                f"invariant 2: Redis {OFFER} has agent {agent_id} ringing with "
                f"{reservation_id}, not pending in the database (no offer would reach them)"
            )
    for interaction_id, reservation_ids in sorted(reserved.items()):
        for reservation_id in reservation_ids:
            if reservation_id not in pending_ids:
                problems.append(
                    f"invariant 2: Redis {RESERVATIONS} holds offer {reservation_id} of "
                    f"interaction {interaction_id}, not pending in the database"
                )
    return problems


def _idempotent() -> list[str]:
    """Invariant 3: one interaction per external id, one receipt and one message per key."""
    problems = []
    for column, what in (
        (Interaction.external_id, "interactions share external id"),
        (WebhookReceipt.key, "webhook receipts share key"),
        (TicketMessage.message_id, "ticket messages share Message-ID"),
    ):
        table = column.class_
        rows = db.session.execute(
            sa.select(column, sa.func.count(), sa.func.min(table.id), sa.func.max(table.id))
            .where(column.is_not(None))
            .group_by(column)
            .having(sa.func.count() > 1)
        ).all()
        for key, n, first, last in rows:
            problems.append(f"invariant 3: {n} {what} {key!r} (ids {first} .. {last})")
    return problems


def _offers_return(pending: list, now: datetime, timer_lag_s: float) -> list[str]:
    """Invariant 4: an offer not answered in time is returned (within the timer's lag)."""
    late = now - timedelta(seconds=timer_lag_s)
    return [
        f"invariant 4: reservation {r.id} (interaction {r.interaction_id}, agent {r.agent_id}) "
        f"still pending {(now - r.expires_at).total_seconds():.1f} s after it expired at "
        f"{r.expires_at.isoformat()}"
        for r in pending
        if r.expires_at < late
    ]


def _escalations_once() -> list[str]:
    """Invariant 5: each escalation step of a clock fires once; each clock breaches once."""
    events = db.session.execute(
        sa.select(
            SlaEvent.id,
            SlaEvent.ticket_id,
            SlaEvent.kind,
            SlaEvent.metric,
            SlaEvent.cycle,
            SlaEvent.details,
        )
        .where(SlaEvent.kind.in_(("warned", "escalated", "breached", "applied", "removed")))
        .order_by(SlaEvent.id)
    ).all()
    seen: dict[tuple, list[int]] = defaultdict(list)
    epoch: dict[int, int] = defaultdict(int)  # a policy applied again starts its clocks anew
    for event in events:
        details = event.details or {}
        if event.kind in ("applied", "removed"):
            epoch[event.ticket_id] += 1
            continue
        if event.kind == "breached":
            key = (event.ticket_id, "breached", event.metric, event.cycle, epoch[event.ticket_id])
        else:
            key = (
                event.ticket_id,
                event.kind,
                event.metric,
                event.cycle,
                details.get("policy"),
                details.get("step"),
            )
        seen[key].append(event.id)
    problems = []
    for key, ids in sorted(seen.items(), key=lambda item: item[1][0]):
        if len(ids) > 1:
            ticket_id, kind, metric, cycle = key[:4]
            step = f", policy {key[4]!r} step {key[5]}" if kind != "breached" else ""
            problems.append(
                f"invariant 5: ticket {ticket_id} has {len(ids)} {kind!r} events for "
                f"{metric} cycle {cycle}{step}: sla_events {ids}"
            )
    return problems
