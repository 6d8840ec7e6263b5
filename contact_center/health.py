"""`/healthz` (the process answers) and `/readyz` (it can do its work: database, Redis, and a
worker that polled the timers recently), for load balancers and orchestrators.

Workers beat into one Redis sorted set (member: host, process and thread; score: time);
`readyz` wants one beat younger than HEARTBEAT_STALE_S.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time

import sqlalchemy as sa
from flask import Blueprint, jsonify

from contact_center.extensions import db
from contact_center.redis_client import get_redis

log = logging.getLogger(__name__)
bp = Blueprint("health", __name__)

HEARTBEATS_KEY = "workers:heartbeats"
HEARTBEAT_EVERY_S = 5.0
HEARTBEAT_STALE_S = 30.0


def worker_name() -> str:
    """This worker loop's name: host, process and thread."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.current_thread().name}"


def beat(name: str, now: float | None = None) -> None:
    """A worker is alive; beats older than a day are dropped on the way."""
    now = time.time() if now is None else now
    pipe = get_redis().pipeline(transaction=False)
    pipe.zadd(HEARTBEATS_KEY, {name: now})
    pipe.zremrangebyscore(HEARTBEATS_KEY, "-inf", now - 86400)
    pipe.execute()


def forget(name: str) -> None:
    """A worker stopped: its beat goes at once rather than going stale."""
    get_redis().zrem(HEARTBEATS_KEY, name)


def readiness() -> dict[str, str]:
    """Each dependency's state: "ok", or what is wrong with it."""
    checks: dict[str, str] = {}
    try:
        db.session.execute(sa.text("SELECT 1"))
        checks["database"] = "ok"
    except sa.exc.SQLAlchemyError as error:
        log.warning("readiness: database: %s", type(error).__name__)
        checks["database"] = "unreachable"
    finally:
        db.session.rollback()
    try:
        redis = get_redis()
        redis.ping()
        checks["redis"] = "ok"
        fresh = redis.zcount(HEARTBEATS_KEY, time.time() - HEARTBEAT_STALE_S, "+inf")
        checks["worker"] = "ok" if fresh else "no recent heartbeat"
    except Exception as error:  # any client failure means not ready, never a 500
        log.warning("readiness: redis: %s", type(error).__name__)
        checks["redis"] = "unreachable"
        checks["worker"] = "unknown"
    return checks


@bp.get("/healthz")
def healthz():
    """The process is up and answering."""
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz():
    """Ready to take traffic: 200, or 503 naming what is not."""
    checks = readiness()
    ready = all(state == "ok" for state in checks.values())
    return jsonify({"status": "ok" if ready else "unavailable", "checks": checks}), (
        200 if ready else 503
    )
