"""Live routing state in Redis: pools of waiting interactions and idle agents, matched by Lua.

A *pool* is one queue, one channel, one skill requirement and one overflow tier. Each pool
has a waiting set (interaction -> score: enqueue time minus priority credit, lowest first)
and an idle set (agent -> strategy score: idle-since for longest-idle, lowest first). An
agent sits in the idle set of the strictest tier they qualify for; an interaction sits in
the waiting set of the tier it has reached. An interaction of tier t may take agents of
tiers 0..t; an agent of tier j may take interactions of tiers j..K.

Every key carries the hash tag `{cc}` and every key a script touches is passed in KEYS,
so the scripts run unchanged on Redis Cluster. Agent facts live in a few shared hashes
(presence, pending offer, load and capacity per channel) so a script can check any agent
in O(1) without naming per-agent keys. Idle sets are cleaned lazily: an agent who cannot
take work any more is dropped when a script meets them, and put back when they are free,
so each match is O(log N) amortised and never scans every agent.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import redis

TAG = "{cc}"
PRESENCE = f"{TAG}:presence"  # agent -> available | away | offline
OFFER = f"{TAG}:offer"  # agent -> pending reservation id
LOAD = f"{TAG}:load"  # "agent:channel" -> interactions held (offered, live, in wrap-up)
CAP = f"{TAG}:cap"  # "agent:channel" -> capacity
RESERVATIONS = f"{TAG}:res"  # reservation id -> json {interaction, agent, waiting, score, ...}
WHERE = f"{TAG}:where"  # interaction -> the waiting set it is in
TIMERS = f"{TAG}:timers"  # "kind:id" -> due time (unix seconds)
EVENTS = f"{TAG}:events"  # stream of routing events
SOCKETS = f"{TAG}:sockets"  # agent -> open console sockets
# web process -> its last heartbeat (unix seconds); a process counts its sockets apart too
PROCESSES = f"{TAG}:procs"
MISSED = f"{TAG}:missed"  # agent -> offers missed in a row
BUILT = f"{TAG}:built"
STATS = f"{TAG}:stats"  # "queue:field" -> running totals for wait-time estimates
# Outside the tag so clearing routing state never drops the lock guarding the rebuild.
REBUILD_LOCK = "cc-routing-rebuild-lock"
EVENTS_MAXLEN = 100_000

SHARED_KEYS = [PRESENCE, OFFER, LOAD, CAP, RESERVATIONS, WHERE, TIMERS, EVENTS]

# Lua helpers shared by the match scripts. KEYS[1..8] are SHARED_KEYS in order.
_LUA_COMMON = """
local PRESENCE, OFFER, LOAD, CAP, RES, WHERE, TIMERS, EVENTS =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8]

local function can_take(agent, channel, voice_exclusive)
  if redis.call('HGET', PRESENCE, agent) ~= 'available' then return false end
  if redis.call('HEXISTS', OFFER, agent) == 1 then return false end
  local load = tonumber(redis.call('HGET', LOAD, agent .. ':' .. channel) or '0')
  local cap = tonumber(redis.call('HGET', CAP, agent .. ':' .. channel) or '0')
  if load >= cap then return false end
  if channel ~= 'voice' and voice_exclusive == '1' then
    if tonumber(redis.call('HGET', LOAD, agent .. ':voice') or '0') > 0 then return false end
  end
  return true
end

local function reserve(item, agent, waiting, score, channel, res_id, now, expires, why)
  redis.call('ZREM', waiting, item)
  redis.call('HSET', OFFER, agent, res_id)
  redis.call('HINCRBY', LOAD, agent .. ':' .. channel, 1)
  redis.call('HSET', RES, res_id, cjson.encode({
    interaction = item, agent = agent, waiting = waiting, score = score,
    channel = channel, expires = tonumber(expires), created = tonumber(now), why = why}))
  redis.call('ZADD', TIMERS, expires, 'offer:' .. res_id)
  redis.call('XADD', EVENTS, 'MAXLEN', '~', ARGV[1], '*', 'type', 'offered',
    'interaction', item, 'agent', agent, 'reservation', res_id, 'at', now)
