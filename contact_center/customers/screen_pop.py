"""The screen pop read in one statement: every list aggregated as JSON inside the database.

The screen pop goes out with every offer, and each statement costs a network round trip
(a quarter to half a millisecond to PostgreSQL on our VM) plus SQLAlchemy's work per
statement and per ORM object. So one function per part builds a subquery that filters on
the customer id and returns the part's rows as one JSON array of arrays (PostgreSQL
`json_agg`, SQLite `json_group_array`); one select reads the customer's own columns beside
them, and Python turns the arrays into the dicts the API, the offer and the console show.
The statement is built once per dialect: only its parameters change between calls. A
reader who may not read some restricted queues gets a second shape, which leaves out those
queues' tickets, complaints and interactions (see agents.services.can_read); its list of
queues is an expanding parameter, rendered per call, which readers who may read every
queue (supervisors, and everyone while no queue is restricted) never pay for.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from datetime import datetime
from operator import itemgetter
from types import SimpleNamespace
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from contact_center.agents.models import User
from contact_center.customers.models import Customer, CustomerIdentity, CustomerNote
from contact_center.db_types import isoformat
from contact_center.extensions import db
from contact_center.reads import execute_read

RECENT_INTERACTIONS = 10
RECENT_NOTES = 10
OPEN_TICKETS = 10
COMPLAINTS = 10

CUSTOMER_ID = sa.bindparam("customer_id", type_=sa.Integer)
EXCLUDE_ID = sa.bindparam("exclude_id", type_=sa.Integer)
HIDDEN_QUEUES = sa.bindparam("hidden_queues", expanding=True)
READER_ID = sa.bindparam("reader_id", type_=sa.Integer)


def read(
    customer_id: int,
    exclude_interaction_id: int | None = None,
    hidden_queues: Sequence[int] = (),
    reader_id: int | None = None,
) -> dict[str, Any] | None:
    """The screen pop of a customer, or None when there is no such customer; without the
    records of `hidden_queues` that `reader_id` does not hold."""
    # 0 is never an id: "exclude nothing" without a second statement shape.
    params = {"customer_id": customer_id, "exclude_id": exclude_interaction_id or 0}
    if hidden_queues:
        params.update(hidden_queues=list(hidden_queues), reader_id=reader_id or 0)
    row = execute_read(
        _statement(db.engine.dialect.name, bool(hidden_queues)), params
    ).one_or_none()
    if row is None:
        return None
    return {
        "customer": _customer(row),
        "open_tickets": [_open_ticket(r) for r in _rows(row.open_tickets)],
        "complaints": [_complaint(r) for r in _rows(row.complaints)],
        "recent_interactions": [_interaction(r) for r in _rows(row.recent_interactions)],
        "notes": [_note(r) for r in _rows(row.notes)],
        "satisfaction": {
            "last": row.satisfaction_last,
            "average": (
                round(float(row.satisfaction_average), 2)
                if row.satisfaction_average is not None
                else None
            ),
        },
    }


# ---------------------------------------------------------------- the statement


@functools.cache
def _statement(dialect: str, hiding: bool) -> sa.Select:
    """The one select of the screen pop for a dialect, hiding some queues' records or not
    (built once, then reused)."""
    json = JSON_FUNCTIONS[dialect]
    return sa.select(
        Customer.id,
        Customer.name,
        Customer.type,
        Customer.status,
        Customer.region,
        Customer.tier,
        Customer.lifetime_value,
        Customer.marketing_opt_out,
        Customer.tags,
        Customer.owner_id,
        _user_name(Customer.owner_id).label("owner_name"),
        _identities(json).label("identities"),
        _open_tickets(json, hiding).label("open_tickets"),
        _complaints(json, hiding).label("complaints"),
        _recent_interactions(json, hiding).label("recent_interactions"),
        _notes(json).label("notes"),
        _satisfaction_average().label("satisfaction_average"),
        _satisfaction_last().label("satisfaction_last"),
    ).where(Customer.id == CUSTOMER_ID)


class JsonFunctions(NamedTuple):
    """A dialect's JSON functions: one row to an array, and rows to an array of them."""

    row: Callable[..., sa.ColumnElement[Any]]
    rows: Callable[[sa.ColumnElement[Any]], sa.ColumnElement[Any]]


JSON_FUNCTIONS = {
    "postgresql": JsonFunctions(sa.func.json_build_array, sa.func.json_agg),
    # A JSON value loses its JSON subtype when it leaves a subquery on SQLite: json() gives
    # it back, or json_group_array would quote each row as a string.
    "sqlite": JsonFunctions(
        sa.func.json_array, lambda row: sa.func.json_group_array(sa.func.json(row))
    ),
}


