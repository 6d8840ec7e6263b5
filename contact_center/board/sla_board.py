"""The SLA board: open tickets and complaints by time to their next breach, what is breached
now, and each queue's SLA compliance today (UTC).

Read from the stored clocks (`contact_center.sla`: `TicketSla` rows and each ticket's
`next_breach_at`, kept current by every commit and by the SLA timers), in six queries
however many tickets there are. Compliance is `contact_center.sla.services.compliance`
for today, summed per queue.

Many boards poll this, so the answer is cached in Redis for `CACHE_S` seconds per
(queue, limit) under `board:sla:`; a lock lets one request compute while the others wait
for its answer, so a hundred open boards cost one database computation per 5 seconds.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from contact_center.agents.models import User
from contact_center.board import metrics
from contact_center.complaints.models import Complaint
from contact_center.db_types import isoformat, utcnow
from contact_center.extensions import db
from contact_center.redis_client import get_redis
from contact_center.routing.models import Queue
from contact_center.sla import clocks
from contact_center.sla.models import TicketSla
from contact_center.sla.services import clock_view, compliance
from contact_center.tickets.models import Ticket

CACHE_S = 5
CACHE_PREFIX = "board:sla:"
LOCK_S = 10  # a computation that takes longer than this lets another request start one
WAIT_S = 2.0  # how long a request waits for another's computation before doing its own
OPEN_STATES = ("running", "paused", "breached")  # not fulfilled, not stopped
METRIC_ORDER = {m: i for i, m in enumerate(clocks.METRICS + clocks.DEADLINE_METRICS)}


def cache_key(queue_id: int | None, limit: int) -> str:
    """The Redis key of one (queue, limit) answer."""
    return f"{CACHE_PREFIX}{queue_id if queue_id is not None else 'all'}:{limit}"


def cached_board(queue_id: int | None = None, limit: int = 100) -> dict[str, Any]:
    """`board(queue_id, limit)`, computed at most once per `CACHE_S` seconds per key across
    every request and process (the answer lives in Redis), with a fresh `server_time`."""
    redis = get_redis()
    key = cache_key(queue_id, limit)
    raw = redis.get(key)
    if raw is None and not redis.set(f"{key}:lock", "1", nx=True, ex=LOCK_S):
        deadline = time.monotonic() + WAIT_S  # another request is computing it: wait for it
        while raw is None and time.monotonic() < deadline:
            time.sleep(0.05)
            raw = redis.get(key)
    if raw is not None:
        answer = json.loads(raw)
    else:
        try:
            answer = board(queue_id, limit)
            redis.set(key, json.dumps(answer), px=CACHE_S * 1000)
        finally:
            redis.delete(f"{key}:lock")
    return {**answer, "server_time": isoformat(utcnow())}


def _open_conditions(queue_id: int | None) -> list[sa.ColumnElement[bool]]:
    """Open, unmerged tickets (optionally of one queue) with at least one open clock."""
    conditions = [
        Ticket.status.not_in(clocks.FINISHED),
        Ticket.merged_into_id.is_(None),
        sa.select(TicketSla.id)
        .where(TicketSla.ticket_id == Ticket.id, TicketSla.state.in_(OPEN_STATES))
        .correlate(Ticket)
        .exists(),
    ]
    if queue_id is not None:
        conditions.append(Ticket.queue_id == queue_id)
    return conditions


TICKET_COLUMNS = (
    Ticket.id,
    Ticket.number,
    Ticket.subject,
    Ticket.status,
    Ticket.priority,
    Ticket.type,
    Ticket.queue_id,
    Ticket.next_breach_at,
    User.display_name.label("assignee"),
    Complaint.id.label("complaint_id"),
)


def _with_details(query: sa.Select) -> sa.Select:
    """A ticket query joined to what the board shows besides the ticket's own columns."""
    return query.outerjoin(User, User.id == Ticket.assignee_id).outerjoin(
        Complaint, Complaint.ticket_id == Ticket.id
    )


def _past_due(now: datetime) -> sa.ColumnElement[bool]:
    """An open clock that is breached, or running past its due time (its timer not yet run)."""
    return sa.or_(
        TicketSla.state == "breached",
        sa.and_(TicketSla.state == "running", TicketSla.due_at <= now),
    )