end

-- Reserve the head of `waiting` for the best agent at the heads of KEYS[first..]; the
-- offer as JSON, or false when the set is empty or no agent there can take it.
local function match_head(waiting, first, channel, voice_exclusive, res_id, now, expires,
                          max_stale)
  local head = redis.call('ZRANGE', waiting, 0, 0, 'WITHSCORES')
  if #head == 0 then return false end
  local best_agent, best_score, best_tier = nil, nil, nil
  local candidates = {}
  local stale = 0
  for i = first, #KEYS do
    while true do
      local top = redis.call('ZRANGE', KEYS[i], 0, 0, 'WITHSCORES')
      if #top == 0 then break end
      if can_take(top[1], channel, voice_exclusive) then
        table.insert(candidates, {top[1], tonumber(top[2]), i - first})
        if best_score == nil or tonumber(top[2]) < best_score then
          best_agent, best_score, best_tier = top[1], tonumber(top[2]), i - first
        end
        break
      end
      redis.call('ZREM', KEYS[i], top[1])
      stale = stale + 1
      if stale >= max_stale then break end
    end
  end
  if best_agent == nil then return false end
  local why = {candidates = candidates, agent_tier = best_tier, stale_skipped = stale}
  reserve(head[1], best_agent, waiting, tonumber(head[2]), channel, res_id, now, expires, why)
  return cjson.encode({interaction = head[1], agent = best_agent, score = tonumber(head[2]),
    agent_score = best_score, why = why, waiting_left = redis.call('ZCARD', waiting)})
end
"""

# Interaction side: offer the head of one waiting set to the best agent among idle sets.
# ARGV: maxlen, channel, voice_exclusive, res_id, now, expires, max_stale
# KEYS: SHARED_KEYS, waiting, idle_0..idle_t
MATCH_WAITING = (
    _LUA_COMMON
    + """
return match_head(KEYS[9], 10, ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], tonumber(ARGV[7]))
"""
)

# A new arrival: put it in its waiting set, arm its timers, log it and, in the same step,
# offer that set's head to the best agent among the idle sets (none given = no match).
# Refuses (returns 'unbuilt', changing nothing) while the routing state is not built, so an
# arrival never lands in a Redis that lost its state or is being rebuilt.
# ARGV: maxlen, channel, voice_exclusive, res_id, now, expires, max_stale, interaction, score,
#       queue, then (timer name, due) pairs
# KEYS: SHARED_KEYS, BUILT, waiting, idle_0..idle_t
ENQUEUE_MATCH = (
    _LUA_COMMON
    + """
if redis.call('EXISTS', KEYS[9]) == 0 then return 'unbuilt' end
local item, waiting = ARGV[8], KEYS[10]
redis.call('ZADD', waiting, ARGV[9], item)
redis.call('HSET', WHERE, item, waiting)
for i = 11, #ARGV, 2 do redis.call('ZADD', TIMERS, ARGV[i + 1], ARGV[i]) end
redis.call('XADD', EVENTS, 'MAXLEN', '~', ARGV[1], '*', 'type', 'enqueued',
  'interaction', item, 'queue', ARGV[10])
if #KEYS < 11 then return false end
return match_head(waiting, 11, ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], tonumber(ARGV[7]))
"""
)

# Agent side: offer one agent the best head among the waiting sets they may take from.
# ARGV: maxlen, agent, res_id, now, expires, then per waiting key: channel, voice_exclusive, weight
# KEYS: SHARED_KEYS, waiting_1..waiting_n (the agent's personal sets first, weight >= 1e9)
MATCH_AGENT = (
    _LUA_COMMON
    + """
