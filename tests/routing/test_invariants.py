"""Property-based: random arrivals, presence changes, accepts, rejects, timeouts, completions,
abandons, disconnects and Redis rebuilds; the routing invariants hold after every step."""

from __future__ import annotations

import os
from collections import Counter

import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from contact_center.agents.models import User
from contact_center.agents.services import create_user
from contact_center.extensions import db
from contact_center.routing import policy
from contact_center.routing import services as routing
from contact_center.routing.models import HOLDING_STATUSES, Interaction, Queue, Reservation
from contact_center.routing.store import RESERVATIONS, TAG
from tests.routing.conftest import fire_timers

# Which interaction channels use each capacity channel (a callback is a voice call).
CHANNELS_USING = {"voice": ("voice", "callback"), "email": ("email",)}
AGENTS = [
    # username, skills, capacity, team
    ("ann", {"lang:en": 5}, {"voice": 1, "email": 3}, "General"),
    ("ben", {"lang:en": 3, "lang:zh": 4}, {"voice": 1, "email": 2}, "General"),
    ("cat", {"lang:zh": 2}, {"voice": 1, "email": 1}, "Cards"),
    ("dan", {"lang:en": 1}, {"voice": 0, "email": 3}, "Cards"),
]


def _clean(app) -> None:
    db.session.remove()
    with db.engine.begin() as connection:
        for table in reversed(db.metadata.sorted_tables):
            connection.execute(table.delete())
    app.extensions["redis"].flushdb()


