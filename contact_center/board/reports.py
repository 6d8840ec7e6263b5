"""Reports for a date range in a time zone: per 15-minute interval, per day, per agent, SLA
compliance and the complaints register.

The database aggregates interactions into 15-minute UTC buckets per queue (or per agent);
Python rolls the buckets up into local intervals or days. Every time zone in use is offset
from UTC by a whole number of quarter hours, so a UTC quarter hour is a local one too, and
days follow the zone's own midnights (23 or 25 hours across a DST change).
The formulas are in `contact_center.board.metrics`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from contact_center.agents.models import User
from contact_center.audit import AuditEvent
from contact_center.board import metrics
from contact_center.complaints.models import Complaint
from contact_center.complaints.services import register_query
from contact_center.db_types import isoformat, utcnow
from contact_center.extensions import db
from contact_center.routing.models import Interaction, Queue, Reservation
from contact_center.sla.services import compliance
from contact_center.tickets.models import Ticket

KINDS = ("interval", "daily", "agents", "sla", "complaints")
INTERVAL_S = 15 * 60
MAX_DAYS = 92
ALL_QUEUES = "All queues"
TRANSFER_ACTION = "interaction.transferred"
# The additive figures a bucket holds; `metrics.summarise` derives the rest.
COUNTS = (
    "answered",
    "abandoned",
    "answered_within",
    "abandoned_within",
    "wait_ms",
    "handled",
    "handle_ms",
    "csat_sum",
    "csat_count",
)
QUEUE_COLUMNS = (
    "period",
    "period_start",
    "queue_id",
    "queue",
    "sl_threshold_s",
    "offered",
    "answered",
    "abandoned",
    "answered_within",
    "abandoned_within",
    "service_level",
    "asa_s",
    "aht_s",
    "abandon_rate",
    "transfers",
    "csat",
    "csat_count",
)
AGENT_COLUMNS = (
    "agent_id",
    "agent",
    "offers",
    "missed_offers",
    "answered",
    "answered_within",
    "handled",
    "asa_s",
    "aht_s",
    "transfers",
    "csat",
    "csat_count",
)
SLA_COLUMNS = (
    "policy_id",
    "policy",
    "metric",
    "queue_id",
    "achieved",
    "breached",
    "total",
    "achieved_pct",
)
COMPLAINT_COLUMNS = (
    "id",
    "ticket_number",
    "queue_id",
    "category",
    "severity",
    "stage",
    "outcome",
    "received_at",
    "acknowledge_due",
    "acknowledged_at",
    "acknowledgement",
    "final_response_due",
    "final_response_at",
    "final_response",
    "closed_at",
)
COLUMNS = {
    "interval": QUEUE_COLUMNS,
    "daily": QUEUE_COLUMNS,
    "agents": AGENT_COLUMNS,
    "sla": SLA_COLUMNS,
    "complaints": COMPLAINT_COLUMNS,
}


@dataclass(frozen=True)
class Period:
    """Local days `first`..`last` (inclusive) in `tz`: [start, end) in UTC."""

    first: date
    last: date
    tz: ZoneInfo

    @property
    def start(self) -> datetime:
        return _local_midnight(self.first, self.tz)

    @property
    def end(self) -> datetime:
        return _local_midnight(self.last + timedelta(days=1), self.tz)


def _local_midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(), tzinfo=tz).astimezone(UTC)


def report(kind: str, period: Period, queue_id: int | None = None) -> dict[str, Any]:
    """The report of `kind` for `period` (one queue or all): its rows, totals and definitions."""
    if kind in ("interval", "daily"):
        rows, totals = queue_report(period, queue_id, daily=kind == "daily")
    elif kind == "agents":
        rows, totals = agent_report(period, queue_id)
    elif kind == "sla":
        rows, totals = sla_report(period, queue_id)
    else:
        rows, totals = complaints_report(period, queue_id)
    return {
        "kind": kind,
        "from": period.first.isoformat(),
        "to": period.last.isoformat(),
        "tz": period.tz.key,
        "start": isoformat(period.start),
        "end": isoformat(period.end),
        "queue_id": queue_id,
        "columns": list(COLUMNS[kind]),
        "rows": rows,
        "totals": totals,
        "definitions": metrics.DEFINITIONS,
    }


# ---------------------------------------------------------------- SQL building blocks


def _epoch_ms(column: sa.ColumnElement) -> sa.ColumnElement[int]:
    """Milliseconds since 1970 of a (naive UTC) timestamp column, as an integer."""
    if db.engine.dialect.name == "postgresql":
        return sa.cast(sa.func.floor(sa.extract("epoch", column) * 1000), sa.BigInteger)
    # SQLite keeps julian days to the millisecond: scale back and round off the float error.
    return sa.cast(
        sa.func.round((sa.func.julianday(column) - 2440587.5) * 86_400_000.0), sa.BigInteger
    )


def _thresholds_ms() -> sa.ColumnElement[int]:
    """Each interaction's queue's service-level threshold, in milliseconds."""
    thresholds = {
        queue.id: metrics.sl_threshold_s(queue) * 1000 for queue in db.session.scalars(_queues())
    }
    default = metrics.DEFAULT_SL_THRESHOLD_S * 1000
    if not thresholds:
        return sa.literal(default)
    return sa.case(thresholds, value=Interaction.queue_id, else_=default)


def _queues() -> sa.Select:
    return sa.select(Queue).order_by(Queue.name)


def _flag(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[int]:
    return sa.case((condition, 1), else_=0)


def _when(condition: sa.ColumnElement[bool], value: sa.ColumnElement) -> sa.ColumnElement:
    return sa.case((condition, value), else_=0)


def _interaction_figures(
    period: Period, queue_id: int | None, group_by: Iterable[sa.ColumnElement]
) -> list[sa.Row]:
    """The COUNTS of interactions whose wait ended in the period, grouped by `group_by`
    (which may use the label "bucket": the 15-minute UTC bucket the wait ended in)."""
    i = Interaction
    abandoned = sa.func.coalesce(i.outcome, "") == "abandoned"
    answered = sa.and_(
        i.answered_at.is_not(None),
        i.answered_at >= i.enqueued_at,  # answered since it was last queued
        sa.func.coalesce(i.outcome, "") != "abandoned",
        i.status.not_in(("queued", "offered")),
    )
    answer_ms = _epoch_ms(i.answered_at) - _epoch_ms(i.enqueued_at)
    abandon_ms = _epoch_ms(i.ended_at) - _epoch_ms(i.enqueued_at)
    threshold_ms = _thresholds_ms()
    wrapup_ms = sa.case(
        (i.wrapup_until > i.ended_at, _epoch_ms(i.wrapup_until) - _epoch_ms(i.ended_at)), else_=0
    )
    handled = sa.and_(answered, i.duration_s.is_not(None))
    rated = sa.and_(sa.or_(answered, abandoned), i.satisfaction.is_not(None))
    finished_at = sa.case((abandoned, i.ended_at), else_=i.answered_at)
    bucket = (_epoch_ms(finished_at) // (INTERVAL_S * 1000)).label("bucket")
    groups = [bucket if column == "bucket" else column for column in group_by]
    query = (
        sa.select(
            *groups,
            sa.func.sum(_flag(answered)).label("answered"),
            sa.func.sum(_flag(abandoned)).label("abandoned"),
            sa.func.sum(_flag(sa.and_(answered, answer_ms <= threshold_ms))).label(
                "answered_within"
            ),
            sa.func.sum(_flag(sa.and_(abandoned, abandon_ms <= threshold_ms))).label(
                "abandoned_within"
            ),
            sa.func.sum(_when(answered, answer_ms)).label("wait_ms"),
            sa.func.sum(_flag(handled)).label("handled"),
            sa.func.sum(_when(handled, i.duration_s * 1000 + wrapup_ms)).label("handle_ms"),
            sa.func.sum(_when(rated, i.satisfaction)).label("csat_sum"),
            sa.func.sum(_flag(rated)).label("csat_count"),
        )
        .where(
            i.queue_id.is_not(None),
            i.enqueued_at.is_not(None),
            sa.or_(
                sa.and_(abandoned, i.ended_at >= period.start, i.ended_at < period.end),
                sa.and_(answered, i.answered_at >= period.start, i.answered_at < period.end),
            ),
        )
        .group_by(*groups)
    )
    if queue_id is not None:
        query = query.where(i.queue_id == queue_id)
    return list(db.session.execute(query))


def _transfers(period: Period, queue_id: int | None) -> list[sa.Row]:
    """Transfers in the period per queue handed on from, 15-minute bucket and agent."""
    from_queue = AuditEvent.before["queue_id"].as_integer()
    bucket = _epoch_ms(AuditEvent.at) // (INTERVAL_S * 1000)
    query = (
        sa.select(
            from_queue.label("queue_id"),
            bucket.label("bucket"),
            AuditEvent.actor_id.label("agent_id"),
            sa.func.count().label("n"),
        )
        .where(
            AuditEvent.action == TRANSFER_ACTION,
            AuditEvent.at >= period.start,
            AuditEvent.at < period.end,
        )
        .group_by(from_queue, bucket, AuditEvent.actor_id)
    )
    if queue_id is not None:
        query = query.where(from_queue == queue_id)
    return list(db.session.execute(query))


def _empty() -> dict[str, int]:
    return dict.fromkeys(COUNTS, 0)


def _add(into: dict[str, int], row: Any) -> None:
    for name in COUNTS:
        into[name] += int(getattr(row, name) or 0)


# ---------------------------------------------------------------- interval and daily


def queue_report(
    period: Period, queue_id: int | None, *, daily: bool
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Per queue and overall, per 15-minute interval (or per local day): rows and totals.

    Every interval (day) of the period has an overall row; a queue has rows where it had
    interactions or transfers. Totals: one per queue with activity, then the overall one.
    """
    buckets: dict[tuple[int | None, datetime], dict[str, int]] = {}
    transfers: dict[tuple[int | None, datetime], int] = {}

    def slot(bucket: int) -> datetime:
        start = datetime.fromtimestamp(bucket * INTERVAL_S, UTC)
        if daily:
            return _local_midnight(start.astimezone(period.tz).date(), period.tz)
        return start

    for row in _interaction_figures(period, queue_id, (Interaction.queue_id, "bucket")):
        moment = slot(row.bucket)
        for key in ((row.queue_id, moment), (None, moment)):
            _add(buckets.setdefault(key, _empty()), row)
    for row in _transfers(period, queue_id):
        moment = slot(row.bucket)
        for key in ((row.queue_id, moment), (None, moment)):
            transfers[key] = transfers.get(key, 0) + row.n

    queues = {queue.id: queue for queue in db.session.scalars(_queues())}
    rows = []
    for moment in _slots(period, daily):
        local = moment.astimezone(period.tz)
        label = local.date().isoformat() if daily else local.strftime("%Y-%m-%d %H:%M")
        queue_ids = _by_name({q for (q, m) in (*buckets, *transfers) if m == moment}, queues)
        for queue_id in [*queue_ids, None]:
            key = (queue_id, moment)
            counts, moved = buckets.get(key, _empty()), transfers.get(key, 0)
            rows.append(_queue_row(queue_id, label, moment, counts, moved, queues))
    return rows, _queue_totals(buckets, transfers, queues)