local agent, res_id, now, expires = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local best, best_key, best_score, best_weight, best_channel = nil, nil, nil, nil, nil
local candidates = {}
-- The agent's facts do not change within the script: check once per channel and rule.
local allowed = {}
for i = 9, #KEYS do
  local base = 6 + (i - 9) * 3
  local channel, voice_exclusive, weight = ARGV[base], ARGV[base + 1], tonumber(ARGV[base + 2])
  local rule = channel .. voice_exclusive
  if allowed[rule] == nil then allowed[rule] = can_take(agent, channel, voice_exclusive) end
  if allowed[rule] then
    local head = redis.call('ZRANGE', KEYS[i], 0, 0, 'WITHSCORES')
    if #head > 0 then
      local score = tonumber(head[2])
      table.insert(candidates, {head[1], score, KEYS[i]})
      if weight >= 1e9 then
        -- the agent's personal set (preferred agent) goes before any queue
        best, best_key, best_score, best_weight, best_channel = head[1], KEYS[i], score, weight,
          channel
        break
      end
      if best == nil or score < best_score or (score == best_score and weight > best_weight) then
        best, best_key, best_score, best_weight, best_channel = head[1], KEYS[i], score, weight,
          channel
      end
    end
  end
end
if best == nil then return false end
local why = {candidates = candidates}
reserve(best, agent, best_key, best_score, best_channel, res_id, now, expires, why)
return cjson.encode({interaction = best, agent = agent, score = best_score, waiting = best_key,
  why = why})
"""
)

# Close a pending reservation. ARGV: maxlen, res_id, outcome (accepted|rejected|timeout|revoked),
# now, requeue (1 = back to its place), missed (1 = count as a missed offer)
# KEYS: SHARED_KEYS, MISSED
RESOLVE = """
local PRESENCE, OFFER, LOAD, CAP, RES, WHERE, TIMERS, EVENTS =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local MISSED = KEYS[9]
local res_id, outcome, now = ARGV[2], ARGV[3], ARGV[4]
local raw = redis.call('HGET', RES, res_id)
if not raw then return false end
local r = cjson.decode(raw)
redis.call('HDEL', RES, res_id)
redis.call('ZREM', TIMERS, 'offer:' .. res_id)
if redis.call('HGET', OFFER, r.agent) == res_id then redis.call('HDEL', OFFER, r.agent) end
local missed = 0
if outcome == 'accepted' then
  redis.call('HDEL', WHERE, r.interaction)
  redis.call('HDEL', MISSED, r.agent)
else
  redis.call('HINCRBY', LOAD, r.agent .. ':' .. r.channel, -1)
  if ARGV[5] == '1' then
    redis.call('ZADD', r.waiting, r.score, r.interaction)
    redis.call('HSET', WHERE, r.interaction, r.waiting)
  else
    redis.call('HDEL', WHERE, r.interaction)
  end
  if ARGV[6] == '1' then missed = redis.call('HINCRBY', MISSED, r.agent, 1) end
end
redis.call('XADD', EVENTS, 'MAXLEN', '~', ARGV[1], '*', 'type', outcome,
  'interaction', r.interaction, 'agent', r.agent, 'reservation', res_id, 'at', now)
r.missed = missed
return cjson.encode(r)
"""

# Move a waiting interaction between sets if it is still where WHERE says. KEYS: WHERE, from, to
MOVE = """
if redis.call('HGET', KEYS[1], ARGV[1]) ~= KEYS[2] then return 0 end
local score = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not score then return 0 end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], score, ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], KEYS[3])
return 1
"""

# Take one slot of an agent's channel capacity if one is free (a consult, an outbound call).
# ARGV: "agent:channel". KEYS: LOAD, CAP
TAKE_SLOT = """
local load = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
local cap = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
if load >= cap then return 0 end
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
return 1
"""

# Give a waiting interaction a new score where it waits (an SLA boost); 0 if not waiting.
# KEYS: WHERE, its waiting set. ARGV: interaction id, score.
RESCORE = """
if redis.call('HGET', KEYS[1], ARGV[1]) ~= KEYS[2] then return 0 end
return redis.call('ZADD', KEYS[2], 'XX', 'CH', ARGV[2], ARGV[1])
"""

# Claim due timers atomically: each fires in exactly one process.
# ARGV: now, limit. KEYS: TIMERS
CLAIM_TIMERS = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, member in ipairs(due) do redis.call('ZREM', KEYS[1], member) end
return due
"""