def board(queue_id: int | None = None, limit: int = 100, now: datetime | None = None) -> dict:
    """The SLA board, uncached: see the module's docstring."""
    now = now or utcnow()
    conditions = _open_conditions(queue_id)
    # Soonest breach first; breached tickets (a due time in the past) lead, paused ones
    # (no due time) come last.
    tickets = db.session.execute(
        _with_details(sa.select(*TICKET_COLUMNS))
        .where(*conditions)
        .order_by(Ticket.next_breach_at.is_(None), Ticket.next_breach_at, Ticket.id)
        .limit(limit)
    ).all()

    past_due = sa.and_(TicketSla.state.in_(OPEN_STATES), _past_due(now))
    breached_count = db.session.scalar(
        sa.select(sa.func.count(sa.distinct(Ticket.id)))
        .join(TicketSla, TicketSla.ticket_id == Ticket.id)
        .where(*conditions, past_due)
    )
    since = sa.func.min(sa.func.coalesce(TicketSla.breached_at, TicketSla.due_at))
    breached = db.session.execute(
        _with_details(sa.select(*TICKET_COLUMNS, since.label("breached_since")))
        .join(TicketSla, TicketSla.ticket_id == Ticket.id)
        .where(*conditions, past_due)
        .group_by(*TICKET_COLUMNS)
        .order_by(since, Ticket.id)
        .limit(limit)
    ).all()

    ids = {t.id for t in tickets} | {t.id for t in breached}
    rows_of: dict[int, list[TicketSla]] = {}
    if ids:
        for row in db.session.scalars(
            sa.select(TicketSla).where(
                TicketSla.ticket_id.in_(ids), TicketSla.state.in_(OPEN_STATES)
            )
        ):
            rows_of.setdefault(row.ticket_id, []).append(row)
    clocks_of = {
        ticket_id: [
            _clock(row, now)
            for row in sorted(rows, key=lambda r: (METRIC_ORDER.get(r.metric, 99), r.cycle))
        ]
        for ticket_id, rows in rows_of.items()
    }

    names = dict(db.session.execute(sa.select(Queue.id, Queue.name)).tuples().all())
    return {
        "computed_at": isoformat(now),
        "cache_s": CACHE_S,
        "queue_id": queue_id,
        "limit": limit,
        "tickets": [_ticket(t, names, clocks_of.get(t.id, [])) for t in tickets],
        "breached_now": {
            "count": breached_count,
            "tickets": [
                {
                    **_ticket(t, names, [c for c in clocks_of.get(t.id, []) if c["breached"]]),
                    "breached_since": isoformat(t.breached_since),
                }
                for t in breached
            ],
        },
        "compliance_today": compliance_today(now, queue_id, names),
    }


def _ticket(row: Any, names: dict[int, str], clock_list: list[dict]) -> dict[str, Any]:
    return {
        "id": row.id,
        "number": row.number,
        "subject": row.subject,
        "status": row.status,
        "priority": row.priority,
        "type": row.type,
        "complaint_id": row.complaint_id,
        "queue_id": row.queue_id,
        "queue": names.get(row.queue_id),
        "assignee": row.assignee,
        "next_breach_at": isoformat(row.next_breach_at),
        "clocks": clock_list,
    }


def _clock(row: TicketSla, now: datetime) -> dict[str, Any]:
    """One open clock: `clock_view`'s fields, plus seconds left (a running clock: to its due
    time; a paused one: target time left) or when it breached."""
    view = clock_view(row, now)
    past_due = row.state == "breached" or (
        row.state == "running" and row.due_at is not None and row.due_at <= now
    )
    remaining_s = None
    if not past_due:
        if row.state == "paused":
            remaining_s = round((row.target_minutes - row.elapsed_minutes) * 60)
        elif row.due_at is not None:
            remaining_s = round((row.due_at - now).total_seconds())
    return {
        "metric": view["metric"],
        "cycle": view["cycle"],
        "state": view["state"],
        "paused": view["paused"],
        "target_minutes": view["target_minutes"],
        "business_time": view["business_time"],
        "due_at": view["due_at"],
        "remaining_s": remaining_s,
        "breached": past_due,
        "breached_since": isoformat(row.breached_at or row.due_at) if past_due else None,
    }


def compliance_today(
    now: datetime, queue_id: int | None, names: dict[int, str]
) -> list[dict[str, Any]]:
    """Met and breached clocks per queue (and metric) that ended today, UTC: the SLA
    report's `compliance` for today, summed per queue."""
    start = datetime(now.year, now.month, now.day, tzinfo=UTC)
    queues: dict[int | None, dict[str, Any]] = {}
    for group in compliance(start, start + timedelta(days=1), queue_id=queue_id):
        queue = queues.setdefault(
            group["queue_id"],
            {
                "queue_id": group["queue_id"],
                "queue": names.get(group["queue_id"]),
                "met": 0,
                "breached": 0,
                "metrics": {},
            },
        )
        queue["met"] += group["achieved"]
        queue["breached"] += group["breached"]
        metric = queue["metrics"].setdefault(group["metric"], {"met": 0, "breached": 0})
        metric["met"] += group["achieved"]
        metric["breached"] += group["breached"]
    result = []
    for queue in sorted(queues.values(), key=lambda q: (q["queue"] is None, q["queue"] or "")):
        result.append(
            {
                **_figures(queue),
                "queue_id": queue["queue_id"],
                "queue": queue["queue"],
                "metrics": [
                    {"metric": metric, **_figures(counts)}
                    for metric, counts in sorted(
                        queue["metrics"].items(), key=lambda m: METRIC_ORDER.get(m[0], 99)
                    )
                ],
            }
        )
    return result


def _figures(counts: dict[str, Any]) -> dict[str, Any]:
    total = counts["met"] + counts["breached"]
    pct = metrics.ratio(100 * counts["met"], total)
    return {
        "met": counts["met"],
        "breached": counts["breached"],
        "total": total,
        "met_pct": None if pct is None else round(pct, 1),
    }
