"""A new call from an unknown caller, recorded in one PostgreSQL statement.

Most incoming calls need only this: look the caller up, write the call waiting in the
default queue, and store the webhook's answer with it. Through the ORM that is five
round trips (BEGIN, the lookup, two INSERTs, COMMIT) and a unit of work; here it is one
autocommitted statement, so it is atomic on its own: the call and its answer are written
together or not at all, and a retried delivery fails on the unique CallSid or answer key
and gets the stored answer, exactly as on the ORM path. A known caller writes nothing here
and takes the ORM path, which also applies what a customer brings (tier, account owner).
"""

from __future__ import annotations

import functools
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from contact_center.customers.models import CustomerIdentity
from contact_center.customers.services import normalise_phone
from contact_center.db_types import utcnow
from contact_center.extensions import db
from contact_center.routing.models import Interaction, Queue
from contact_center.routing.services import CREATED_DEFAULT_QUEUE, new_call
from contact_center.webhook_receipts import WebhookReceipt


def available(queue: Queue) -> bool:
    """Whether a call to `queue` may take the one-statement path in this request.

    Only on PostgreSQL (data-modifying CTEs), and only when this request's session holds
    nothing uncommitted (such as a default queue it has just created): the statement runs
    on a connection of its own, which would not see it.
    """
    session = db.session()
    return (
        db.engine.dialect.name == "postgresql"
        and _python_defaults_only()
        and sa.inspect(queue).persistent
        and CREATED_DEFAULT_QUEUE not in session.info
        and not (session.new or session.dirty or session.deleted)
    )


def record_unknown_caller(
    call_sid: str,
    from_number: str | None,
    to_number: str | None,
    queue: Queue,
    *,
    answer_key: str,
    answer_body: str,
    content_type: str,
) -> Interaction | None:
    """Commit a call waiting in `queue` with its answer, unless the caller is a customer.

    Returns the call, persistent in this session as if loaded (routing reads it next), or
    None when the number belongs to a customer: then nothing is written. Raises
    IntegrityError, having written nothing, when the CallSid or the answer key is taken.
    """
    interaction = new_call(call_sid, from_number, to_number, None, queue=queue)
    values = _column_values(interaction)
    params = {
        **values,
        "caller_e164": normalise_phone(from_number) if from_number else None,
        "answer_key": answer_key,
        "answer_status": 200,
        "answer_type": content_type,
        "answer_body": answer_body,
        "answer_at": utcnow(),
    }
    with db.engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT")
        row = connection.execute(_statement(tuple(values)), params).one()
    if row.known_customer_id is not None:
        return None
    # The values written, as after an ORM flush; the database's own defaults came back.
    returned = row._mapping
    loaded = sa.inspect(interaction).dict
    for key, _column in _columns():
        if key in returned:
            set_committed_value(interaction, key, returned[key])
        elif key not in loaded:
            set_committed_value(interaction, key, values.get(key))
    # As loaded from the database: no history, so the session has nothing to write.
    make_transient_to_detached(interaction)
    db.session.add(interaction)
    return interaction


def _column_values(interaction: Interaction) -> dict[str, Any]:
    """The row the ORM would insert: the values set, then the columns' Python defaults.

    Columns with neither are left out, so their database defaults apply, as on a flush.
    """
    loaded = sa.inspect(interaction).dict
    values = {}
    for key, column in _columns():
        if column.primary_key:
            continue
        if key in loaded:
            values[key] = loaded[key]
        elif column.default is not None:
            default = column.default
            if default.is_callable:
                values[key] = default.arg(None)
            elif default.is_scalar:
                values[key] = default.arg
    return values


@functools.cache
def _python_defaults_only() -> bool:
    """Whether every column default is a Python value or function, which this path applies
    itself; a column with a SQL expression default sends calls the ORM way instead."""
    return all(
        column.default is None or column.default.is_callable or column.default.is_scalar
        for _key, column in _columns()
    )


@functools.cache
def _columns() -> tuple[tuple[str, sa.Column], ...]:
    """The call's mapped attributes and their columns (read once: the mapper is fixed)."""
    return tuple((attr.key, attr.columns[0]) for attr in sa.inspect(Interaction).column_attrs)


@functools.cache
def _statement(keys: tuple[str, ...]) -> sa.Select:
    """WITH caller (lookup), new_call (INSERT unless known), answer (INSERT with the call):
    one row of the known customer's id (or NULL) and the new call's id (or NULL)."""
    interactions = Interaction.__table__
    receipts = WebhookReceipt.__table__
    attrs = dict(_columns())
    caller = (
        sa.select(CustomerIdentity.customer_id)
        .where(
            CustomerIdentity.kind == "phone",
            CustomerIdentity.value == sa.bindparam("caller_e164", type_=sa.String),
        )
        .cte("caller")
    )
    # Casts: in a SELECT list PostgreSQL cannot infer a parameter's type from the column.
    row = sa.select(
        *(sa.cast(sa.bindparam(key, type_=attrs[key].type), attrs[key].type) for key in keys)
    ).where(~sa.exists(caller.select()))
    # The id, and whatever the database filled in (server defaults) for columns left out.
    filled = [
        column
        for key, column in attrs.items()
        if column.primary_key or (column.server_default is not None and key not in keys)
    ]
    call = (
        sa.insert(interactions)
        .from_select([attrs[key].name for key in keys], row)
        .returning(*filled)
        .cte("new_call")
    )
    answer = (
        sa.insert(receipts)
        .from_select(
            ["key", "status_code", "content_type", "body", "created_at"],
            sa.select(
                sa.cast(sa.bindparam("answer_key"), receipts.c.key.type),
                sa.cast(sa.bindparam("answer_status"), receipts.c.status_code.type),
                sa.cast(sa.bindparam("answer_type"), receipts.c.content_type.type),
                sa.cast(sa.bindparam("answer_body"), receipts.c.body.type),
                sa.cast(
                    sa.bindparam("answer_at", type_=receipts.c.created_at.type),
                    receipts.c.created_at.type,
                ),
            ).select_from(call),
        )
        .cte("answer")
    )
    one = sa.select(sa.literal(1).label("one")).subquery("one")
    known = sa.select(caller.c.customer_id).scalar_subquery().label("known_customer_id")
    returned = [call.c[column.name].label(key) for key, column in attrs.items() if column in filled]
    return sa.select(known, *returned).select_from(one.outerjoin(call, sa.true())).add_cte(answer)
