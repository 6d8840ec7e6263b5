"""Stress: 4 OS processes share one real Redis and route 10,000 interactions to 500 agents.

Each process drives RoutingStore directly (no app, no database: the atomicity under test is
the Redis/Lua side). It enqueues its share of the interactions while it matches from both
sides (MATCH_WAITING for a pool's head, MATCH_AGENT for a random agent), holds a number of
offers pending and calls live at once, and resolves them in random order: accepted (the call
then runs and ends later) or rejected (the interaction goes back to its place). Processes
stop when a shared counter says all 10,000 were accepted.

Afterwards the `{cc}:events` stream is replayed in order. Every offer and every resolution
is written to it by the same Lua script that makes the change, and every call's end is
written in the same MULTI as its load decrement, so the stream's order is the order in
which Redis applied the changes: it shows whether an interaction or an agent ever held two
offers at once, or an agent went over capacity.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import time
from collections import Counter
from pathlib import Path

import pytest
import redis

from contact_center.routing import policy
from contact_center.routing.store import (
    CAP,
    EVENTS,
    EVENTS_MAXLEN,
    LOAD,
    OFFER,
    RESERVATIONS,
    TIMERS,
    WHERE,
    Offer,
    RoutingStore,
    idle_key,
    waiting_key,
)

PROCESSES = 4
INTERACTIONS = 10_000
AGENTS = 500
STRICT_AGENTS = 350  # agents 1..350 qualify for queue 1's strict tier, the rest for tier 1
REJECT_P = 0.3
MAX_PENDING = 40  # offers a process keeps ringing at once
MAX_LIVE = 60  # accepted calls a process keeps running at once
DEADLINE_S = 240.0
ACCEPTED = "stress:accepted"  # shared counter (outside the routing key space on purpose)
SENTINEL = "stress:running"  # gone mid-run = someone else flushed the shared test DB

# Queue 1 has a strict tier and a relaxed one; queue 2 a single tier.
Q1T0 = policy.pool_name(1, "voice", "", 0)
Q1T1 = policy.pool_name(1, "voice", "", 1)
Q2T0 = policy.pool_name(2, "voice", "", 0)
# pool an interaction waits in -> idle sets it may take agents from (tiers 0..t)
IDLE_SOURCES = {
    Q1T0: [idle_key(Q1T0)],
    Q1T1: [idle_key(Q1T0), idle_key(Q1T1)],
    Q2T0: [idle_key(Q2T0)],
}
POOL_WEIGHTS = [(Q1T0, 0.4), (Q1T1, 0.2), (Q2T0, 0.4)]


def _agent_pools(agent_id: int) -> list[str]:
    """The idle sets an agent sits in: the strictest tier they qualify for, per queue."""
    return [Q1T0 if agent_id <= STRICT_AGENTS else Q1T1, Q2T0]


def _agent_sources(agent_id: int) -> list[tuple[str, str, bool, float]]:
    """The waiting sets an agent may take from: tiers j..K of each queue."""
    q1 = [Q1T0, Q1T1] if agent_id <= STRICT_AGENTS else [Q1T1]
    return [(waiting_key(pool), "voice", True, 1.0) for pool in [*q1, Q2T0]]


def _idle(agent_id: int) -> dict[str, float]:
    return {idle_key(pool): time.time() for pool in _agent_pools(agent_id)}


def _worker(index: int, redis_url: str, share: list[int], log_path: str, seed: int) -> None:
    """One OS process: enqueue `share`, match, resolve and end calls until all are accepted."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    store = RoutingStore(client)
    rng = random.Random(seed)
    to_enqueue = list(share)
    pools, weights = zip(*POOL_WEIGHTS, strict=True)
    pending: list[Offer] = []
    live: list[tuple[int, int]] = []  # (interaction, agent) on a call
    log: list[tuple[str, int, int, str]] = []
    stats = Counter()
    sequence = 0
    deadline = time.monotonic() + DEADLINE_S
    done = flushed = False

    def resolve(offer: Offer) -> None:
        now = time.time()
        if rng.random() < REJECT_P:
            resolved = store.resolve(offer.reservation_id, "rejected", now, requeue=True)
            outcome = "rejected"
            if resolved is not None:
                store.add_idle(offer.agent_id, _idle(offer.agent_id))
        else:
            resolved = store.resolve(offer.reservation_id, "accepted", now, requeue=False)
            outcome = "accepted"
            if resolved is not None:
                live.append((offer.interaction_id, offer.agent_id))
                client.incr(ACCEPTED)
        if resolved is None:
            outcome = "lost"  # closed by someone else: must never happen
        elif (resolved.interaction_id, resolved.agent_id) != (offer.interaction_id, offer.agent_id):
            outcome = "mismatch"
        log.append((offer.reservation_id, offer.interaction_id, offer.agent_id, outcome))
        stats[outcome] += 1
        if rng.random() < 0.02:  # a second resolve (a retried accept) must change nothing
            again = store.resolve(offer.reservation_id, "accepted", time.time(), requeue=False)
            stats["double_resolve_ok" if again is None else "double_resolve_bad"] += 1

    def end_call(interaction_id: int, agent_id: int) -> None:
        # The load decrement and its event in one MULTI (what store.change_load does, plus
        # the audit record), so the stream's order is the real order.
        pipe = client.pipeline(transaction=True)
        pipe.hincrby(LOAD, f"{agent_id}:voice", -1)
        pipe.xadd(
            EVENTS,
            {"type": "completed", "interaction": interaction_id, "agent": agent_id},
            maxlen=EVENTS_MAXLEN,
            approximate=True,
        )
        load, _ = pipe.execute()
        if load < 0:
            stats["negative_load"] += 1
        store.add_idle(agent_id, _idle(agent_id))
        stats["ended"] += 1

    try:
        steps = 0
        while True:
            steps += 1
            if steps % 50 == 0 or (not to_enqueue and not pending and not live):
                accepted, running = client.mget(ACCEPTED, SENTINEL)
                if int(accepted or 0) >= INTERACTIONS:
                    done = True
                    break
                if running is None:
                    flushed = True
                    break
                if time.monotonic() > deadline:
                    break
            r = rng.random()
            if to_enqueue and r < 0.2:
                for _ in range(min(len(to_enqueue), rng.randint(1, 3))):
                    interaction_id = to_enqueue.pop()
                    pool = rng.choices(pools, weights)[0]
                    score = interaction_id - rng.choice([0, 0, 0, 30, 120])  # priority credit
                    store.enqueue(waiting_key(pool), interaction_id, score)
                    stats["enqueued"] += 1
            elif r < 0.6 and len(pending) < MAX_PENDING:
                sequence += 1
                reservation_id = f"p{index}-{sequence}"
                now = time.time()
                if rng.random() < 0.5:
                    pool = rng.choices(pools, weights)[0]
                    offer = store.match_waiting(
                        waiting_key(pool),
                        IDLE_SOURCES[pool],
                        channel="voice",
                        voice_exclusive=True,
                        reservation_id=reservation_id,
                        now=now,
                        expires=now + 30,
                    )
                    side = "match_waiting"
                else:
                    agent_id = rng.randint(1, AGENTS)
                    offer = store.match_agent(
                        agent_id,
                        _agent_sources(agent_id),
                        reservation_id=reservation_id,
                        now=now,
                        expires=now + 30,
                    )
                    side = "match_agent"
                stats[f"{side}_calls"] += 1
                if offer is not None:
                    stats[f"{side}_offers"] += 1
                    pending.append(offer)
            elif r < 0.85 and pending:
                resolve(pending.pop(rng.randrange(len(pending))))
            elif live and (r >= 0.85 or len(live) > MAX_LIVE):
                end_call(*live.pop(rng.randrange(len(live))))
            elif pending:
                resolve(pending.pop(rng.randrange(len(pending))))
            elif not to_enqueue and not live:
                time.sleep(0.001)  # nothing of ours in flight: others hold the rest
        for offer in pending:  # only possible if something went wrong; keep it visible
            log.append((offer.reservation_id, offer.interaction_id, offer.agent_id, "leftover"))
            store.resolve(offer.reservation_id, "revoked", time.time(), requeue=False)
        for interaction_id, agent_id in live:
            end_call(interaction_id, agent_id)
    finally:
        Path(log_path).write_text(
            json.dumps(
                {
                    "done": done,
                    "flushed": flushed,
                    "log": log,
                    "stats": stats,
                    "left": len(to_enqueue),
                }
            )
        )
        client.close()


