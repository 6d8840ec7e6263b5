"""The SLA timer set: when each ticket's clocks next need a look, in Redis, rebuilt from the DB.

One sorted set (ticket id -> unix time), polled by every worker. A claim does not delete a
due member: it pushes it a lease ahead, so a worker that dies between claiming and running
the job leaves it to fire again once the lease is over; the job, under the ticket's row
lock, writes the ticket's next time (or removes it). A worker that dies after writing Redis
but before its commit leaves the database with the old, overdue time: a sweep every few
seconds puts such tickets back. Steps are recorded once (a unique key
per step), so a second run never repeats an action. The key is outside the routing hash tag
on purpose: a routing rebuild must not wipe it.
"""

from __future__ import annotations

from datetime import datetime

from contact_center.redis_client import get_redis

TIMERS = "cc:sla:timers"
BUILT = "cc:sla:built"
REBUILD_LOCK = "cc:sla:rebuild-lock"
SWEEP_TURN = "cc:sla:sweep-turn"
LEASE_S = 30
SWEEP_S = 10

# KEYS: timers. ARGV: now, lease end, limit.
CLAIM = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
for _, member in ipairs(due) do redis.call('ZADD', KEYS[1], ARGV[2], member) end
return due
"""


def arm_many(wake_times: dict[int, datetime | None]) -> None:
    """Set (or clear, for None) when each ticket's clocks next need a look: one round trip."""
    pipe = get_redis().pipeline(transaction=False)
    for ticket_id, wake_at in wake_times.items():
        if wake_at is None:
            pipe.zrem(TIMERS, ticket_id)
        else:
            pipe.zadd(TIMERS, {str(ticket_id): wake_at.timestamp()})
    pipe.execute()


def claim(now: float, limit: int = 200) -> list[int]:
    """Take the due tickets; each is handed to one caller until its lease runs out."""
    client = get_redis()
    script = client.register_script(CLAIM)
    return [int(m) for m in script(keys=[TIMERS], args=[now, now + LEASE_S, limit])]


def lower(wake_times: list[tuple[int, datetime]]) -> None:
    """Add these, or move them earlier; never later (a claim in progress keeps its lease
    unless the database says it is overdue)."""
    if not wake_times:
        return
    get_redis().zadd(TIMERS, {str(tid): at.timestamp() for tid, at in wake_times}, lt=True)


def sweep_turn() -> bool:
    """True for one caller per sweep interval, across all workers."""
    return bool(get_redis().set(SWEEP_TURN, 1, nx=True, ex=SWEEP_S))


def is_built() -> bool:
    """Whether the set is loaded (a Redis restart loses it and the marker together)."""
    return bool(get_redis().exists(BUILT))


def load(entries: list[tuple[int, datetime]]) -> None:
    """Replace the set with these (ticket id, wake time) pairs and mark it built."""
    client = get_redis()
    pipe = client.pipeline()
    pipe.delete(TIMERS)
    for start in range(0, len(entries), 1000):
        chunk = entries[start : start + 1000]
        pipe.zadd(TIMERS, {str(tid): at.timestamp() for tid, at in chunk})
    pipe.set(BUILT, 1)
    pipe.execute()
