"""An offer recorded in one PostgreSQL statement, and the rule for an agent's status.

Redis has reserved an agent for an interaction; the database must agree before the agent's
phone rings. Through the ORM that is a locked read of each row, the reservation's INSERT,
two UPDATEs, the agent's status derived in its own queries and a unit of work around it all:
on a busy queue the larger part of the web process's time per call. Here the same checks and
writes are one statement in the session's transaction: lock the interaction, then the agent
(the ORM path's order), and only if the interaction still waits and the agent is still
available mark it offered, derive the agent's status and insert the reservation. The rows it
wrote come back and stand in the session as if loaded, so the offer goes out from them.
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from contact_center.agents.models import User
from contact_center.db_types import UTCDateTime
from contact_center.extensions import db
from contact_center.routing.models import LIVE_STATUSES, Interaction, Queue, Reservation


def derived_status(
    agent_id: Any, presence: Any, *, offering: bool = False
) -> sa.ColumnElement[str]:
    """What an agent is doing, as SQL: busy > reserved > wrap-up > their chosen presence.

    Busy: a live call of their own or one they were called into to consult. Reserved: an
    offer pending (`offering`: the one being written in the same statement). Wrap-up: their
    own, or the wrap-up they keep after handing a call on.
    """
    live = sa.exists().where(
        sa.or_(Interaction.agent_id == agent_id, Interaction.consult_agent_id == agent_id),
        Interaction.status.in_(LIVE_STATUSES),
    )
    pending = sa.exists().where(Reservation.agent_id == agent_id, Reservation.status == "pending")
    wrapup = sa.exists().where(
        sa.or_(
            sa.and_(Interaction.agent_id == agent_id, Interaction.status == "wrapup"),
            sa.and_(
                Interaction.handoff_agent_id == agent_id,
                Interaction.handoff_wrapup_until.is_not(None),
            ),
        )
    )
    reserved = sa.true() if offering else pending
    return sa.case((live, "busy"), (reserved, "reserved"), (wrapup, "wrapup"), else_=presence)


class Refused(Exception):
    """The database would not have the offer: the interaction's status and the agent's
    presence (None when they were not read) say why."""

    def __init__(self, interaction_status: str | None, agent_row: Any) -> None:
        super().__init__(interaction_status)
        self.interaction_status = interaction_status
        self.agent_row = agent_row


def record(
    reservation_id: str,
    interaction_id: int,
    agent_id: int,
    now: datetime,
    *,
    default_timeout_s: int,
    decision: dict[str, Any],
) -> tuple[Reservation, Interaction, User]:
    """Write the offer in the session's transaction (not committed); raise Refused if the
    interaction no longer waits or the agent is no longer available.

    `decision` holds what Redis decided (step, pool, score, candidates, stale_skipped);
    the queue's name and strategy and the time waited are added from the locked rows.
    """
    row = db.session.execute(
        _statement(),
        # No parameter is named like a column: an UPDATE would take it as a value to SET.
        {
            "o_reservation": reservation_id,
            "o_interaction": interaction_id,
            "o_agent": agent_id,
            "o_now": now,
            "o_default_timeout": default_timeout_s,
            **{f"decision_{key}": decision[key] for key in _DECISION_FROM_REDIS},
        },
    ).one()
    if row.interaction_status != "queued" or row.r_id is None:
        agent_row = None
        if row.agent_presence is not None:
            agent_row = {"presence": row.agent_presence, "capacity": row.agent_capacity}
        raise Refused(row.interaction_status, agent_row)
    mapping = row._mapping
    return (
        _as_loaded(Reservation, mapping, "r_"),
        _as_loaded(Interaction, mapping, "i_"),
        _as_loaded(User, mapping, "u_"),
    )


def _as_loaded(model: type, row: Any, prefix: str) -> Any:
    """The row's object in the session, its values as the database now holds them."""
    session = db.session()
    values = {key: row[prefix + key] for key, _column in _columns(model)}
    obj = session.identity_map.get(identity_key(model, values["id"]))
    if obj is None:
        obj = sa.inspect(model).class_manager.new_instance()
        for key, value in values.items():
            set_committed_value(obj, key, value)
        make_transient_to_detached(obj)
        session.add(obj)
    else:
        for key, value in values.items():
            set_committed_value(obj, key, value)
    return obj


_DECISION_FROM_REDIS = ("step", "pool", "score", "candidates", "stale_skipped")