@pytest.fixture
def redis_client():
    url = os.environ["TEST_REDIS_URL"]
    client = redis.Redis.from_url(url, decode_responses=True)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


def _replay(client: redis.Redis) -> tuple[list[dict[str, str]], set[str]]:
    """Every stream entry in order, checking the invariants at each step."""
    entries: list[dict[str, str]] = []
    start = "-"
    while True:
        batch = client.xrange(EVENTS, min=start, count=10_000)
        if not batch:
            break
        entries.extend(fields for _id, fields in batch)
        start = "(" + batch[-1][0]
    by_interaction: dict[str, str] = {}  # interaction -> its unresolved reservation
    by_agent: dict[str, str] = {}  # agent -> their unresolved reservation
    load: Counter[str] = Counter()
    accepted: set[str] = set()
    resolved: set[str] = set()
    for position, event in enumerate(entries):
        kind, res = event["type"], event.get("reservation")
        item, agent = event["interaction"], event["agent"]
        where = f"event #{position}: {event}"
        if kind == "offered":
            assert item not in by_interaction, f"interaction offered twice at once, {where}"
            assert agent not in by_agent, f"agent holds two pending offers, {where}"
            assert item not in accepted, f"offered after it was answered, {where}"
            assert load[agent] < 1, f"agent over capacity, {where}"
            assert res not in resolved, f"reservation id reused, {where}"
            by_interaction[item] = by_agent[agent] = res
            load[agent] += 1
        elif kind in ("accepted", "rejected"):
            assert res not in resolved, f"reservation resolved twice, {where}"
            assert by_interaction.pop(item, None) == res, f"resolving an offer not held, {where}"
            assert by_agent.pop(agent, None) == res, f"resolving an offer not held, {where}"
            resolved.add(res)
            if kind == "accepted":
                assert item not in accepted, f"answered twice, {where}"
                accepted.add(item)
            else:
                load[agent] -= 1
        elif kind == "completed":
            assert item in accepted, f"ended a call never answered, {where}"
            load[agent] -= 1
            assert load[agent] >= 0, f"negative load, {where}"
        else:
            raise AssertionError(f"unexpected event, {where}")
    assert not by_interaction and not by_agent, "offers left unresolved"
    assert not +load and not -load, "agents left holding load"
    return entries, accepted


