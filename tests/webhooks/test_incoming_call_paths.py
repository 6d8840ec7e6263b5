"""The incoming call's two paths answer and record alike: one statement for an unknown
caller on PostgreSQL (routing.arrivals), the ORM for the rest (and on SQLite)."""

from __future__ import annotations

import sqlalchemy as sa

from contact_center.customers.services import create_customer
from contact_center.extensions import db
from contact_center.routing import services as routing
from contact_center.routing.models import Interaction
from contact_center.routing.store import TAG
from contact_center.webhook_receipts import WebhookReceipt
from tests.conftest import call_sid
from tests.routing.conftest import pending

VOICE = "/webhooks/twilio/voice"
# Columns that differ between any two calls whatever path wrote them.
PER_CALL = {"id", "external_id", "created_at", "enqueued_at", "queue_entered_at", "queue_score"}


def _call(n: int, caller: str = "+447700900123") -> dict[str, str]:
    return {"CallSid": call_sid(n), "From": caller, "To": "+441632960000", "CallStatus": "ringing"}


def _row(n: int) -> dict:
    """The interaction of call n as stored (read afresh, not from this session)."""
    table = Interaction.__table__
    with db.engine.connect() as connection:
        row = connection.execute(sa.select(table).where(table.c.external_id == call_sid(n)))
        return dict(row.one()._mapping)


def _count(model) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def _statements(app, post) -> list[str]:
    """The SQL statements a webhook request runs."""
    statements: list[str] = []

    def record(conn, cursor, statement, *args):
        statements.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", record)
    try:
        post()
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", record)
    return statements


def _events(interaction_id: int) -> list[str]:
    store = routing.get_store()
    return [e["type"] for e in store.events(1000) if e.get("interaction") == str(interaction_id)]


def test_an_unknown_caller_is_recorded_in_one_statement_on_postgresql(app, twilio_post):
    routing.create_queue(name="General", channels=["voice"], is_default=True)
    db.session.commit()
    assert twilio_post(VOICE, _call(1)).status_code == 200  # reads the default queue once
    statements = _statements(app, lambda: twilio_post(VOICE, _call(2)))
    if db.engine.dialect.name == "postgresql":
        assert len(statements) == 1 and "INSERT INTO webhook_receipts" in statements[0]
    else:
        assert any("INSERT INTO interactions" in s for s in statements)
    row = _row(2)
    assert row["status"] == "queued" and row["customer_id"] is None
    assert _events(row["id"]) == ["enqueued"]


def test_both_paths_write_the_same_call_and_answer(app, twilio_post):
    # The first call of a new deployment creates the default queue: the ORM path.
    first = twilio_post(VOICE, _call(1))
    db.session.remove()  # the next request starts with a fresh session, as in production
    responses = []
    statements = _statements(app, lambda: responses.append(twilio_post(VOICE, _call(2))))
    if db.engine.dialect.name == "postgresql":  # the one-statement path wrote the second
        assert len([s for s in statements if "INSERT" in s]) == 1
    second = responses[0]
    assert first.status_code == second.status_code == 200
    assert first.data == second.data and b"<Enqueue" in first.data
    assert first.content_type == second.content_type
    orm, fast = _row(1), _row(2)
    assert {k: v for k, v in orm.items() if k not in PER_CALL} == {
        k: v for k, v in fast.items() if k not in PER_CALL
    }
    assert fast["created_at"] is not None and fast["enqueued_at"] == fast["queue_entered_at"]
    assert fast["queue_score"] == fast["enqueued_at"].timestamp()  # no credit: unknown caller
    receipts = db.session.scalars(sa.select(WebhookReceipt).order_by(WebhookReceipt.id)).all()
    assert [r.key for r in receipts] == [f"voice:{call_sid(1)}", f"voice:{call_sid(2)}"]
    assert {(r.status_code, r.content_type, r.body) for r in receipts} == {
        (200, first.content_type, first.data.decode())
    }
    store = routing.get_store()
    for row in (orm, fast):
        assert store.location(row["id"]) is not None and _events(row["id"]) == ["enqueued"]


def test_a_retried_call_gets_the_same_answer_and_changes_nothing(app, twilio_post):
    routing.create_queue(name="General", channels=["voice"], is_default=True)
    db.session.commit()
    first = twilio_post(VOICE, _call(3))
    before = _row(3)
    retries = [twilio_post(VOICE, _call(3)) for _ in range(2)]
    assert [r.status_code for r in retries] == [200, 200]
    assert {r.data for r in retries} == {first.data}
    assert _count(Interaction) == 1 and _count(WebhookReceipt) == 1
    assert _row(3) == before
    assert _events(before["id"]) == ["enqueued"]
    assert routing.get_store().redis.hlen(f"{TAG}:where") == 1


def test_a_known_caller_is_identified_with_what_the_customer_brings(app, twilio_post):
    routing.create_queue(name="General", channels=["voice"], is_default=True)
    customer = create_customer({"name": "Known", "phones": ["+447700900999"], "tier": "A"})
    db.session.commit()
    twilio_post(VOICE, _call(4))  # an unknown caller first: the default queue is read
    # The same number as a caller ID in national format.
    assert twilio_post(VOICE, _call(5, caller="07700 900999")).status_code == 200
    row = _row(5)
    assert row["customer_id"] == customer.id and row["status"] == "queued"
    assert row["queue_score"] == row["enqueued_at"].timestamp() - 120.0  # tier A credit
    assert _row(4)["customer_id"] is None
    assert _count(Interaction) == 2 and _count(WebhookReceipt) == 2


def test_the_account_owner_is_offered_a_known_callers_call_first(app, twilio_post, create_user):
    routing.create_queue(name="General", channels=["voice"], is_default=True)
    owner = create_user("olive")
    routing.set_agent_status(owner, "available")
    other = create_user("otto")
    routing.set_agent_status(other, "available")
    create_customer({"name": "Owned", "phones": ["+447700900888"], "owner_id": owner.id})
    db.session.commit()
    assert twilio_post(VOICE, _call(6, caller="+447700900888")).status_code == 200
    assert _row(6)["preferred_agent_id"] == owner.id
    assert pending(owner) is not None and pending(other) is None


def test_a_call_offered_at_once_is_written_and_offered_once(app, twilio_post, create_user):
    routing.create_queue(name="General", channels=["voice"], is_default=True)
    sam = create_user("sam")
    routing.set_agent_status(sam, "available")
    db.session.commit()
    twilio_post(VOICE, _call(7, caller="+447700900001"))  # offered to sam
    db.session.remove()
    assert twilio_post(VOICE, _call(8)).status_code == 200  # waits: sam is reserved
    offer = pending(sam)
    assert offer is not None and offer.interaction.external_id == call_sid(7)
    assert _row(7)["status"] == "offered" and _row(8)["status"] == "queued"
    assert _events(_row(8)["id"]) == ["enqueued"]


def test_a_bad_signature_is_refused_and_writes_nothing(app, twilio_post):
    routing.create_queue(name="General", channels=["voice"], is_default=True)
    db.session.commit()
    assert twilio_post(VOICE, _call(9), signature="forged").status_code == 403
    assert twilio_post(VOICE, _call(9), signature=None).status_code == 403
    assert _count(Interaction) == 0 and _count(WebhookReceipt) == 0
