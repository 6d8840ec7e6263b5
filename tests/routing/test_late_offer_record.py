"""An offer whose database row is late (its process waits on a lock or a connection) must not
time out into a second offer of the same call: invariant 1 under load."""

from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa

from contact_center.agents.models import User
from contact_center.extensions import db
from contact_center.routing import services as routing
from contact_center.routing.models import Interaction, Reservation
from tests.routing.conftest import fire_timers


def pending_offers(interaction_id: int) -> list[int]:
    db.session.expire_all()
    return list(
        db.session.scalars(
            sa.select(Reservation.agent_id).where(
                Reservation.interaction_id == interaction_id, Reservation.status == "pending"
            )
        )
    )


@pytest.mark.real_services  # PostgreSQL row locks hold the recording back
@pytest.mark.timeout(120)
def test_a_late_offer_row_keeps_the_call_from_a_second_agent(app, make_queue, agent, arrive):
    queue = make_queue()
    call = arrive(queue, channel="voice")
    alice = agent("alice", available=False)
    bob = agent("bob", available=False)
    alice_id, call_id = alice.id, call.id
    timeout_s = app.config["OFFER_TIMEOUT_S"]

    # Another transaction holds the call's row: alice's offer is reserved in Redis, but its
    # process cannot record it until the lock goes.
    blocker = db.engine.connect()
    transaction = blocker.begin()
    blocker.execute(sa.select(Interaction.id).where(Interaction.id == call_id).with_for_update())

    def alice_comes_in() -> None:
        with app.app_context():
            routing.set_agent_status(db.session.get(User, alice_id), "available")

    errors = []

    def guarded() -> None:
        try:
            alice_comes_in()
        except BaseException as error:  # surfaced below
            errors.append(error)
            raise

    recording = threading.Thread(target=guarded)
    recording.start()
    try:
        store = routing.get_store()
        key = store.location(call_id)
        deadline = time.monotonic() + 30
        while call_id in store.waiting(key) and time.monotonic() < deadline:
            time.sleep(0.05)  # until Redis has reserved the call for alice
        assert call_id not in store.waiting(key), errors

        fire_timers(after_s=timeout_s + 1)  # the offer's timeout, the row still missing
        routing.set_agent_status(bob, "available")
        assert pending_offers(call_id) == []  # bob was not offered the call
    finally:
        transaction.rollback()
        blocker.close()
        recording.join(timeout=30)

    assert pending_offers(call_id) == [alice_id]  # her offer was recorded after all
    # It rings out by its own timeout in time, and only then goes to bob.
    fire_timers(after_s=timeout_s + routing.UNRECORDED_OFFER_RECHECK_S + 1)
    assert pending_offers(call_id) == [bob.id]
