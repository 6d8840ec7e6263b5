"""The live board: counters kept in Redis as routing changes them, pushed as deltas.

Routing calls in at the moments that change a figure: a wait starts, a wait ends (answered,
abandoned, or gone another way), handling ends, an agent's status changes, an offer rings
out. Each call is one Redis round trip: the increments, the read-back of the figures and a
new version number, in one transaction. The figures go to every supervisor's board as a
`board_delta`, merged per process and sent every BOARD_FLUSH_MS (newest version wins). No
database query happens per event; the database is read only when a board connects
(`snapshot`).

Counters are the report's additive counts (`metrics.summarise`), per queue for the UTC day
and for the current 15-minute interval, so the board and the reports agree by construction.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import selectinload

from contact_center.agents.models import User
from contact_center.board import erlang, metrics
from contact_center.db_types import isoformat
from contact_center.extensions import db, socketio
from contact_center.realtime.events import emit_to_supervisors
from contact_center.redis_client import get_redis

INTERVAL_S = 900
COUNTS = (
    "answered",
    "answered_within",
    "abandoned",
    "abandoned_within",
    "wait_ms",
    "handled",
    "handle_ms",
    "csat_sum",
    "csat_count",
    "abandon_wait_ms",
)
DAY_TTL_S = 8 * 86400
INTERVAL_TTL_S = 2 * 86400
SERVICE_LEVEL_FORMULA = "answered within {t} s / (offered - abandoned within {t} s)"


def _periods(at: float) -> dict[str, str]:
    moment = datetime.fromtimestamp(at, UTC)
    start = int(at // INTERVAL_S * INTERVAL_S)
    return {
        "today": f"d:{moment:%Y-%m-%d}",
        "interval": f"i:{datetime.fromtimestamp(start, UTC):%Y-%m-%dT%H:%M}",
        "previous": f"i:{datetime.fromtimestamp(start - INTERVAL_S, UTC):%Y-%m-%dT%H:%M}",
    }


def _queue_key(queue_id: int, period: str) -> str:
    return f"board:q:{queue_id}:{period}"


def _waiting_key(queue_id: int) -> str:
    return f"board:waiting:{queue_id}"


def _agent_key(agent_id: int, period: str) -> str:
    return f"board:a:{agent_id}:{period}"


def wait_started(queue_id: int, interaction_id: int, since: datetime) -> None:
    """An interaction began waiting in a queue."""
    _change(queue_id, waiting_add=(interaction_id, since.timestamp()))


def wait_ended(
    queue_id: int,
    interaction_id: int,
    *,
    outcome: str,
    waited_s: float,
    threshold_s: int,
) -> None:
    """An interaction stopped waiting: `answered`, `abandoned`, or gone another way
    (callback, voicemail, moved to another queue), which counts for neither."""
    counts: dict[str, int] = {}
    within = waited_s <= threshold_s
    if outcome == "answered":
        counts = {"answered": 1, "answered_within": int(within), "wait_ms": int(waited_s * 1000)}
    elif outcome == "abandoned":
        counts = {
            "abandoned": 1,
            "abandoned_within": int(within),
            "abandon_wait_ms": int(waited_s * 1000),
        }
    _change(queue_id, counts=counts, waiting_remove=interaction_id)


def wait_moved(from_queue_id: int, interaction: Any) -> None:
    """A waiting interaction overflowed to another queue: it waits there now."""
    wait_ended(from_queue_id, interaction.id, outcome="moved", waited_s=0, threshold_s=0)
    wait_started(
        interaction.queue_id, interaction.id, interaction.enqueued_at or interaction.created_at
    )


def rebuild_waiting(waiting: Iterable[tuple[int, int, datetime]]) -> None:
    """Who waits where, from the database (routing's rebuild): (queue, interaction, since)."""
    redis = get_redis()
    pipe = redis.pipeline(transaction=True)
    for key in redis.scan_iter(match="board:waiting:*"):
        pipe.delete(key)
    for queue_id, interaction_id, since in waiting:
        pipe.zadd(_waiting_key(queue_id), {str(interaction_id): since.timestamp()})
    pipe.execute()


def handled(queue_id: int | None, agent_id: int, handle_s: float) -> None:
    """An agent finished an interaction (talk and wrap-up)."""
    counts = {"handled": 1, "handle_ms": int(handle_s * 1000)}
    _change(queue_id, counts=counts, agent_id=agent_id, agent_counts=counts)


def offer_missed(agent_id: int) -> None:
    """An offer rang out on an agent."""
    _change(None, agent_id=agent_id, agent_counts={"missed": 1})


def work_started(agent_id: int, interaction_id: int, channel: str) -> None:
    """An agent took an interaction (shown on their row with the next status change)."""
    get_redis().sadd(_agent_key(agent_id, "work"), f"{interaction_id}:{channel}")


def work_ended(agent_id: int, interaction_id: int, channel: str) -> None:
    """An agent's interaction is over (wrap-up done)."""
    get_redis().srem(_agent_key(agent_id, "work"), f"{interaction_id}:{channel}")


def agent_changed(agent: User) -> None:
    """An agent's status changed: time in the state they leave is counted, and their row
    (with today's figures and work in hand) goes to every board."""
    now = time.time()
    periods = _periods(now)
    redis = get_redis()
    pipe = redis.pipeline(transaction=True)
    _account_state(redis)(
        keys=[_agent_key(agent.id, "state"), _agent_key(agent.id, periods["today"])],
        args=[agent.status, int(now * 1000), _day_start_ms(now), DAY_TTL_S],
        client=pipe,
    )
    _read_agent(pipe, agent.id, periods, bump=True)
    replies = pipe.execute()
    row = {**agent_row(agent), **_agent_figures(replies[-AGENT_READS:], now)}
    _publish({"agents": [row]})


# Leaving a state adds the time spent in it (from the start of the day at most) to the
# day's `<status>_ms`; the same status again changes nothing.
ACCOUNT_STATE = """
local prev = redis.call('HMGET', KEYS[1], 'status', 'since_ms')
if prev[1] == ARGV[1] then return 0 end
if prev[1] then
  local spent = tonumber(ARGV[2]) - math.max(tonumber(prev[2]), tonumber(ARGV[3]))
  if spent > 0 then redis.call('HINCRBY', KEYS[2], prev[1] .. '_ms', spent) end
  redis.call('EXPIRE', KEYS[2], ARGV[4])
end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'since_ms', ARGV[2])
return 1
"""
_scripts: dict[int, Any] = {}


def _account_state(redis: Any) -> Any:
    script = _scripts.get(id(redis))
    if script is None:
        script = _scripts[id(redis)] = redis.register_script(ACCOUNT_STATE)
    return script


def _day_start_ms(now: float) -> int:
    return int(now // 86400 * 86400 * 1000)


def _change(
    queue_id: int | None,
    *,
    counts: dict[str, int] | None = None,
    waiting_add: tuple[int, float] | None = None,
    waiting_remove: int | None = None,
    agent_id: int | None = None,
    agent_counts: dict[str, int] | None = None,
) -> None:
    now = time.time()
    periods = _periods(now)
    pipe = get_redis().pipeline(transaction=True)
    if queue_id is not None:
        for period in (periods["today"], periods["interval"]):
            key = _queue_key(queue_id, period)
            for field, amount in (counts or {}).items():
                pipe.hincrby(key, field, amount)
            pipe.expire(key, DAY_TTL_S if period.startswith("d:") else INTERVAL_TTL_S)
        if waiting_add is not None:
            pipe.zadd(_waiting_key(queue_id), {str(waiting_add[0]): waiting_add[1]})
        if waiting_remove is not None:
            pipe.zrem(_waiting_key(queue_id), str(waiting_remove))
    if agent_id is not None:
        key = _agent_key(agent_id, periods["today"])
        for field, amount in (agent_counts or {}).items():
            pipe.hincrby(key, field, amount)
        pipe.expire(key, DAY_TTL_S)
        _read_agent(pipe, agent_id, periods, bump=True)
    if queue_id is not None:
        _read_queue(pipe, queue_id, periods, bump=True)
    replies = pipe.execute()
    delta: dict[str, Any] = {}
    if queue_id is not None:
        delta["queues"] = [_queue_figures(queue_id, replies[-QUEUE_READS:], now)]
        replies = replies[:-QUEUE_READS]
    if agent_id is not None:
        delta["agent_counts"] = [{"id": agent_id, **_agent_figures(replies[-AGENT_READS:], now)}]
    if delta:
        _publish(delta)


AGENT_READS = 4


def _publish(delta: dict[str, list[dict[str, Any]]]) -> None:
    """Send a delta to the boards: at once, or (BOARD_FLUSH_MS > 0) merged with the others of
    this process and sent at most that often, the newest version of each row winning."""
    interval_ms = current_app.config.get("BOARD_FLUSH_MS", 0)
    if not interval_ms:
        emit_to_supervisors("board_delta", delta)
        return
    global _flushing
    with _pending_lock:
        for kind, rows in delta.items():
            bucket = _pending.setdefault(kind, {})
            for row in rows:
                held = bucket.get(row["id"])
                if held is None or held.get("version", 0) <= row.get("version", 0):
                    bucket[row["id"]] = row
        start, _flushing = not _flushing, True
    if start:
        app = current_app._get_current_object()
        socketio.start_background_task(_flush, app, interval_ms / 1000)


_pending: dict[str, dict[int, dict[str, Any]]] = {}
_pending_lock = threading.Lock()
_flushing = False


def _flush(app: Any, interval_s: float) -> None:
    """Send what was merged every `interval_s`; stop when a round brings nothing new."""
    global _flushing
    while True:
        socketio.sleep(interval_s)
        with _pending_lock:
            delta = {kind: list(rows.values()) for kind, rows in _pending.items() if rows}
            _pending.clear()
            if not delta:
                _flushing = False
                return
        with app.app_context():
            emit_to_supervisors("board_delta", delta)


def _read_agent(pipe: Any, agent_id: int, periods: dict[str, str], *, bump: bool) -> None:
    """Queue four reads: the agent's day, their current state, their work in hand, and the
    version of their row (`bump`: a new one, for a change)."""
    pipe.hgetall(_agent_key(agent_id, periods["today"]))
    pipe.hmget(_agent_key(agent_id, "state"), ["status", "since_ms"])
    pipe.smembers(_agent_key(agent_id, "work"))
    _read_version(pipe, f"a:{agent_id}", bump)


def _read_version(pipe: Any, field: str, bump: bool) -> None:
    """Every change of a queue's figures or an agent's row gets the next version, in the
    same transaction: boards drop a delta older than what they show (events from several
    processes, or coalesced ones, can arrive out of order)."""
    if bump:
        pipe.hincrby(VERSIONS, field, 1)
    else:
        pipe.hget(VERSIONS, field)


QUEUE_READS = 6
VERSIONS = "board:versions"


def _read_queue(pipe: Any, queue_id: int, periods: dict[str, str], *, bump: bool) -> None:
    """Queue six reads: today's, this interval's and the last interval's counts, how many
    wait, the longest waiting, and the version of the figures."""
    pipe.hgetall(_queue_key(queue_id, periods["today"]))
    pipe.hgetall(_queue_key(queue_id, periods["interval"]))
    pipe.hgetall(_queue_key(queue_id, periods["previous"]))
    pipe.zcard(_waiting_key(queue_id))
    pipe.zrange(_waiting_key(queue_id), 0, 0, withscores=True)
    _read_version(pipe, f"q:{queue_id}", bump)


def _counts(raw: dict) -> dict[str, int]:
    values = {_text(k): int(v) for k, v in (raw or {}).items()}
    return {name: values.get(name, 0) for name in COUNTS}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _queue_figures(queue_id: int, replies: list[Any], now: float) -> dict[str, Any]:
    today, interval, previous, waiting, oldest, version = replies
    figures = {"id": queue_id, "version": int(version or 0), "waiting": int(waiting)}
    figures["longest_wait_s"] = int(now - oldest[0][1]) if oldest else 0
    for name, raw in (("today", today), ("interval", interval), ("previous_interval", previous)):
        counts = _counts(raw)
        # Every caller's wait (answered or not) over the abandons: the callers' mean
        # patience, which staffing advice uses for Erlang A.
        patience = erlang.estimated_patience_s(
            counts["abandoned"], (counts["wait_ms"] + counts["abandon_wait_ms"]) / 1000
        )
        figures[name] = {
            **counts,
            **metrics.summarise(counts),
            "patience_s": None if patience is None else round(patience, 1),
        }
    return figures


BUSY_STATES = ("busy", "reserved", "wrapup")


def _agent_figures(replies: list[Any], now: float) -> dict[str, Any]:
    """Today's figures of an agent: handled, missed offers, time per state, occupancy (time
    busy, reserved or in wrap-up over that plus time available; away and offline left out)."""
    day, (status, since_ms), work, version = replies
    values = {_text(k): int(v) for k, v in (day or {}).items()}
    if status is not None:  # the state they are in counts up to now
        current = f"{_text(status)}_ms"
        since = max(int(since_ms), _day_start_ms(now))
        values[current] = values.get(current, 0) + max(0, int(now * 1000) - since)
    busy_ms = sum(values.get(f"{state}_ms", 0) for state in BUSY_STATES)
    occupancy = metrics.occupancy(busy_ms, busy_ms + values.get("available_ms", 0))
    return {
        "version": int(version or 0),
        "handled_today": values.get("handled", 0),
        "handle_s_today": round(values.get("handle_ms", 0) / 1000),
        "missed_today": values.get("missed", 0),
        "occupancy": None if occupancy is None else round(occupancy, 4),
        "work": sorted(
            (_work_item(_text(entry)) for entry in work), key=lambda w: w["interaction_id"]
        ),
    }


def _work_item(entry: str) -> dict[str, Any]:
    interaction_id, channel = entry.split(":", 1)
    return {"interaction_id": int(interaction_id), "channel": channel}


def agent_row(agent: User) -> dict[str, Any]:
    """An agent as the board shows them."""
    return {
        "id": agent.id,
        "name": agent.display_name,
        "team": agent.team,
        "status": agent.status,
        "presence": agent.presence,
        "reason": agent.status_reason,
        "since": isoformat(agent.status_since),
    }


def snapshot() -> dict[str, Any]:
    """Everything a board shows when it connects (the only moment it reads the database)."""
    from contact_center.routing.models import Queue

    now = time.time()
    periods = _periods(now)
    queues = db.session.scalars(sa.select(Queue).order_by(Queue.name)).all()
    agents = db.session.scalars(
        sa.select(User)
        .options(selectinload(User.skills))
        .where(User.role == "agent", User.is_active_user.is_(True))
        .order_by(User.display_name)
    ).all()
    pipe = get_redis().pipeline(transaction=False)
    for queue in queues:
        _read_queue(pipe, queue.id, periods, bump=False)
    for agent in agents:
        _read_agent(pipe, agent.id, periods, bump=False)
    replies = pipe.execute()
    rows = []
    for index, queue in enumerate(queues):
        threshold = metrics.sl_threshold_s(queue)
        reads = replies[index * QUEUE_READS : (index + 1) * QUEUE_READS]
        figures = _queue_figures(queue.id, reads, now)
        rows.append(
            {
                **figures,
                "name": queue.name,
                "threshold_s": threshold,
                "target": queue.service_level_target,
                "formula": SERVICE_LEVEL_FORMULA.format(t=threshold),
                "skills": dict(queue.required_skills or {}),
            }
        )
    agent_replies = replies[len(queues) * QUEUE_READS :]
    return {
        "server_time": isoformat(datetime.fromtimestamp(now, UTC)),
        "interval_s": INTERVAL_S,
        "definitions": metrics.DEFINITIONS,
        "queues": rows,
        "agents": [
            {
                **agent_row(agent),
                **_agent_figures(
                    agent_replies[index * AGENT_READS : (index + 1) * AGENT_READS], now
                ),
                "skills": agent.skill_levels(),
            }
            for index, agent in enumerate(agents)
        ],
    }
