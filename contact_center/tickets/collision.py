"""Collision detection: who is looking at a ticket and who is writing a reply, right now.

Kept in Redis only (it is live state, not a record): a sorted set of viewers per ticket
scored by when each was last seen, and a set of those replying. A console refreshes its
view while the ticket is open; viewers not seen for VIEWER_TTL_S drop out by themselves.
"""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa

from contact_center.agents.models import User
from contact_center.extensions import db, socketio
from contact_center.realtime.events import AGENT_NAMESPACE
from contact_center.redis_client import get_redis

VIEWER_TTL_S = 90


def ticket_room(ticket_id: int) -> str:
    """The Socket.IO room of everyone viewing a ticket."""
    return f"ticket:{ticket_id}"


def _keys(ticket_id: int) -> tuple[str, str]:
    # Not under the routing hash tag: a routing rebuild clears that, and this is not its state.
    return f"cc:ticket:{ticket_id}:viewers", f"cc:ticket:{ticket_id}:replying"


def activity(ticket_id: int) -> dict[str, Any]:
    """The ticket's current viewers and who of them is replying."""
    viewers_key, replying_key = _keys(ticket_id)
    redis = get_redis()
    redis.zremrangebyscore(viewers_key, 0, time.time() - VIEWER_TTL_S)
    viewer_ids = [int(v) for v in redis.zrange(viewers_key, 0, -1)]
    replying_ids = {int(v) for v in redis.smembers(replying_key)} & set(viewer_ids)
    users = {
        u.id: u for u in db.session.scalars(sa.select(User).where(User.id.in_(viewer_ids or [0])))
    }
    viewers = [
        {"id": uid, "name": users[uid].display_name, "replying": uid in replying_ids}
        for uid in viewer_ids
        if uid in users
    ]
    return {
        "ticket_id": ticket_id,
        "viewers": viewers,
        "replying": [v["name"] for v in viewers if v["replying"]],
    }


def touch(ticket_id: int, user: User, replying: bool | None = None) -> dict[str, Any]:
    """The user has the ticket open (and started or stopped replying); everyone is told."""
    viewers_key, replying_key = _keys(ticket_id)
    redis = get_redis()
    with redis.pipeline() as pipe:
        pipe.zadd(viewers_key, {str(user.id): time.time()})
        pipe.expire(viewers_key, VIEWER_TTL_S * 2)
        if replying is True:
            pipe.sadd(replying_key, str(user.id))
        elif replying is False:
            pipe.srem(replying_key, str(user.id))
        pipe.expire(replying_key, VIEWER_TTL_S * 2)  # kept while anyone refreshes
        pipe.execute()
    return _broadcast(ticket_id)


def leave(ticket_id: int, user_id: int) -> dict[str, Any]:
    """The user closed the ticket (or their console went away)."""
    viewers_key, replying_key = _keys(ticket_id)
    redis = get_redis()
    with redis.pipeline() as pipe:
        pipe.zrem(viewers_key, str(user_id))
        pipe.srem(replying_key, str(user_id))
        pipe.execute()
    return _broadcast(ticket_id)


def _broadcast(ticket_id: int) -> dict[str, Any]:
    state = activity(ticket_id)
    socketio.emit("ticket_activity", state, namespace=AGENT_NAMESPACE, to=ticket_room(ticket_id))
    return state