@pytest.mark.real_services
def test_four_processes_route_every_interaction_exactly_once(redis_client, tmp_path):
    store = RoutingStore(redis_client)
    for agent_id in range(1, AGENTS + 1):
        store.set_agent(agent_id, "available", {"voice": 1}, {"voice": 0})
    pipe = redis_client.pipeline(transaction=False)
    for agent_id in range(1, AGENTS + 1):
        for key, score in _idle(agent_id).items():
            pipe.zadd(key, {str(agent_id): score})
    pipe.execute()
    redis_client.set(SENTINEL, "1")

    context = multiprocessing.get_context("spawn")
    ids = list(range(1, INTERACTIONS + 1))
    logs = [tmp_path / f"worker-{i}.json" for i in range(PROCESSES)]
    workers = [
        context.Process(
            target=_worker,
            args=(i, os.environ["TEST_REDIS_URL"], ids[i::PROCESSES], str(logs[i]), 1000 + i),
            name=f"stress-{i}",
        )
        for i in range(PROCESSES)
    ]
    started = time.monotonic()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=DEADLINE_S + 30 - (time.monotonic() - started))
    elapsed = time.monotonic() - started
    for worker in workers:
        if worker.is_alive():
            worker.terminate()
            worker.join(5)
    assert [w.exitcode for w in workers] == [0] * PROCESSES

    results = [json.loads(path.read_text()) for path in logs]
    stats = sum((Counter(r["stats"]) for r in results), Counter())
    assert not any(r["flushed"] for r in results), (
        "the test Redis DB was flushed by someone else during the run (another test session "
        f"sharing TEST_REDIS_URL?); nothing can be concluded: {stats}"
    )
    assert all(r["done"] for r in results), f"not all answered within {DEADLINE_S} s: {stats}"
    assert all(r["left"] == 0 for r in results)

    # The processes' own logs: each reservation resolved once, each interaction answered once.
    log = [tuple(entry) for r in results for entry in r["log"]]
    outcomes = Counter(entry[3] for entry in log)
    assert set(outcomes) <= {"accepted", "rejected"}, outcomes
    assert len({entry[0] for entry in log}) == len(log), "a reservation id resolved twice"
    answered = Counter(entry[1] for entry in log if entry[3] == "accepted")
    assert sorted(answered) == ids and set(answered.values()) == {1}
    assert stats["double_resolve_bad"] == 0 and stats["negative_load"] == 0

    # The stream, in Redis's own order: never two offers at once, never over capacity.
    entries, accepted = _replay(redis_client)
    assert accepted == {str(i) for i in ids}
    offered = {e["reservation"]: e for e in entries if e["type"] == "offered"}
    assert set(offered) == {entry[0] for entry in log}, "stream and logs disagree"
    for res_id, interaction_id, agent_id, _ in log:
        assert (offered[res_id]["interaction"], offered[res_id]["agent"]) == (
            str(interaction_id),
            str(agent_id),
        )

    # Nothing left behind in Redis.
    for pool in IDLE_SOURCES:
        assert redis_client.zcard(waiting_key(pool)) == 0
    for key in (RESERVATIONS, OFFER, WHERE):
        assert redis_client.hlen(key) == 0, key
    assert redis_client.zcard(TIMERS) == 0
    loads = redis_client.hgetall(LOAD)
    assert len(loads) == AGENTS and set(loads.values()) == {"0"}
    assert redis_client.hlen(CAP) == AGENTS

    print(
        f"\nstress: {INTERACTIONS} interactions, {AGENTS} agents, {PROCESSES} processes in "
        f"{elapsed:.1f} s = {INTERACTIONS / elapsed:.0f} answered/s; "
        f"{len(offered)} offers ({outcomes['rejected']} rejected), {len(entries)} events; "
        f"match_waiting {stats['match_waiting_offers']}/{stats['match_waiting_calls']}, "
        f"match_agent {stats['match_agent_offers']}/{stats['match_agent_calls']} hit/calls"
    )