class RoutingMachine(RuleBasedStateMachine):
    app = None  # set by the test

    def __init__(self) -> None:
        super().__init__()
        _clean(self.app)
        self.queues = [
            routing.create_queue(name="General", channels=["voice", "email"], is_default=True),
            routing.create_queue(
                name="Mandarin",
                channels=["voice", "email"],
                required_skills={"lang:zh": 3},
                overflow_steps=[{"after_s": 5, "relax": {"lang:zh": 2}}],
                max_missed_offers=1,
            ),
            routing.create_queue(
                name="Cards",
                channels=["email"],
                teams=["Cards"],
                strategy="least_occupied",
                overflow_steps=[{"after_s": 5, "queue": "General"}],
            ),
        ]
        db.session.commit()
        self.agents = [
            create_user(name, "correct-horse-1", skills=skills, capacity=cap, team=team)
            for name, skills, cap, team in AGENTS
        ]
        self.serial = 0

    # ------------------------------------------------------------------ rules
    @rule(
        queue=st.integers(0, 2),
        channel=st.sampled_from(["voice", "email"]),
        tier=st.sampled_from(["A", "B", "C"]),
        complaint=st.booleans(),
        extra=st.sampled_from([{}, {}, {"lang:en": 3}]),
        preferred=st.none() | st.integers(0, 3),
    )
    def arrive(self, queue, channel, tier, complaint, extra, preferred):
        target = self.queues[queue]
        if channel not in target.channels:
            channel = target.channels[0]
        self.serial += 1
        routing.create_interaction(
            channel=channel,
            queue=db.session.get(Queue, target.id),
            # A call's id is a CallSid the Twilio stub knows (it refuses to redirect others).
            external_id=f"CA{0xB0000000 + self.serial:032x}"
            if channel == "voice"
            else f"p-{self.serial}",
            customer_tier=tier,
            complaint=complaint,
            required_skills=extra,
            preferred_agent_id=self.agents[preferred].id if preferred is not None else None,
            preferred_for_s=3,
        )

    @rule(
        agent=st.integers(0, 3),
        status=st.sampled_from(["available", "available", "away", "offline"]),
    )
    def set_status(self, agent, status):
        routing.set_agent_status(self._agent(agent), status)

    @rule(pick=st.integers(0, 3))
    def accept(self, pick):
        reservation = self._pick_pending(pick)
        if reservation is not None:
            routing.accept(reservation.agent, reservation.id)

    @rule(pick=st.integers(0, 3))
    def reject(self, pick):
        reservation = self._pick_pending(pick)
        if reservation is not None:
            routing.reject(reservation.agent, reservation.id)

    @rule(seconds=st.sampled_from([1, 6, 16, 31]))
    def time_passes(self, seconds):
        fire_timers(seconds)

    @rule(pick=st.integers(0, 5))
    def complete(self, pick):
        held = self._held(("connecting", "active"))
        if held:
            interaction = held[pick % len(held)]
            routing.complete(interaction.agent, interaction.id)

    @rule(pick=st.integers(0, 5))
    def wrapup_done(self, pick):
        held = self._held(("wrapup",))
        if held:
            interaction = held[pick % len(held)]
            routing.wrapup_done(interaction.agent, interaction.id)

    @rule(pick=st.integers(0, 50))
    def abandon(self, pick):
        waiting = db.session.scalars(
            sa.select(Interaction)
            .where(Interaction.status.in_(("queued", "offered")))
            .order_by(Interaction.id)
        ).all()
        if waiting:
            routing.abandon(waiting[pick % len(waiting)])

    @rule(agent=st.integers(0, 3))
    def console_closes_and_returns(self, agent):
        user = self._agent(agent)
        routing.agent_connected(user)
        routing.agent_disconnected(user)
        routing.agent_connected(self._agent(agent))

    @precondition(lambda self: self.serial > 0)
    @rule()
    def redis_restarts(self):
        self.app.extensions["redis"].flushdb()
        # What the first process to notice does (an arrival at once, anything else within
        # BUILT_CHECK_S): rebuild from the database, since Redis says it is not built.
        assert routing.rebuild_state()["agents"] == len(self.agents)

    # ------------------------------------------------------------------ helpers
    def _agent(self, index: int) -> User:
        return db.session.get(User, self.agents[index].id)

    @staticmethod
    def _pick_pending(pick: int) -> Reservation | None:
        pending = db.session.scalars(
            sa.select(Reservation)
            .where(Reservation.status == "pending")
            .order_by(Reservation.created_at)
        ).all()
        return pending[pick % len(pending)] if pending else None

    @staticmethod
    def _held(statuses) -> list[Interaction]:
        return list(
            db.session.scalars(
                sa.select(Interaction)
                .where(Interaction.agent_id.is_not(None), Interaction.status.in_(statuses))
                .order_by(Interaction.id)
            )
        )

    # ------------------------------------------------------------------ invariants
    @invariant()
    def routing_invariants(self):
        db.session.expire_all()
        store = routing.get_store()
        redis = store.redis
        pending = db.session.scalars(
            sa.select(Reservation).where(Reservation.status == "pending")
        ).all()

        # 1. No interaction offered twice, no agent with two offers.
        assert max(Counter(r.interaction_id for r in pending).values(), default=0) <= 1
        assert max(Counter(r.agent_id for r in pending).values(), default=0) <= 1
        # Redis and the database agree on the offers in flight.
        assert set(redis.hkeys(RESERVATIONS)) == {r.id for r in pending}

        # 2. No agent over capacity on any channel; Redis load matches the database.
        for agent in db.session.scalars(sa.select(User)):
            for channel in ("voice", "email"):
                holding = db.session.scalar(
                    sa.select(sa.func.count())
                    .select_from(Interaction)
                    .where(
                        Interaction.agent_id == agent.id,
                        Interaction.channel.in_(CHANNELS_USING[channel]),
                        Interaction.status.in_(HOLDING_STATUSES),
                    )
                )
                offered = sum(
                    1
                    for r in pending
                    if r.agent_id == agent.id
                    and policy.capacity_channel(r.interaction.channel) == channel
                )
                assert holding + offered <= (agent.capacity or {}).get(channel, 0)
                assert store.load(agent.id, channel) == holding + offered

        # 3. Nothing lost or duplicated: every queued interaction waits in exactly one set,
        #    nothing else waits anywhere, and offered ones have exactly one pending offer.
        places = Counter()
        for key in redis.scan_iter(match=f"{TAG}:*w:*"):
            for member in redis.zrange(key, 0, -1):
                places[int(member)] += 1
        interactions = db.session.scalars(sa.select(Interaction)).all()
        for interaction in interactions:
            expected = 1 if interaction.status == "queued" else 0
            assert places[interaction.id] == expected, (interaction.id, interaction.status)
            offers = sum(1 for r in pending if r.interaction_id == interaction.id)
            assert offers == (1 if interaction.status == "offered" else 0)

        # 4. Only qualified agents get offers (or the preferred agent, while preferred).
        for reservation in pending:
            interaction, agent = reservation.interaction, reservation.agent
            if reservation.decision.get("step") == "preferred agent":
                assert agent.id == interaction.preferred_agent_id
                continue
            queue = interaction.queue
            extra = {
                s: lv
                for s, lv in (interaction.required_skills or {}).items()
                if lv > (queue.required_skills or {}).get(s, 0)
            }
            requirements = policy.tiers(
                queue.required_skills or {}, queue.teams or [], queue.overflow_steps or [], extra
            )
            reached = len(
                policy.relaxing_steps(
                    sorted(queue.overflow_steps or [], key=lambda s: s["after_s"])[
                        : interaction.overflow_step
                    ]
                )
            )
            allowed = requirements[: min(reached, len(requirements) - 1) + 1]
            assert any(r.admits(agent.skill_levels(), agent.team) for r in allowed)
            assert (agent.capacity or {}).get(interaction.channel, 0) > 0
            assert agent.presence == "available"


def test_routing_invariants_hold_under_random_operations(app):
    RoutingMachine.app = app
    machine_settings = settings(
        max_examples=int(os.environ.get("HYPOTHESIS_EXAMPLES", 25)),
        stateful_step_count=30,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    from hypothesis.stateful import run_state_machine_as_test

    run_state_machine_as_test(RoutingMachine, settings=machine_settings)