def _by_name(queue_ids: Iterable[int | None], queues: dict[int, Queue]) -> list[int]:
    """The queue ids (None left out), in the order of the queues' names."""
    present = [q for q in queue_ids if q is not None]
    return sorted(present, key=lambda q: (queues[q].name if q in queues else "", q))


def _slots(period: Period, daily: bool) -> list[datetime]:
    if daily:
        days = (period.last - period.first).days + 1
        return [_local_midnight(period.first + timedelta(days=n), period.tz) for n in range(days)]
    count = int((period.end - period.start).total_seconds()) // INTERVAL_S
    return [period.start + timedelta(seconds=INTERVAL_S * n) for n in range(count)]


def _queue_row(
    queue_id: int | None,
    label: str,
    moment: datetime | None,
    counts: dict[str, int],
    transfers: int,
    queues: dict[int, Queue],
) -> dict[str, Any]:
    queue = queues.get(queue_id) if queue_id is not None else None
    name = ALL_QUEUES if queue_id is None else (queue.name if queue is not None else None)
    return {
        "period": label,
        "period_start": isoformat(moment),
        "queue_id": queue_id,
        "queue": name,
        "sl_threshold_s": metrics.sl_threshold_s(queue) if queue is not None else None,
        "answered": counts["answered"],
        "abandoned": counts["abandoned"],
        "answered_within": counts["answered_within"],
        "abandoned_within": counts["abandoned_within"],
        "transfers": transfers,
        "csat_count": counts["csat_count"],
        **metrics.summarise(counts),
    }


