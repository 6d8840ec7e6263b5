"""The invariant checks the fault tests end with (tests/invariants.py) hold on a sound state
and report each kind of broken state, naming its rows."""

from __future__ import annotations

from datetime import timedelta

import pytest

from contact_center.db_types import utcnow
from contact_center.extensions import db
from contact_center.routing import services as routing
from contact_center.routing.models import Reservation
from contact_center.routing.store import LOAD, RESERVATIONS, WHERE
from contact_center.sla.models import SlaEvent
from contact_center.tickets.services import create_ticket
from tests.invariants import assert_invariants, invariant_violations


@pytest.fixture
def ringing(app, make_queue, agent, arrive):
    """Alice is offered one call; two more wait; bob is away."""
    queue = make_queue("General")
    alice, bob = agent("alice"), agent("bob", available=False)
    calls = [arrive(queue, channel="voice") for _ in range(3)]
    offer = routing.pending_offer(alice)
    assert offer is not None and offer.interaction_id == calls[0].id
    return {"alice": alice, "bob": bob, "calls": calls, "offer": offer}


def test_a_sound_state_passes(app, ringing):
    assert invariant_violations(app) == []
    assert_invariants(app)


def test_two_offers_of_one_interaction_are_reported(app, ringing):
    offer, bob = ringing["offer"], ringing["bob"]
    db.session.add(
        Reservation(
            id="second-offer",
            interaction_id=offer.interaction_id,
            agent_id=bob.id,
            status="pending",
            created_at=offer.created_at + timedelta(seconds=1),
            expires_at=offer.expires_at,
        )
    )
    db.session.commit()
    problems = invariant_violations(app)
    assert (
        f"invariant 1: interaction {offer.interaction_id} has 2 pending reservations: "
        f"{offer.id} (interaction {offer.interaction_id}, agent {ringing['alice'].id}), "
        f"second-offer (interaction {offer.interaction_id}, agent {bob.id})"
    ) in problems
    assert any(
        p.startswith(f"invariant 1: interaction {offer.interaction_id} offered to two agents")
        and offer.id in p
        and "second-offer" in p
        for p in problems
    ), problems
    with pytest.raises(AssertionError, match="second-offer"):
        assert_invariants(app)


def test_a_queued_interaction_missing_from_redis_is_reported(app, ringing):
    waiting = ringing["calls"][1]
    redis = app.extensions["redis"]
    key = redis.hget(WHERE, str(waiting.id))
    redis.zrem(key, str(waiting.id))
    problems = invariant_violations(app)
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"invariant 2: interaction {waiting.id} is queued")
    # An unbuilt Redis is not a loss: the next routing step rebuilds it from the database.
    routing.get_store().clear()
    assert invariant_violations(app) == []


def test_an_offer_redis_lost_is_reported(app, ringing):
    offer = ringing["offer"]
    app.extensions["redis"].hdel(RESERVATIONS, offer.id)
    assert invariant_violations(app) == [
        f"invariant 2: interaction {offer.interaction_id} is offered (reservation {offer.id}) "
        f"but Redis {RESERVATIONS} does not hold that offer"
    ]


def test_an_agent_over_capacity_is_reported(app, ringing):
    alice = ringing["alice"]
    app.extensions["redis"].hset(LOAD, f"{alice.id}:voice", 2)
    offer = ringing["offer"]
    assert invariant_violations(app) == [
        f"invariant 1: Redis {LOAD} {alice.id}:voice = 2, outside 0..{{cc}}:cap "
        f"{alice.id}:voice = 1",
        f"invariant 1: Redis {LOAD} {alice.id}:voice = 2 but the database holds 1 slots: "
        f"['interaction {offer.interaction_id}']",
    ]


def test_an_offer_left_ringing_past_its_expiry_is_reported(app, ringing):
    offer = ringing["offer"]
    offer.expires_at = utcnow() - timedelta(seconds=60)
    db.session.commit()
    problems = invariant_violations(app, timer_lag_s=30)
    assert len(problems) == 1 and problems[0].startswith(
        f"invariant 4: reservation {offer.id} (interaction {offer.interaction_id}"
    ), problems
    assert invariant_violations(app, timer_lag_s=120) == []


def test_an_escalation_recorded_twice_is_reported(app):
    ticket = create_ticket("Card not arrived", "email")
    db.session.commit()
    step = {"step": 0, "policy": "Standard", "after_breach_minutes": 0}
    for n in (1, 2):
        db.session.add(
            SlaEvent(
                ticket_id=ticket.id,
                kind="escalated",
                metric="first_response",
                cycle=0,
                details=step,
                once_key=f"copy-{n}",
            )
        )
    db.session.commit()
    ids = sorted(db.session.scalars(db.select(SlaEvent.id).where(SlaEvent.kind == "escalated")))
    assert invariant_violations(app) == [
        f"invariant 5: ticket {ticket.id} has 2 'escalated' events for first_response cycle 0"
        f", policy 'Standard' step 0: sla_events {ids}"
    ]


def test_redis_holding_what_the_database_ended_is_reported(app, ringing):
    offer, waiting = ringing["offer"], ringing["calls"][1]
    key = app.extensions["redis"].hget(WHERE, str(waiting.id))
    offer.status = "revoked"  # the database closed the offer, Redis still rings it
    offer.interaction.status = "ended"
    waiting.status = "ended"  # and ended a call Redis still has waiting
    db.session.commit()
    problems = invariant_violations(app)
    assert (
        f"invariant 2: interaction {waiting.id} waits in Redis {key} but the database does "
        f"not have it queued"
    ) in problems
    assert (
        f"invariant 2: Redis {RESERVATIONS} holds offer {offer.id} of interaction "
        f"{offer.interaction_id}, not pending in the database"
    ) in problems
    assert (
        f"invariant 2: Redis {{cc}}:offer has agent {ringing['alice'].id} ringing with "
        f"{offer.id}, not pending in the database (no offer would reach them)"
    ) in problems