# A web process that stopped beating: take its agents' sockets off their counts (it died
# with them open). KEYS: PROCESSES, SOCKETS, the process's socket counts. ARGV: process,
# seen before (the process is left alone if it beat since). Returns the agents left with none.
REAP_PROCESS = """
local seen = redis.call('ZSCORE', KEYS[1], ARGV[1])
if seen and tonumber(seen) >= tonumber(ARGV[2]) then return {} end
local counts = redis.call('HGETALL', KEYS[3])
local none_left = {}
for i = 1, #counts, 2 do
  local held = tonumber(counts[i + 1])
  if held > 0 then
    local left = redis.call('HINCRBY', KEYS[2], counts[i], -held)
    if left <= 0 then
      redis.call('HSET', KEYS[2], counts[i], 0)
      table.insert(none_left, counts[i])
    end
  end
end
redis.call('DEL', KEYS[3])
redis.call('ZREM', KEYS[1], ARGV[1])
return none_left
"""


class NotBuilt(Exception):
    """The routing state is missing (Redis lost it) or being rebuilt: nothing was changed."""


@dataclass(frozen=True)
class Offer:
    """A reservation made by a match script."""

    reservation_id: str
    interaction_id: int
    agent_id: int
    score: float
    waiting_key: str
    why: dict[str, Any] = field(default_factory=dict)
    waiting_left: int | None = None  # what still waits in the set it came from (if known)


@dataclass(frozen=True)
class Resolved:
    """A reservation closed by RESOLVE."""

    interaction_id: int
    agent_id: int
    channel: str
    waiting_key: str
    score: float
    missed: int


def waiting_key(pool: str) -> str:
    return f"{TAG}:w:{pool}"


def idle_key(pool: str) -> str:
    return f"{TAG}:i:{pool}"


def process_sockets_key(process: str) -> str:
    """One web process's count of open console sockets per agent."""
    return f"{TAG}:psockets:{process}"


def personal_key(agent_id: int, channel: str) -> str:
    """Interactions of one channel waiting for one preferred agent."""
    return f"{TAG}:pw:{agent_id}:{channel}"