def _queue_totals(
    buckets: dict[tuple[int | None, datetime], dict[str, int]],
    transfers: dict[tuple[int | None, datetime], int],
    queues: dict[int, Queue],
) -> list[dict[str, Any]]:
    """One total per queue with activity, then the overall one."""
    sums: dict[int | None, dict[str, int]] = {}
    moved: dict[int | None, int] = {}
    for (queue_id, _), counts in buckets.items():
        into = sums.setdefault(queue_id, _empty())
        for name in COUNTS:
            into[name] += counts[name]
    for (queue_id, _), n in transfers.items():
        moved[queue_id] = moved.get(queue_id, 0) + n
    return [
        _queue_row(q, "total", None, sums.get(q, _empty()), moved.get(q, 0), queues)
        for q in [*_by_name({*sums, *moved}, queues), None]
    ]


# ---------------------------------------------------------------- agents


def agent_report(
    period: Period, queue_id: int | None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Per agent: offers made and missed, answered, handled, ASA, AHT, transfers, CSAT."""
    figures: dict[int, dict[str, int]] = {}
    for row in _interaction_figures(period, queue_id, (Interaction.agent_id,)):
        if row.agent_id is not None:
            _add(figures.setdefault(row.agent_id, _empty()), row)
    transfers: dict[int, int] = {}
    for row in _transfers(period, queue_id):
        if row.agent_id is not None:
            transfers[row.agent_id] = transfers.get(row.agent_id, 0) + row.n
    offers = _offers(period, queue_id)
    agent_ids = {*figures, *transfers, *offers}
    users = {
        user.id: user for user in db.session.scalars(sa.select(User).where(User.id.in_(agent_ids)))
    }
    ordered = sorted(agent_ids, key=lambda a: (users[a].display_name if a in users else "", a))
    rows = [
        _agent_row(a, users.get(a), figures.get(a, _empty()), transfers.get(a, 0), offers.get(a))
        for a in ordered
    ]
    total = _empty()
    for counts in figures.values():
        for name in COUNTS:
            total[name] += counts[name]
    all_offers = (sum(o[0] for o in offers.values()), sum(o[1] for o in offers.values()))
    totals = [_agent_row(None, None, total, sum(transfers.values()), all_offers)]
    return rows, totals


def _offers(period: Period, queue_id: int | None) -> dict[int, tuple[int, int]]:
    """Offers (reservations) made to each agent in the period, and how many they missed
    (declined or let time out)."""
    missed = Reservation.status.in_(("rejected", "timeout"))
    query = (
        sa.select(
            Reservation.agent_id, sa.func.count().label("n"), sa.func.sum(_flag(missed)).label("m")
        )
        .where(Reservation.created_at >= period.start, Reservation.created_at < period.end)
        .group_by(Reservation.agent_id)
    )
    if queue_id is not None:
        query = query.join(Interaction, Interaction.id == Reservation.interaction_id).where(
            Interaction.queue_id == queue_id
        )
    return {row.agent_id: (row.n, int(row.m or 0)) for row in db.session.execute(query)}


def _agent_row(
    agent_id: int | None,
    user: User | None,
    counts: dict[str, int],
    transfers: int,
    offers: tuple[int, int] | None,
) -> dict[str, Any]:
    figures = metrics.summarise(counts)
    return {
        "agent_id": agent_id,
        "agent": "All agents" if agent_id is None else (user.display_name if user else None),
        "offers": offers[0] if offers else 0,
        "missed_offers": offers[1] if offers else 0,
        "answered": counts["answered"],
        "answered_within": counts["answered_within"],
        "handled": counts["handled"],
        "asa_s": figures["asa_s"],
        "aht_s": figures["aht_s"],
        "transfers": transfers,
        "csat": figures["csat"],
        "csat_count": counts["csat_count"],
    }


# ---------------------------------------------------------------- SLA and complaints


def sla_report(
    period: Period, queue_id: int | None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """SLA compliance (contact_center.sla's report) for clocks that ended in the period."""
    rows = [
        {column: group[column] for column in SLA_COLUMNS}
        for group in compliance(period.start, period.end, queue_id=queue_id)
    ]
    achieved = sum(row["achieved"] for row in rows)
    breached = sum(row["breached"] for row in rows)
    total = achieved + breached
    pct = metrics.ratio(100 * achieved, total)
    totals = [
        {
            "policy_id": None,
            "policy": "All policies",
            "metric": "all",
            "queue_id": queue_id,
            "achieved": achieved,
            "breached": breached,
            "total": total,
            "achieved_pct": None if pct is None else round(pct, 1),
        }
    ]
    return rows, totals


def complaints_report(
    period: Period, queue_id: int | None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The complaints received in the period, with their deadlines and how each stands."""
    query = register_query({"received_from": period.start, "received_to": period.end})
    query = query.join(Ticket, Ticket.id == Complaint.ticket_id).add_columns(Ticket)
    if queue_id is not None:
        query = query.where(Ticket.queue_id == queue_id)
    now = utcnow()
    rows = []
    for complaint, ticket in db.session.execute(query):
        rows.append(
            {
                "id": complaint.id,
                "ticket_number": ticket.number,
                "queue_id": ticket.queue_id,
                "category": complaint.category,
                "severity": complaint.severity,
                "stage": complaint.stage,
                "outcome": complaint.outcome,
                "received_at": isoformat(complaint.received_at),
                "acknowledge_due": isoformat(complaint.acknowledge_due),
                "acknowledged_at": isoformat(complaint.acknowledged_at),
                "acknowledgement": deadline_status(
                    complaint.acknowledge_due, complaint.acknowledged_at, now
                ),
                "final_response_due": isoformat(complaint.final_response_due),
                "final_response_at": isoformat(complaint.final_response_at),
                "final_response": deadline_status(
                    complaint.final_response_due, complaint.final_response_at, now
                ),
                "closed_at": isoformat(complaint.closed_at),
            }
        )
    totals = [
        {
            "id": None,
            "ticket_number": "total",
            "count": len(rows),
            "acknowledgement_overdue": sum(r["acknowledgement"] == "overdue" for r in rows),
            "final_response_overdue": sum(r["final_response"] == "overdue" for r in rows),
            "late": sum("late" in (r["acknowledgement"], r["final_response"]) for r in rows),
            "open": sum(r["stage"] != "closed" for r in rows),
        }
    ]
    return rows, totals


def deadline_status(due: datetime | None, met: datetime | None, now: datetime) -> str:
    """How a deadline stands: met (on time), late (met after it), overdue, or open."""
    if met is not None:
        return "met" if due is None or met <= due else "late"
    if due is not None and due < now:
        return "overdue"
    return "open"


# ---------------------------------------------------------------- CSV

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> str:
    """A CSV cell: empty for None, and text a spreadsheet would run as a formula (starting
    with = + - @, tab or carriage return) prefixed with a quote so it stays text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    if isinstance(value, str) and text.startswith(FORMULA_START):
        return "'" + text
    return text


def to_csv(result: dict[str, Any]) -> str:
    """A report as CSV: a header of its columns, its rows, then its totals (the complaints
    register has no total row: its totals are counts of other things)."""
    columns = result["columns"]
    totals = result["totals"] if result["kind"] != "complaints" else []
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
    writer.writerow(columns)
    for row in [*result["rows"], *totals]:
        writer.writerow([csv_cell(row.get(column)) for column in columns])
    return buffer.getvalue()
