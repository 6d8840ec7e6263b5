"""Arrivals: one script enqueues and matches; lost routing state is rebuilt before any write."""

from __future__ import annotations

import threading
import time

import sqlalchemy as sa

from contact_center.extensions import db
from contact_center.routing import services as routing
from contact_center.routing.models import Interaction, Reservation
from contact_center.routing.store import BUILT, RESERVATIONS, TAG, NotBuilt, RoutingStore
from tests.conftest import ACCOUNT_SID, PUBLIC_BASE_URL, call_sid, sign
from tests.routing.conftest import pending


def _call(twilio_post, n: int):
    params = {
        "CallSid": call_sid(n),
        "AccountSid": ACCOUNT_SID,
        "From": "+447700900123",
        "To": "+441632960000",
        "CallStatus": "ringing",
    }
    return twilio_post("/webhooks/twilio/voice", params)


def _events_of(store, interaction_id: int) -> list[str]:
    return [e["type"] for e in store.events(1000) if e.get("interaction") == str(interaction_id)]


def _places(redis, interaction_id: int) -> int:
    """How many waiting sets (pools and personal sets) hold the interaction."""
    return sum(
        1
        for key in redis.scan_iter(match=f"{TAG}:*w:*")
        if redis.zscore(key, str(interaction_id)) is not None
    )


def _by_call(n: int) -> Interaction:
    db.session.expire_all()
    return db.session.scalar(sa.select(Interaction).where(Interaction.external_id == call_sid(n)))


def test_a_call_arriving_while_an_agent_is_free_is_offered_by_the_enqueue_script(
    make_queue, agent, twilio_post
):
    make_queue("General", is_default=True)
    sam = agent("sam")
    assert _call(twilio_post, 1).status_code == 200
    interaction = _by_call(1)
    reservation = pending(sam)
    assert reservation is not None and reservation.interaction_id == interaction.id
    assert interaction.status == "offered"
    store = routing.get_store()
    # Reserved, not waiting: out of its pool, the reservation and its timer in Redis.
    assert _places(store.redis, interaction.id) == 0
    assert store.reservation(reservation.id)["interaction"] == str(interaction.id)
    assert store.redis.zscore(f"{TAG}:timers", f"offer:{reservation.id}") is not None
    assert _events_of(store, interaction.id) == ["enqueued", "offered"]
    assert reservation.decision["step"] == "tier 0"
    assert [c["id"] for c in reservation.decision["candidates"]] == [sam.id]


def test_a_retried_call_waits_once_and_gets_the_same_answer(make_queue, twilio_post):
    make_queue("General", is_default=True)
    first = _call(twilio_post, 2)
    retry = _call(twilio_post, 2)
    assert first.status_code == retry.status_code == 200
    assert retry.data == first.data
    count = sa.select(sa.func.count()).select_from(Interaction)
    assert db.session.scalar(count) == 1
    interaction = _by_call(2)
    assert interaction.status == "queued"
    store = routing.get_store()
    assert _places(store.redis, interaction.id) == 1
    assert _events_of(store, interaction.id) == ["enqueued"]


def test_an_arrival_after_redis_lost_its_state_rebuilds_it_first(app, make_queue, agent, arrive):
    queue = make_queue(channels=["email"])
    sam = agent("sam")
    first = arrive(queue)
    assert pending(sam).interaction_id == first.id
    routing.get_store()  # this process has just seen the state built: it trusts it a while
    app.extensions["redis"].flushdb()  # Redis restarts empty
    second = arrive(queue)
    store = routing.get_store()
    assert store.redis.exists(BUILT)
    # Redis agrees with the database again: the offer in flight was revoked by the rebuild
    # and made afresh, and both interactions are where the database says they are.
    db.session.expire_all()
    offers = db.session.scalars(sa.select(Reservation).where(Reservation.status == "pending"))
    assert set(store.redis.hkeys(RESERVATIONS)) == {r.id for r in offers}
    assert pending(sam).interaction_id == first.id
    assert _places(store.redis, first.id) == 0
    assert _places(store.redis, second.id) == 1
    assert _events_of(store, second.id) == ["enqueued"]
    assert store.load(sam.id, "email") == 1


def test_the_enqueue_script_changes_nothing_while_the_state_is_not_built(app):
    redis = app.extensions["redis"]
    store = RoutingStore(redis)
    try:
        store.enqueue_and_match(
            f"{TAG}:w:1:voice::0",
            7,
            1.0,
            queue_id=1,
            timers={"step:7:1:0": 2.0},
            idle_keys=[f"{TAG}:i:1:voice::0"],
            channel="voice",
            voice_exclusive=True,
            reservation_id="r-1",
            now=1.0,
            expires=16.0,
        )
    except NotBuilt:
        pass
    else:
        raise AssertionError("the script enqueued into a routing state that was not built")
    assert redis.dbsize() == 0


def test_other_operations_notice_lost_state_within_the_check_interval(app, make_queue, agent):
    make_queue(channels=["email"])
    sam = agent("sam")
    routing.get_store()
    app.extensions["redis"].flushdb()
    time.sleep(routing.BUILT_CHECK_S + 0.05)
    store = routing.get_store()
    assert store.redis.exists(BUILT)
    assert store.presence(sam.id) == "available"


def test_concurrent_deliveries_of_a_new_call_record_it_once_and_answer_alike(app, make_queue):
    make_queue("General", is_default=True)
    params = {
        "CallSid": call_sid(3),
        "AccountSid": ACCOUNT_SID,
        "From": "+447700900123",
        "To": "+441632960000",
        "CallStatus": "ringing",
    }
    headers = {"X-Twilio-Signature": sign(PUBLIC_BASE_URL + "/webhooks/twilio/voice", params)}
    barrier = threading.Barrier(4)
    answers, errors = [], []

    def deliver():
        client = app.test_client()  # its own request and database session in this thread
        try:
            barrier.wait(timeout=10)
            response = client.post("/webhooks/twilio/voice", data=params, headers=headers)
            answers.append((response.status_code, response.data))
        except Exception as exc:  # a failure here is what the test is looking for
            errors.append(exc)

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert [status for status, _ in answers] == [200] * 4
    assert len({body for _, body in answers}) == 1
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Interaction)) == 1
    interaction = _by_call(3)
    store = routing.get_store()
    assert _places(store.redis, interaction.id) == 1
    assert _events_of(store, interaction.id) == ["enqueued"]


def test_calls_read_the_default_queue_at_most_once_a_second(app, make_queue, twilio_post):
    queue = make_queue("General", is_default=True)
    statements: list[str] = []

    def record(conn, cursor, statement, *args):
        statements.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", record)
    try:
        assert _call(twilio_post, 4).status_code == 200
        db.session.expunge_all()  # the next request's session starts without the queue
        assert _call(twilio_post, 5).status_code == 200
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", record)
    assert len([s for s in statements if "FROM queues" in s]) == 1
    assert not [s for s in statements if s.lstrip().upper().startswith("UPDATE")]
    for n in (4, 5):
        interaction = _by_call(n)
        assert interaction.queue_id == queue.id
        assert _places(routing.get_store().redis, interaction.id) == 1