@functools.cache
def _columns(model: type) -> tuple[tuple[str, sa.Column], ...]:
    return tuple((attr.key, attr.columns[0]) for attr in sa.inspect(model).column_attrs)


@functools.cache
def _statement() -> sa.Select:
    """target (the interaction, locked) -> agent (locked if the call waits) -> offered ->
    reserved (the agent's status) -> reservation; one row saying what happened."""
    interactions, users = Interaction.__table__, User.__table__
    queues, reservations = Queue.__table__, Reservation.__table__
    now = sa.bindparam("o_now", type_=UTCDateTime())
    target = (
        sa.select(
            interactions.c.id,
            interactions.c.status,
            sa.func.coalesce(interactions.c.enqueued_at, interactions.c.created_at).label(
                "waiting_since"
            ),
            queues.c.name.label("queue_name"),
            queues.c.strategy,
            sa.func.coalesce(queues.c.offer_timeout_s, sa.bindparam("o_default_timeout")).label(
                "timeout_s"
            ),
        )
        .select_from(interactions.outerjoin(queues, queues.c.id == interactions.c.queue_id))
        .where(interactions.c.id == sa.bindparam("o_interaction"))
        .with_for_update(of=interactions)
        .cte("target")
    )
    agent = (
        sa.select(users.c.id, users.c.presence, users.c.capacity)
        .where(
            users.c.id == sa.bindparam("o_agent"),
            sa.exists().where(target.c.status == "queued"),
        )
        .with_for_update()
        .cte("agent")
    )
    offered = (
        sa.update(interactions)
        .values(status="offered", offered_at=now)
        .where(
            interactions.c.id == target.c.id,
            target.c.status == "queued",
            sa.exists().where(agent.c.presence == "available"),
        )
        .returning(*interactions.c)
        .cte("offered")
    )
    status = derived_status(users.c.id, users.c.presence, offering=True)
    reserved = (
        sa.update(users)
        .values(
            last_offer_at=now,
            status=status,
            status_since=sa.case((status != users.c.status, now), else_=users.c.status_since),
        )
        .where(users.c.id == agent.c.id, sa.exists().where(offered.c.id.is_not(None)))
        .returning(*users.c)
        .cte("reserved")
    )

    def text(name: str) -> sa.ColumnElement:
        return sa.cast(sa.bindparam(f"decision_{name}"), sa.Text)

    decision = sa.func.json_build_object(
        "step", text("step"),
        "strategy", target.c.strategy,
        "queue", target.c.queue_name,
        "pool", text("pool"),
        "score", sa.cast(sa.bindparam("decision_score"), sa.Float),
        "waited_s", sa.func.greatest(
            0,
            sa.cast(sa.func.floor(sa.extract("epoch", now - target.c.waiting_since)), sa.Integer),
        ),
        "candidates", sa.cast(sa.bindparam("decision_candidates", type_=sa.JSON), sa.JSON),
        "stale_skipped", sa.cast(sa.bindparam("decision_stale_skipped"), sa.Integer),
    )  # fmt: skip
    expires = sa.cast(now, sa.DateTime) + sa.func.make_interval(
        0, 0, 0, 0, 0, 0, target.c.timeout_s
    )
    reservation = (
        sa.insert(reservations)
        .from_select(
            ["id", "interaction_id", "agent_id", "status", "created_at", "expires_at", "decision"],
            sa.select(
                sa.cast(sa.bindparam("o_reservation"), reservations.c.id.type),
                offered.c.id,
                reserved.c.id,
                sa.literal("pending", sa.String),
                now,
                expires,
                decision,
            ).select_from(offered.join(reserved, sa.true()).join(target, sa.true())),
        )
        .returning(*reservations.c)
        .cte("reservation")
    )
    one = sa.select(sa.literal(1).label("one")).subquery("one")
    columns = [
        target.c.status.label("interaction_status"),
        agent.c.presence.label("agent_presence"),
        agent.c.capacity.label("agent_capacity"),
    ]
    for cte, model, prefix in (
        (offered, Interaction, "i_"),
        (reserved, User, "u_"),
        (reservation, Reservation, "r_"),
    ):
        columns += [cte.c[column.name].label(prefix + key) for key, column in _columns(model)]
    joined = one
    for cte in (target, agent, offered, reserved, reservation):
        joined = joined.outerjoin(cte, sa.true())
    return sa.select(*columns).select_from(joined)
