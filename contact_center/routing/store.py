"""Live routing state in Redis. Every key a script touches is in KEYS under one hash tag.

Keys (hash tag `{cc}` keeps them in one Redis Cluster slot):
- `{cc}:waiting:<queue>`  sorted set: interaction id -> score (enqueue time - priority credit)
- `{cc}:idle:<queue>`     sorted set: agent id -> idle-since (longest idle first)
- `{cc}:agent_status`     hash: agent id -> status; the truth about availability
- `{cc}:built`            set once the state was rebuilt from the database
Idle sets are cleaned lazily: an entry whose agent is no longer `available` is dropped
when the match script meets it, so changing status touches only the status hash.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

TAG = "{cc}"
BUILT_KEY = f"{TAG}:built"
AGENT_STATUS_KEY = f"{TAG}:agent_status"
# Outside the tag so clearing routing state never drops the lock guarding the rebuild.
REBUILD_LOCK_KEY = "cc-routing-rebuild-lock"

# Pops the best waiting interaction and the longest-idle available agent of one queue,
# atomically: no interaction goes to two agents and no agent gets two offers.
MATCH_SCRIPT = """
for _ = 1, 1000 do
  local agent = redis.call('ZRANGE', KEYS[2], 0, 0)[1]
  if not agent then return false end
  if redis.call('HGET', KEYS[3], agent) == 'available' then
    local item = redis.call('ZRANGE', KEYS[1], 0, 0)[1]
    if not item then return false end
    redis.call('ZREM', KEYS[1], item)
    redis.call('ZREM', KEYS[2], agent)
    redis.call('HSET', KEYS[3], agent, 'reserved')
    return {item, agent}
  end
  redis.call('ZREM', KEYS[2], agent)
end
return false
"""

# Marks an agent available and puts them in the idle set of each queue they serve.
AVAILABLE_SCRIPT = """
redis.call('HSET', KEYS[1], ARGV[1], 'available')
for i = 2, #KEYS do
  redis.call('ZADD', KEYS[i], ARGV[2], ARGV[1])
end
return #KEYS - 1
"""

# Moves a reserved agent back to available only if they are still reserved.
RELEASE_SCRIPT = """
if redis.call('HGET', KEYS[1], ARGV[1]) ~= 'reserved' then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], 'available')
for i = 2, #KEYS do
  redis.call('ZADD', KEYS[i], ARGV[2], ARGV[1])
end
return 1
"""


def waiting_key(queue_id: int) -> str:
    return f"{TAG}:waiting:{queue_id}"


def idle_key(queue_id: int) -> str:
    return f"{TAG}:idle:{queue_id}"


@dataclass(frozen=True)
class Match:
    interaction_id: int
    agent_id: int


class RoutingStore:
    """The Redis side of routing: queues of interactions, idle agents, atomic matching."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client
        self._match = client.register_script(MATCH_SCRIPT)
        self._available = client.register_script(AVAILABLE_SCRIPT)
        self._release = client.register_script(RELEASE_SCRIPT)

    def enqueue(self, queue_id: int, interaction_id: int, score: float) -> None:
        """Put an interaction in its queue at `score` (its place survives re-queueing)."""
        self.redis.zadd(waiting_key(queue_id), {str(interaction_id): score})

    def remove(self, queue_id: int, interaction_id: int) -> bool:
        """Take an interaction out of its queue; True if it was waiting there."""
        return bool(self.redis.zrem(waiting_key(queue_id), str(interaction_id)))

    def waiting(self, queue_id: int) -> list[int]:
        """Interaction ids waiting in a queue, best first."""
        return [int(member) for member in self.redis.zrange(waiting_key(queue_id), 0, -1)]

    def position(self, queue_id: int, interaction_id: int) -> int | None:
        """1-based place of an interaction in its queue, or None."""
        rank = self.redis.zrank(waiting_key(queue_id), str(interaction_id))
        return None if rank is None else rank + 1

    def head_score(self, queue_id: int) -> float | None:
        """The score of a queue's best waiting interaction."""
        head = self.redis.zrange(waiting_key(queue_id), 0, 0, withscores=True)
        return head[0][1] if head else None

    def set_available(self, agent_id: int, queue_ids: list[int], idle_since: float) -> None:
        """Mark an agent available in every queue they serve."""
        keys = [AGENT_STATUS_KEY, *(idle_key(q) for q in queue_ids)]
        self._available(keys=keys, args=[str(agent_id), idle_since])

    def release(self, agent_id: int, queue_ids: list[int], idle_since: float) -> bool:
        """Return a reserved agent to available; False if their status moved on."""
        keys = [AGENT_STATUS_KEY, *(idle_key(q) for q in queue_ids)]
        return bool(self._release(keys=keys, args=[str(agent_id), idle_since]))

    def set_status(self, agent_id: int, status: str) -> None:
        """Record a non-available status; stale idle entries are dropped when met."""
        self.redis.hset(AGENT_STATUS_KEY, str(agent_id), status)

    def agent_status(self, agent_id: int) -> str | None:
        """The agent's live status, as routing sees it."""
        return self.redis.hget(AGENT_STATUS_KEY, str(agent_id))

    def match(self, queue_id: int) -> Match | None:
        """Atomically reserve the best waiting interaction for the longest-idle agent."""
        result = self._match(keys=[waiting_key(queue_id), idle_key(queue_id), AGENT_STATUS_KEY])
        if not result:
            return None
        return Match(interaction_id=int(result[0]), agent_id=int(result[1]))

    def is_built(self) -> bool:
        """True once the state was rebuilt from the database since Redis started."""
        return bool(self.redis.exists(BUILT_KEY))

    def clear(self) -> None:
        """Delete every routing key (before a rebuild)."""
        keys = list(self.redis.scan_iter(match=f"{TAG}:*", count=1000))
        for start in range(0, len(keys), 500):
            self.redis.delete(*keys[start : start + 500])

    def mark_built(self) -> None:
        self.redis.set(BUILT_KEY, "1")
