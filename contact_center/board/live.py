"""The live board: counters kept in Redis as routing changes them, pushed as deltas.

Routing calls in at the moments that change a figure: a wait starts, a wait ends (answered,
abandoned, or gone another way), handling ends, an agent's status changes. Each call is one
Redis round trip (the increments and the read-back of the queue's figures in one
transaction) and one `board_delta` event to every supervisor's board. No database query
happens per event; the database is read only when a board connects (`snapshot`).

Counters are the report's additive counts (`metrics.summarise`), per queue for the UTC day
and for the current 15-minute interval, so the board and the reports agree by construction.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from contact_center.agents.models import User
from contact_center.board import metrics
from contact_center.db_types import isoformat
from contact_center.extensions import db
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
        counts = {"abandoned": 1, "abandoned_within": int(within)}
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
    _change(queue_id, counts=counts, agent_id=agent_id)


def agent_changed(agent: User) -> None:
    """An agent's status changed: their row on every board."""
    emit_to_supervisors("board_delta", {"agents": [agent_row(agent)]})


def _change(
    queue_id: int | None,
    *,
    counts: dict[str, int] | None = None,
    waiting_add: tuple[int, float] | None = None,
    waiting_remove: int | None = None,
    agent_id: int | None = None,
) -> None:
    now = time.time()
    periods = _periods(now)
    pipe = get_redis().pipeline(transaction=True)
    if queue_id is not None:
        for period in periods.values():
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
        for field, amount in (counts or {}).items():
            pipe.hincrby(key, field, amount)
        pipe.expire(key, DAY_TTL_S)
        pipe.hgetall(key)
    if queue_id is not None:
        _read_queue(pipe, queue_id, periods)
    replies = pipe.execute()
    delta: dict[str, Any] = {}
    if queue_id is not None:
        delta["queues"] = [_queue_figures(queue_id, replies[-4:], now)]
    if agent_id is not None:
        agent_counts = replies[-5] if queue_id is not None else replies[-1]
        delta["agent_counts"] = [{"id": agent_id, **_agent_figures(agent_counts)}]
    if delta:
        emit_to_supervisors("board_delta", delta)


def _read_queue(pipe: Any, queue_id: int, periods: dict[str, str]) -> None:
    """Queue four reads: today's and the interval's counts, how many wait, the longest."""
    pipe.hgetall(_queue_key(queue_id, periods["today"]))
    pipe.hgetall(_queue_key(queue_id, periods["interval"]))
    pipe.zcard(_waiting_key(queue_id))
    pipe.zrange(_waiting_key(queue_id), 0, 0, withscores=True)


def _counts(raw: dict) -> dict[str, int]:
    values = {_text(k): int(v) for k, v in (raw or {}).items()}
    return {name: values.get(name, 0) for name in COUNTS}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _queue_figures(queue_id: int, replies: list[Any], now: float) -> dict[str, Any]:
    today, interval, waiting, oldest = replies
    today_counts, interval_counts = _counts(today), _counts(interval)
    return {
        "id": queue_id,
        "waiting": int(waiting),
        "longest_wait_s": int(now - oldest[0][1]) if oldest else 0,
        "today": {**today_counts, **metrics.summarise(today_counts)},
        "interval": {**interval_counts, **metrics.summarise(interval_counts)},
    }


def _agent_figures(raw: dict) -> dict[str, Any]:
    counts = _counts(raw)
    return {
        "handled_today": counts["handled"],
        "handle_s_today": round(counts["handle_ms"] / 1000),
    }


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
        _read_queue(pipe, queue.id, periods)
    for agent in agents:
        pipe.hgetall(_agent_key(agent.id, periods["today"]))
    replies = pipe.execute()
    rows = []
    for index, queue in enumerate(queues):
        threshold = metrics.sl_threshold_s(queue)
        figures = _queue_figures(queue.id, replies[index * 4 : index * 4 + 4], now)
        rows.append(
            {
                **figures,
                "name": queue.name,
                "threshold_s": threshold,
                "target": getattr(queue, "service_level_target", None) or 0.8,
                "formula": SERVICE_LEVEL_FORMULA.format(t=threshold),
                "skills": dict(queue.required_skills or {}),
            }
        )
    agent_replies = replies[len(queues) * 4 :]
    return {
        "server_time": isoformat(datetime.fromtimestamp(now, UTC)),
        "interval_s": INTERVAL_S,
        "definitions": metrics.DEFINITIONS,
        "queues": rows,
        "agents": [
            {**agent_row(agent), **_agent_figures(raw), "skills": agent.skill_levels()}
            for agent, raw in zip(agents, agent_replies, strict=True)
        ],
    }
