"""Single read-only statements outside the request's transaction, where that is safe.

On PostgreSQL a statement in the session's transaction pays for a BEGIN round trip, a
ROLLBACK when the session ends, and a fresh plan (psycopg drops its prepared statements
when a transaction ends that way). One statement on an autocommit connection sees a
consistent snapshot by itself, keeps its prepared plan, and costs one round trip. That is
only right when the session holds nothing the statement should see: no pending objects and
nothing flushed but not yet committed, which the session's flush and end events track.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from contact_center.extensions import db

WROTE = "flushed_uncommitted"


def _flushed(session: Session, flush_context: Any) -> None:
    session.info[WROTE] = True


def _ended(session: Session) -> None:
    session.info.pop(WROTE, None)


def track_writes() -> None:
    """Note in each session whether it holds flushed, uncommitted writes."""
    if not sa.event.contains(Session, "after_flush", _flushed):
        sa.event.listen(Session, "after_flush", _flushed)
        sa.event.listen(Session, "after_commit", _ended)
        sa.event.listen(Session, "after_rollback", _ended)


def execute_read(statement: sa.Executable, params: dict[str, Any]) -> sa.Result:
    """Run one read-only statement: on its own autocommit connection when the session has
    nothing uncommitted (PostgreSQL), else in the session's transaction."""
    session = db.session()
    clean = not (session.new or session.dirty or session.deleted or session.info.get(WROTE))
    if clean and db.engine.dialect.name == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            # Buffered, so the rows outlive the connection's return to the pool.
            return conn.execute(statement, params).freeze()()
    return session.execute(statement, params)