class RoutingStore:
    """The Redis side of routing. Methods are single commands or one atomic script."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client
        self._match_waiting = client.register_script(MATCH_WAITING)
        self._match_agent = client.register_script(MATCH_AGENT)
        self._resolve = client.register_script(RESOLVE)
        self._claim = client.register_script(CLAIM_TIMERS)
        self._move = client.register_script(MOVE)
        self._rescore = client.register_script(RESCORE)
        self._take_slot = client.register_script(TAKE_SLOT)
        self._enqueue_match = client.register_script(ENQUEUE_MATCH)
        self._reap_process = client.register_script(REAP_PROCESS)
        self._built_seen_at: float | None = None  # monotonic time BUILT was last seen

    # interactions
    def enqueue(
        self, key: str, interaction_id: int, score: float, timers: dict[str, float] | None = None
    ) -> None:
        """Put an interaction in a waiting set (its score is its place) and arm its timers."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.zadd(key, {str(interaction_id): score})
        pipe.hset(WHERE, str(interaction_id), key)
        if timers:
            pipe.zadd(TIMERS, timers)
        pipe.execute()

    def enqueue_and_match(
        self,
        waiting: str,
        interaction_id: int,
        score: float,
        *,
        queue_id: int,
        timers: dict[str, float],
        idle_keys: list[str],
        channel: str,
        voice_exclusive: bool,
        reservation_id: str,
        now: float,
        expires: float,
        max_stale: int = 10_000,
    ) -> Offer | None:
        """Enqueue an arrival and offer its set's head to the best idle agent, in one step.

        Raises NotBuilt, changing nothing, when the routing state needs a rebuild.
        """
        args: list[Any] = [
            EVENTS_MAXLEN,
            channel,
            "1" if voice_exclusive else "0",
            reservation_id,
            now,
            expires,
            max_stale,
            str(interaction_id),
            score,
            queue_id,
        ]
        for name, due in timers.items():
            args += [name, due]
        raw = self._enqueue_match(keys=[*SHARED_KEYS, BUILT, waiting, *idle_keys], args=args)
        if raw == "unbuilt":
            self._built_seen_at = None
            raise NotBuilt
        return self._offer(raw, reservation_id, waiting)

    def move(self, interaction_id: int, new_key: str) -> bool:
        """Move a waiting interaction to another waiting set, keeping its score (its place).

        False when it is not waiting (offered meanwhile, or gone): a pending offer that
        fails returns it to the set it came from.
        """
        current = self.redis.hget(WHERE, str(interaction_id))
        if current is None or current == new_key:
            return current == new_key
        return bool(self._move(keys=[WHERE, current, new_key], args=[str(interaction_id)]))

    def rescore(self, interaction_id: int, score: float) -> bool:
        """Move a waiting interaction to a new place in its set; False if it is not waiting."""
        key = self.location(interaction_id)
        if key is None:
            return False
        return bool(self._rescore(keys=[WHERE, key], args=[str(interaction_id), score]))

    def remove(self, interaction_id: int) -> bool:
        """Take an interaction out of whatever waiting set holds it."""
        key = self.redis.hget(WHERE, str(interaction_id))
        if key is None:
            return False
        pipe = self.redis.pipeline(transaction=True)
        pipe.zrem(key, str(interaction_id))
        pipe.hdel(WHERE, str(interaction_id))
        removed, _ = pipe.execute()
        return bool(removed)

    def location(self, interaction_id: int) -> str | None:
        return self.redis.hget(WHERE, str(interaction_id))

    def waiting(self, key: str) -> list[int]:
        """Interaction ids in a waiting set, best first."""
        return [int(member) for member in self.redis.zrange(key, 0, -1)]

    def rank(self, key: str, interaction_id: int) -> int | None:
        return self.redis.zrank(key, str(interaction_id))

    def count_before(self, keys: list[str], score: float) -> int:
        """How many interactions in these sets are ahead of `score`."""
        pipe = self.redis.pipeline(transaction=False)
        for key in keys:
            pipe.zcount(key, "-inf", f"({score}")
        return sum(pipe.execute())

    def size(self, keys: list[str]) -> int:
        pipe = self.redis.pipeline(transaction=False)
        for key in keys:
            pipe.zcard(key)
        return sum(pipe.execute())

    # agents
    def set_agent(
        self,
        agent_id: int,
        presence: str,
        capacity: dict[str, int],
        load: dict[str, int] | None = None,
    ) -> None:
        """Record an agent's presence, capacity and (optionally) load."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(PRESENCE, str(agent_id), presence)
        for channel, cap in capacity.items():
            pipe.hset(CAP, f"{agent_id}:{channel}", int(cap))
        for channel, held in (load or {}).items():
            pipe.hset(LOAD, f"{agent_id}:{channel}", int(held))
        pipe.execute()

    def add_idle(self, agent_id: int, memberships: dict[str, float]) -> None:
        """Put an agent in idle sets {idle key: strategy score}."""
        if not memberships:
            return
        pipe = self.redis.pipeline(transaction=False)
        for key, score in memberships.items():
            pipe.zadd(key, {str(agent_id): score})
        pipe.execute()

    def set_capacity(self, agent_id: int, capacity: dict[str, int]) -> None:
        """Record an agent's capacity per channel (their presence and load stay as they are)."""
        if capacity:
            self.redis.hset(
                CAP, mapping={f"{agent_id}:{ch}": int(cap) for ch, cap in capacity.items()}
            )

    def remove_idle(self, agent_id: int, keys: list[str]) -> None:
        """Take an agent out of idle sets (pools they no longer serve)."""
        if not keys:
            return
        pipe = self.redis.pipeline(transaction=False)
        for key in keys:
            pipe.zrem(key, str(agent_id))
        pipe.execute()

    def presence(self, agent_id: int) -> str | None:
        return self.redis.hget(PRESENCE, str(agent_id))

    def pending_offer(self, agent_id: int) -> str | None:
        return self.redis.hget(OFFER, str(agent_id))

    def load(self, agent_id: int, channel: str) -> int:
        return int(self.redis.hget(LOAD, f"{agent_id}:{channel}") or 0)

    def change_load(self, agent_id: int, channel: str, delta: int) -> int:
        return int(self.redis.hincrby(LOAD, f"{agent_id}:{channel}", delta))

    def take_slot(self, agent_id: int, channel: str) -> bool:
        """Take a free slot of an agent's capacity outside routing; False when none is free."""
        return bool(self._take_slot(keys=[LOAD, CAP], args=[f"{agent_id}:{channel}"]))

    def sockets(self, agent_id: int, delta: int, process: str | None = None) -> int:
        """Count an agent's open console sockets (across processes); never below zero.

        With `process`, the web process holding the socket counts it too, so the sockets
        of a process that dies can be taken off (`reap_process`).
        """
        if delta and process:
            pipe = self.redis.pipeline(transaction=True)
            pipe.hincrby(SOCKETS, str(agent_id), delta)
            pipe.hincrby(process_sockets_key(process), str(agent_id), delta)
            count = int(pipe.execute()[0])
        else:
            count = int(self.redis.hincrby(SOCKETS, str(agent_id), delta))
        if count < 0:
            self.redis.hset(SOCKETS, str(agent_id), 0)
            count = 0
        return count

    def process_alive(self, process: str, now: float) -> None:
        """A web process's heartbeat."""
        self.redis.zadd(PROCESSES, {process: now})

    def silent_processes(self, since: float) -> list[str]:
        """Web processes that have not beaten since `since`."""
        return list(self.redis.zrangebyscore(PROCESSES, "-inf", f"({since}"))

    def reap_process(self, process: str, since: float) -> list[int]:
        """Take a silent process's sockets off its agents' counts; the agents left with
        none (nothing, if it beat again since `since`)."""
        keys = [PROCESSES, SOCKETS, process_sockets_key(process)]
        return [int(agent) for agent in self._reap_process(keys=keys, args=[process, since])]

    def reset_missed(self, agent_id: int) -> None:
        self.redis.hdel(MISSED, str(agent_id))

    # matching
    def match_waiting(
        self,
        waiting: str,
        idle_keys: list[str],
        *,
        channel: str,
        voice_exclusive: bool,
        reservation_id: str,
        now: float,
        expires: float,
        max_stale: int = 10_000,
    ) -> Offer | None:
        """Reserve the head of `waiting` for the best agent at the heads of `idle_keys`."""
        raw = self._match_waiting(
            keys=[*SHARED_KEYS, waiting, *idle_keys],
            args=[
                EVENTS_MAXLEN,
                channel,
                "1" if voice_exclusive else "0",
                reservation_id,
                now,
                expires,
                max_stale,
            ],
        )
        return self._offer(raw, reservation_id, waiting)

    def match_agent(
        self,
        agent_id: int,
        sources: list[tuple[str, str, bool, float]],
        *,
        reservation_id: str,
        now: float,
        expires: float,
    ) -> Offer | None:
        """Reserve for an agent the best head among `sources` (key, channel, exclusive, weight)."""
        if not sources:
            return None
        args: list[Any] = [EVENTS_MAXLEN, str(agent_id), reservation_id, now, expires]
        for _key, channel, exclusive, weight in sources:
            args += [channel, "1" if exclusive else "0", weight]
        raw = self._match_agent(keys=[*SHARED_KEYS, *(s[0] for s in sources)], args=args)
        return self._offer(raw, reservation_id, None)

    @staticmethod
    def _offer(raw: str | None, reservation_id: str, waiting: str | None) -> Offer | None:
        if not raw:
            return None
        data = json.loads(raw)
        return Offer(
            reservation_id=reservation_id,
            interaction_id=int(data["interaction"]),
            agent_id=int(data["agent"]),
            score=float(data["score"]),
            waiting_key=data.get("waiting") or waiting or "",
            why=data.get("why") or {},
            waiting_left=data.get("waiting_left"),
        )

    def resolve(
        self, reservation_id: str, outcome: str, now: float, *, requeue: bool, missed: bool = False
    ) -> Resolved | None:
        """Close a pending reservation once; None if it was closed already."""
        raw = self._resolve(
            keys=[*SHARED_KEYS, MISSED],
            args=[
                EVENTS_MAXLEN,
                reservation_id,
                outcome,
                now,
                "1" if requeue else "0",
                "1" if missed else "0",
            ],
        )
        if not raw:
            return None
        data = json.loads(raw)
        return Resolved(
            interaction_id=int(data["interaction"]),
            agent_id=int(data["agent"]),
            channel=data["channel"],
            waiting_key=data["waiting"],
            score=float(data["score"]),
            missed=int(data.get("missed") or 0),
        )

    def reservation(self, reservation_id: str) -> dict[str, Any] | None:
        raw = self.redis.hget(RESERVATIONS, reservation_id)
        return json.loads(raw) if raw else None

    # timers
    def add_timer(self, name: str, due: float) -> None:
        self.redis.zadd(TIMERS, {name: due})

    def cancel_timer(self, name: str) -> None:
        self.redis.zrem(TIMERS, name)

    def claim_due(self, now: float, limit: int = 100) -> list[str]:
        """Take the timers due by `now`; each is handed to exactly one caller."""
        return list(self._claim(keys=[TIMERS], args=[now, limit]))

    # events and statistics
    def event(self, kind: str, **fields: Any) -> None:
        """Append a routing event to the stream."""
        self.redis.xadd(
            EVENTS,
            {"type": kind, **{k: str(v) for k, v in fields.items()}},
            maxlen=EVENTS_MAXLEN,
            approximate=True,
        )

    def events(self, count: int = 100) -> list[dict[str, str]]:
        """The latest routing events, oldest first."""
        return [fields for _id, fields in reversed(self.redis.xrevrange(EVENTS, count=count))]

    def record_handle_time(self, queue_id: int, seconds: float) -> None:
        """Keep an exponentially weighted mean handle time per queue for wait estimates."""
        key = f"{queue_id}:aht"
        current = self.redis.hget(STATS, key)
        value = seconds if current is None else 0.8 * float(current) + 0.2 * seconds
        self.redis.hset(STATS, key, value)

    def handle_time(self, queue_id: int) -> float | None:
        value = self.redis.hget(STATS, f"{queue_id}:aht")
        return float(value) if value is not None else None

    # rebuild
    def is_built(self, max_age: float = 0.0) -> bool:
        """Whether the routing state is built; trusts a sighting younger than `max_age` s."""
        now = time.monotonic()
        seen = self._built_seen_at
        if max_age > 0 and seen is not None and now - seen < max_age:
            return True
        built = bool(self.redis.exists(BUILT))
        self._built_seen_at = now if built else None
        return built

    def mark_built(self) -> None:
        self.redis.set(BUILT, "1")
        self._built_seen_at = time.monotonic()

    def clear(self) -> None:
        """Delete the routing state a rebuild restores (the event log and socket counts, with
        the web processes that hold them, stay)."""
        # The marker goes first: scripts that check it stop acting while the rest goes.
        self.redis.delete(BUILT)
        self._built_seen_at = None
        keep = {EVENTS, SOCKETS, PROCESSES}
        keys = [
            k
            for k in self.redis.scan_iter(match=f"{TAG}:*", count=1000)
            if k not in keep and not k.startswith(process_sockets_key(""))
        ]
        for start in range(0, len(keys), 500):
            self.redis.delete(*keys[start : start + 500])
