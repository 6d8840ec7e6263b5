"""Fault: the routing Redis crashes and comes back empty while calls wait and an offer rings.

A real redis-server of the test's own is killed and started again on the same port. The
next routing step notices the state is gone and rebuilds it from the database: every
waiting interaction back in its place (the one whose offer was ringing too), agents'
statuses restored, and nothing offered twice.
"""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from contact_center.extensions import db
from contact_center.routing import services as routing
from contact_center.routing.models import Interaction, Reservation
from tests.faults import RedisServer
from tests.invariants import assert_invariants
from tests.routing.conftest import offered_to


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path).start()
    yield server
    server.kill()


@pytest.fixture
def app_config(app_config, redis_server):
    return {**app_config, "REDIS_URL": redis_server.url}


def waiting_order(interactions: list[Interaction]) -> list[int]:
    """The interactions' ids in the order their Redis waiting set holds them."""
    store = routing.get_store()
    keys = {store.location(i.id) for i in interactions}
    assert len(keys) == 1 and None not in keys, keys
    return store.waiting(keys.pop())


@pytest.mark.real_services
@pytest.mark.timeout(120)
def test_a_redis_crash_loses_no_caller_and_no_place(app, redis_server, make_queue, agent, arrive):
    queue = make_queue("General")
    alice = agent("alice")
    bob = agent("bob", available=False)
    calls = [arrive(queue, channel="voice") for _ in range(5)]
    first = calls[0]
    assert offered_to(first) == alice.id  # ringing at alice when Redis dies
    assert waiting_order(calls) == [c.id for c in calls[1:]]

    redis_server.restart()
    assert app.extensions["redis"].dbsize() == 0  # really gone
    # A process trusts the state it saw for BUILT_CHECK_S before looking again (arrivals
    # look every time, inside their script); past that, any routing step notices.
    time.sleep(routing.BUILT_CHECK_S + 0.2)

    # Bob coming in is the next routing step: it finds the state gone and rebuilds it.
    routing.set_agent_status(bob, "available")

    db.session.expire_all()
    # Alice's ringing offer could not be trusted after the crash: revoked, its call back in
    # its place at the head of the queue, and offered again to the longest idle agent
    # (alice, still signed in and available); bob gets the next call.
    old = db.session.scalar(
        sa.select(Reservation).where(
            Reservation.agent_id == alice.id, Reservation.status == "revoked"
        )
    )
    assert old.interaction_id == first.id and old.reason == "routing state rebuilt"
    assert offered_to(first) == alice.id
    assert offered_to(calls[1]) == bob.id
    assert waiting_order(calls[2:]) == [c.id for c in calls[2:]]
    store = routing.get_store()
    assert store.presence(alice.id) == "available" and store.presence(bob.id) == "available"
    # Invariant 1: no interaction is offered to two agents at once.
    live = db.session.scalars(
        sa.select(Reservation.interaction_id).where(Reservation.status == "pending")
    ).all()
    assert sorted(live) == sorted({first.id, calls[1].id})
    # Nothing lost: every call is either ringing or waiting, in the database and in Redis.
    statuses = db.session.scalars(sa.select(Interaction.status)).all()
    assert sorted(statuses) == ["offered", "offered", "queued", "queued", "queued"]
    assert_invariants(app)