def _json_rows(
    json: JsonFunctions,
    rows: sa.Select,
    order_by: Sequence[sa.ColumnElement[Any]],
    limit: int | None = None,
) -> sa.ScalarSelect[Any]:
    """The first `limit` rows of `rows` as one JSON array of arrays, each ending with its rank.

    Neither dialect promises that an aggregate keeps the order of its input, so each row
    carries its rank and Python sorts by it; LIMIT still picks the rows in the database.
    Each row is built as one JSON value inside the limited subquery: that keeps the
    statement under 4 KB, the longest query psycopg keeps parsed between calls.
    """
    row = json.row(*rows.selected_columns, sa.func.row_number().over(order_by=order_by))
    limited = (
        rows.with_only_columns(row.label("item"), maintain_column_froms=True)
        .order_by(*order_by)
        .limit(limit)
        .subquery()
    )
    return sa.select(sa.type_coerce(json.rows(limited.c.item), sa.JSON)).scalar_subquery()


def _user_name(user_id: sa.ColumnElement[Any]) -> sa.ScalarSelect[Any]:
    """A user's name by id, as a subquery.

    Names are looked up by subqueries rather than joins because PostgreSQL plans them in
    a fraction of the time, and this statement is planned on every call: psycopg drops
    its prepared statements when a transaction rolls back, as every request's does.
    """
    user = aliased(User)
    return sa.select(user.display_name).where(user.id == user_id).scalar_subquery()


def _queue_name(queue_id: sa.ColumnElement[Any]) -> sa.ScalarSelect[Any]:
    """A queue's name by id, as a subquery (see _user_name)."""
    from contact_center.routing.models import Queue

    return sa.select(Queue.name).where(Queue.id == queue_id).scalar_subquery()


def _readable(
    rows: sa.Select, hiding: bool, queue_id: sa.ColumnElement[Any], holder_id: sa.ColumnElement[Any]
) -> sa.Select:
    """The rows, less those of the hidden queues that the reader does not hold."""
    from contact_center.agents.services import readable_clause

    if not hiding:
        return rows
    return rows.where(readable_clause(queue_id, holder_id, HIDDEN_QUEUES, READER_ID))


def _identities(json: JsonFunctions) -> sa.ScalarSelect[Any]:
    rows = sa.select(CustomerIdentity.kind, CustomerIdentity.value).where(
        CustomerIdentity.customer_id == CUSTOMER_ID
    )
    return _json_rows(json, rows, [CustomerIdentity.id])


def _open_tickets(json: JsonFunctions, hiding: bool) -> sa.ScalarSelect[Any]:
    # Imported here: tickets depend on customers, not the other way round.
    from contact_center.tickets.models import Ticket
    from contact_center.tickets.services import OPEN_STATUSES

    rows = sa.select(
        Ticket.id,
        Ticket.number,
        Ticket.subject,
        Ticket.status,
        Ticket.priority,
        Ticket.next_breach_at,
    ).where(
        Ticket.customer_id == CUSTOMER_ID,
        # One parameter per status: an expanding IN would be re-rendered on every call.
        Ticket.status.in_([sa.bindparam(f"open_{s}", s) for s in OPEN_STATUSES]),
    )
    rows = _readable(rows, hiding, Ticket.queue_id, Ticket.assignee_id)
    return _json_rows(json, rows, [Ticket.created_at.desc(), Ticket.id.desc()], OPEN_TICKETS)


COMPLAINT_COLUMNS = (
    "id",
    "number",
    "stage",
    "acknowledge_due",
    "acknowledged_at",
    "summary_resolution_due",
    "final_response_due",
    "final_response_at",
    "ombudsman_deadline",
)
COMPLAINT_TIMES = COMPLAINT_COLUMNS[3:]


def _complaints(json: JsonFunctions, hiding: bool) -> sa.ScalarSelect[Any]:
    from contact_center.complaints.models import Complaint
    from contact_center.tickets.models import Ticket

    rows = (
        sa.select(
            Complaint.id,
            Ticket.number,
            *(getattr(Complaint, name) for name in COMPLAINT_COLUMNS[2:]),
        )
        .join(Ticket, Ticket.id == Complaint.ticket_id)
        .where(Ticket.customer_id == CUSTOMER_ID)
    )
    rows = _readable(rows, hiding, Ticket.queue_id, Ticket.assignee_id)
    order = [Complaint.received_at.desc(), Complaint.id.desc()]
    return _json_rows(json, rows, order, COMPLAINTS)


