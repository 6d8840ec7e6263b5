"""Routing decisions per second against a real Redis, next to plain SET round trips.

    .venv/bin/python bench/routing.py [--redis-url redis://127.0.0.1:6379/14]
        [--agents 5000] [--waiting 10000] [--decisions 20000]

Uses RoutingStore directly (no app, no database) on a dedicated Redis DB, which it flushes
before and after. Pools: 3 queues x 2 overflow tiers of voice. `--agents` agents are
available and idle; on top of them about 5 % stale idle entries (agents who went away but
are still in idle sets, to be dropped lazily by the scripts), with a little churn so stale
entries keep turning up. `--waiting` interactions wait in the pools.

A decision is one MATCH_WAITING (a pool's head to the best idle agent) or one MATCH_AGENT (a
free agent to the best head among their sets), half each. Only the store call is timed;
after it, untimed, the reservation is accepted, the call ends (load back to 0, agent back in
its idle sets) and a new interaction is enqueued, so both populations stay constant.
decisions_per_s = decisions / time inside decision calls; cycle_decisions_per_s includes the
upkeep. raw_set_per_s is sequential SETs from the same client, in blocks that alternate with
the decision blocks.
Human-readable lines first, then one JSON object as the last line.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

import redis
from redis.utils import HIREDIS_AVAILABLE

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from contact_center.routing import policy  # noqa: E402
from contact_center.routing.store import (  # noqa: E402
    CAP,
    LOAD,
    PRESENCE,
    RoutingStore,
    idle_key,
    personal_key,
    waiting_key,
)

QUEUES = (1, 2, 3)
TIERS = 2
CHANNEL = "voice"
STALE_FRACTION = 0.05
CHURN_P = 0.05  # per decision: one agent goes away (left in idle sets), one comes back


def pool(queue_id: int, tier: int) -> str:
    return policy.pool_name(queue_id, CHANNEL, "", tier)


class Bench:
    def __init__(self, client: redis.Redis, store: RoutingStore, args: argparse.Namespace):
        self.redis = client
        self.store = store
        self.args = args
        self.rng = random.Random(args.seed)
        self.tier_of: dict[int, dict[int, int]] = {}  # agent -> queue -> strictest tier
        self.available: list[int] = []
        self.away: list[int] = []
        self.next_interaction = 1
        self.stale_skipped = 0
        self.failed = 0

    # setup
    def idle_scores(self, agent_id: int, score: float) -> dict[str, float]:
        return {idle_key(pool(q, t)): score for q, t in self.tier_of[agent_id].items()}

    def sources(self, agent_id: int) -> list[tuple[str, str, bool, float]]:
        """As routing._offer_agent builds them: the personal set first, then tiers j..K."""
        result = [(personal_key(agent_id, CHANNEL), CHANNEL, True, 1e9)]
        for queue_id, tier in self.tier_of[agent_id].items():
            for t in range(tier, TIERS):
                result.append((waiting_key(pool(queue_id, t)), CHANNEL, True, 1.0))
        return result

    def enqueue_one(self) -> None:
        queue_id = self.rng.choice(QUEUES)
        tier = 0 if self.rng.random() < 0.7 else 1
        credit = self.rng.choice([0.0, 0.0, 0.0, 30.0, 120.0])
        interaction_id = self.next_interaction
        self.next_interaction += 1
        self.store.enqueue(waiting_key(pool(queue_id, tier)), interaction_id, time.time() - credit)

    def setup(self) -> None:
        stale = round(self.args.agents * STALE_FRACTION / (1 - STALE_FRACTION))
        base = time.time() - 3600
        pipe = self.redis.pipeline(transaction=False)
        for agent_id in range(1, self.args.agents + stale + 1):
            served = self.rng.sample(QUEUES, 2)  # each agent serves 2 of the 3 queues
            self.tier_of[agent_id] = {q: (0 if self.rng.random() < 0.7 else 1) for q in served}
            presence = "available" if agent_id <= self.args.agents else "away"
            (self.available if presence == "available" else self.away).append(agent_id)
            # what store.set_agent and store.add_idle do, batched for a fast setup
            pipe.hset(PRESENCE, str(agent_id), presence)
            pipe.hset(CAP, f"{agent_id}:{CHANNEL}", 1)
            pipe.hset(LOAD, f"{agent_id}:{CHANNEL}", 0)
            for key, score in self.idle_scores(agent_id, base + self.rng.random() * 3600).items():
                pipe.zadd(key, {str(agent_id): score})
            if len(pipe) > 2000:
                pipe.execute()
        pipe.execute()
        for _ in range(self.args.waiting):
            self.enqueue_one()

    # the measurement
    def decide(self) -> tuple[float, object]:
        """One decision; returns (seconds inside the store call, offer or None)."""
        reservation_id = str(uuid.uuid4())
        now = time.time()
        if self.rng.random() < 0.5:
            queue_id = self.rng.choice(QUEUES)
            tier = 0 if self.rng.random() < 0.7 else 1
            idle_keys = [idle_key(pool(queue_id, t)) for t in range(tier + 1)]
            key = waiting_key(pool(queue_id, tier))
            start = time.perf_counter()
            offer = self.store.match_waiting(
                key,
                idle_keys,
                channel=CHANNEL,
                voice_exclusive=True,
                reservation_id=reservation_id,
                now=now,
                expires=now + 30,
            )
            elapsed = time.perf_counter() - start
            if offer is not None:
                self.stale_skipped += int(offer.why.get("stale_skipped", 0))
        else:
            agent_id = self.rng.choice(self.available)
            sources = self.sources(agent_id)
            start = time.perf_counter()
            offer = self.store.match_agent(
                agent_id, sources, reservation_id=reservation_id, now=now, expires=now + 30
            )
            elapsed = time.perf_counter() - start
        return elapsed, offer

    def upkeep(self, offer) -> None:
        """Untimed: accept, end the call, free the agent, replace the interaction."""
        if offer is None:
            self.failed += 1
            return
        now = time.time()
        self.store.resolve(offer.reservation_id, "accepted", now, requeue=False)
        self.store.change_load(offer.agent_id, CHANNEL, -1)
        self.store.add_idle(offer.agent_id, self.idle_scores(offer.agent_id, now))
        self.enqueue_one()
        if self.rng.random() < CHURN_P and self.away:
            leaving = self.available.pop(self.rng.randrange(len(self.available)))
            back = self.away.pop(self.rng.randrange(len(self.away)))
            self.store.set_agent(leaving, "away", {CHANNEL: 1})  # stays in its idle sets
            self.store.set_agent(back, "available", {CHANNEL: 1})
            self.store.add_idle(back, self.idle_scores(back, now))
            self.available.append(back)
            self.away.append(leaving)

    def populations(self) -> dict[str, int]:
        idle_keys = [idle_key(pool(q, t)) for q in QUEUES for t in range(TIERS)]
        pipe = self.redis.pipeline(transaction=False)
        for key in idle_keys:
            pipe.zrange(key, 0, -1)
        members = set().union(*pipe.execute())
        presence = self.redis.hgetall(PRESENCE)
        idle = sum(1 for m in members if presence.get(m) == "available")
        waiting = self.store.size([waiting_key(pool(q, t)) for q in QUEUES for t in range(TIERS)])
        return {"idle_agents": idle, "stale_idle": len(members) - idle, "waiting": waiting}


def raw_sets(client: redis.Redis, n: int) -> list[float]:
    """Seconds per sequential SET round trip from this client."""
    times = []
    for i in range(n):
        start = time.perf_counter()
        client.set(f"bench:raw:{i % 100}", "x")
        times.append(time.perf_counter() - start)
    return times


def percentile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--agents", type=int, default=5000)
    parser.add_argument("--waiting", type=int, default=10000)
    parser.add_argument("--decisions", type=int, default=20000)
    parser.add_argument("--raw-sets", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=10, help="SET and decision blocks alternate")
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if urlparse(args.redis_url).path.strip("/") in ("", "0"):
        parser.error("--redis-url must name a dedicated DB other than 0 (it is flushed)")

    client = redis.Redis.from_url(args.redis_url, decode_responses=True)
    store = RoutingStore(client)
    client.flushdb()
    try:
        bench = Bench(client, store, args)
        version = client.info("server")["redis_version"]
        print(
            f"redis {version} at {args.redis_url}; {args.agents} idle agents (+~5 % stale), "
            f"{args.waiting} waiting, {len(QUEUES)} queues x {TIERS} tiers"
        )
        bench.setup()
        for _ in range(args.warmup):
            bench.upkeep(bench.decide()[1])
        raw_sets(client, 500)
        bench.failed = bench.stale_skipped = 0
        before = bench.populations()

        # SET blocks and decision blocks alternate, so noise on a shared machine hits both.
        set_times: list[float] = []
        latencies: list[float] = []  # successful decisions
        failed_s = 0.0  # time in calls that reserved nothing still counts
        cycle_s = 0.0
        server = {"calls": 0, "usec": 0}
        for round_no in range(args.rounds):
            set_times += raw_sets(client, args.raw_sets // args.rounds)
            target = args.decisions * (round_no + 1) // args.rounds
            stats_before = client.info("commandstats").get("cmdstat_evalsha", {})
            cycle_start = time.perf_counter()
            while len(latencies) < target:
                elapsed, offer = bench.decide()
                bench.upkeep(offer)
                if offer is not None:
                    latencies.append(elapsed)
                else:
                    failed_s += elapsed
            cycle_s += time.perf_counter() - cycle_start
            stats_after = client.info("commandstats").get("cmdstat_evalsha", {})
            for k in server:
                server[k] += stats_after.get(k, 0) - stats_before.get(k, 0)
        after = bench.populations()
    finally:
        client.flushdb()
        client.close()

    decisions = len(latencies)
    decision_s = sum(latencies) + failed_s
    decisions_per_s = decisions / decision_s
    raw_set_per_s = len(set_times) / sum(set_times)
    ordered = sorted(latencies)
    set_ordered = sorted(set_times)
    result = {
        "decisions_per_s": round(decisions_per_s, 1),
        "raw_set_per_s": round(raw_set_per_s, 1),
        "ratio": round(decisions_per_s / raw_set_per_s, 3),
        "p50_ms": round(percentile(ordered, 0.50) * 1000, 3),
        "p99_ms": round(percentile(ordered, 0.99) * 1000, 3),
        "max_ms": round(ordered[-1] * 1000, 3),
        "set_p50_ms": round(percentile(set_ordered, 0.50) * 1000, 3),
        "set_p99_ms": round(percentile(set_ordered, 0.99) * 1000, 3),
        "idle_agents": before["idle_agents"],
        "waiting": before["waiting"],
        "stale_idle": before["stale_idle"],
        "idle_agents_end": after["idle_agents"],
        "waiting_end": after["waiting"],
        "cycle_decisions_per_s": round(decisions / cycle_s, 1),
        "decisions": decisions,
        "failed_decisions": bench.failed,
        "stale_skipped": bench.stale_skipped,
        "server_us_per_script_call": round(server["usec"] / max(server["calls"], 1), 1),
        "redis_version": version,
        "resp_parser": "hiredis" if HIREDIS_AVAILABLE else "python",
    }
    print(
        f"raw SET: {raw_set_per_s:,.0f}/s over {len(set_times)} round trips; "
        f"p50 {result['set_p50_ms']} ms, p99 {result['set_p99_ms']} ms"
    )
    print(
        f"decisions: {decisions} in {decision_s:.2f} s inside the calls = "
        f"{decisions_per_s:,.0f}/s, ratio {result['ratio']}; p50 {result['p50_ms']} ms, "
        f"p99 {result['p99_ms']} ms, max {result['max_ms']} ms"
    )
    print(
        f"with upkeep (resolve, load, idle, enqueue): {result['cycle_decisions_per_s']:,.0f} "
        f"decisions/s; idle {before['idle_agents']} -> {after['idle_agents']}, waiting "
        f"{before['waiting']} -> {after['waiting']}, stale idle {before['stale_idle']}, "
        f"stale skipped {bench.stale_skipped}, failed calls {bench.failed}"
    )
    print(
        "server time per script call (match and resolve together): "
        f"{result['server_us_per_script_call']} us"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