def _recent_interactions(json: JsonFunctions, hiding: bool) -> sa.ScalarSelect[Any]:
    # Imported here: routing depends on customers, not the other way round.
    from contact_center.routing.models import Interaction

    rows = sa.select(
        Interaction.id,
        Interaction.channel,
        Interaction.created_at,
        _queue_name(Interaction.queue_id),
        _user_name(Interaction.agent_id),
        Interaction.outcome,
        Interaction.duration_s,
        Interaction.disposition,
    ).where(Interaction.customer_id == CUSTOMER_ID, Interaction.id != EXCLUDE_ID)
    rows = _readable(rows, hiding, Interaction.queue_id, Interaction.agent_id)
    order = [Interaction.created_at.desc(), Interaction.id.desc()]
    return _json_rows(json, rows, order, RECENT_INTERACTIONS)


def _notes(json: JsonFunctions) -> sa.ScalarSelect[Any]:
    rows = sa.select(
        CustomerNote.created_at, _user_name(CustomerNote.author_id), CustomerNote.text
    ).where(CustomerNote.customer_id == CUSTOMER_ID)
    order = [CustomerNote.created_at.desc(), CustomerNote.id.desc()]
    return _json_rows(json, rows, order, RECENT_NOTES)


def _scored() -> sa.ColumnElement[bool]:
    from contact_center.routing.models import Interaction

    return sa.and_(Interaction.customer_id == CUSTOMER_ID, Interaction.satisfaction.is_not(None))


def _satisfaction_average() -> sa.ScalarSelect[Any]:
    from contact_center.routing.models import Interaction

    return sa.select(sa.func.avg(Interaction.satisfaction)).where(_scored()).scalar_subquery()


def _satisfaction_last() -> sa.ScalarSelect[Any]:
    from contact_center.routing.models import Interaction

    return (
        sa.select(Interaction.satisfaction)
        .where(_scored())
        .order_by(Interaction.created_at.desc(), Interaction.id.desc())
        .limit(1)
        .scalar_subquery()
    )


# ---------------------------------------------------------------- rows to the screen pop


def _rows(value: list[list[Any]] | None) -> list[list[Any]]:
    """A part's rows in rank order (an aggregate over no rows is NULL on PostgreSQL)."""
    return sorted(value or [], key=itemgetter(-1))


def _time(value: str | None) -> datetime | None:
    # Inside JSON a time is text, spelt by the database (PostgreSQL drops trailing zeros of
    # the fraction, SQLite keeps what was stored): parse it, so isoformat spells it ours.
    return datetime.fromisoformat(value) if value is not None else None


def _customer(row: sa.Row[Any]) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "type": row.type,
        "status": row.status,
        "region": row.region,
        "tier": row.tier,
        "lifetime_value": str(row.lifetime_value),
        "owner": (
            {"id": row.owner_id, "name": row.owner_name} if row.owner_name is not None else None
        ),
        "marketing_opt_out": row.marketing_opt_out,
        "identities": [{"kind": kind, "value": value} for kind, value, _ in _rows(row.identities)],
        "tags": list(row.tags or []),
    }


def _open_ticket(r: list[Any]) -> dict[str, Any]:
    return {
        "id": r[0],
        "number": r[1],
        "subject": r[2],
        "status": r[3],
        "priority": r[4],
        "next_breach_at": isoformat(_time(r[5])),
    }


def _complaint(r: list[Any]) -> dict[str, Any]:
    from contact_center.complaints.services import deadlines

    fields = dict(zip(COMPLAINT_COLUMNS, r, strict=False))
    for name in COMPLAINT_TIMES:
        fields[name] = _time(fields[name])
    # The clocks are the complaints module's own definition; it reads only these attributes.
    clocks = deadlines(SimpleNamespace(**fields))  # type: ignore[arg-type]
    return {
        "id": fields["id"],
        "number": fields["number"],
        "status": fields["stage"],
        "deadlines": clocks,
    }


def _interaction(r: list[Any]) -> dict[str, Any]:
    return {
        "id": r[0],
        "channel": r[1],
        "started_at": isoformat(_time(r[2])),
        "queue": r[3],
        "agent": r[4],
        "outcome": r[5],
        "duration_s": r[6],
        "disposition": r[7],
    }


def _note(r: list[Any]) -> dict[str, Any]:
    return {"at": isoformat(_time(r[0])), "author": r[1], "text": r[2]}
