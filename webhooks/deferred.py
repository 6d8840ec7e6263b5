"""Voice webhooks deferred while the database is unreachable, replayed once it is back.

Twilio does not retry a 5xx, so a voice webhook that cannot reach the database is kept in
Redis (which stays up) and answered as the fallback URL would answer; a worker replays the
kept requests, oldest first, through the same views once the database answers again. The
views' answer keys make a replay that meets a Twilio retry change nothing twice.
"""

from __future__ import annotations

import functools
import json
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

import redis
import sqlalchemy as sa
from flask import Flask, request
from werkzeug.datastructures import MultiDict

from contact_center.errors import database_unavailable, discard_session
from contact_center.extensions import db
from contact_center.redis_client import get_redis

log = logging.getLogger(__name__)

# Not routing state: no Lua script touches these, so they carry no `{cc}` hash tag.
DEFERRED_KEY = "webhooks:deferred"
PROCESSING_KEY = "webhooks:deferred:processing"
FAILED_KEY = "webhooks:deferred:failed"
DRAIN_LOCK_KEY = "webhooks:deferred:lock"
DRAIN_LOCK_S = 60
# A WSGI environ key no HTTP request can set (headers arrive as HTTP_*), holding an object
# only this process has: the replay of a request whose signature was checked on receipt.
REPLAY_ENVIRON_KEY = "contact_center.deferred_replay"


class _Replay:
    """The environ value marking a replay; compared by identity, never by value."""

    def __init__(self, received_at: float) -> None:
        self.received_at = received_at


def replaying() -> _Replay | None:
    """The replay marker of the current request, when a worker is replaying it."""
    marker = request.environ.get(REPLAY_ENVIRON_KEY)
    return marker if isinstance(marker, _Replay) else None


def defer_when_database_down(
    answer: Callable[[], Any], *, keep: bool | Callable[[], bool] = True
) -> Callable:
    """Decorate a voice view: when the database is unreachable, roll back, keep the request
    for replay (when `keep`, or `keep()` for this request, is true) and give Twilio
    `answer()`; both must need neither database nor configuration beyond the app's. A
    replay lets the error through: it stays queued."""

    def decorate(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return view(*args, **kwargs)
            except Exception as error:
                if not database_unavailable(error) or replaying() is not None:
                    raise
                discard_session()
                if keep() if callable(keep) else keep:
                    defer_request()
                else:
                    log.warning("database unavailable: %s answered as the fallback", request.path)
                return answer()

        return wrapper

    return decorate


def defer_request() -> None:
    """Keep the current request (path, query, form, CallSid, receive time) for replay."""
    form = list(request.form.items(multi=True))
    entry = {
        "path": request.full_path.rstrip("?"),
        "form": form,
        "call_sid": request.form.get("CallSid"),
        "received_at": time.time(),
    }
    # If Redis fails too the error reaches Twilio as a 500: nothing can keep the request.
    get_redis().rpush(DEFERRED_KEY, json.dumps(entry))
    log.warning(
        "database unavailable: %s for %s deferred for replay", request.path, entry["call_sid"]
    )


def pending(client: redis.Redis) -> int:
    """How many deferred requests wait (including one a worker was replaying)."""
    pipe = client.pipeline(transaction=False)
    pipe.llen(DEFERRED_KEY)
    pipe.llen(PROCESSING_KEY)
    return sum(pipe.execute())


def database_answers() -> bool:
    """A cheap round trip: whether the database answers now."""
    try:
        db.session.execute(sa.text("SELECT 1"))
        return True
    except sa.exc.SQLAlchemyError:
        return False
    finally:
        discard_session()


def drain(app: Flask) -> int:
    """Replay the deferred requests, oldest first, while the database answers; returns how
    many were replayed. One worker drains at a time (a Redis lock); an entry is moved to a
    processing list while replayed, so a worker dying mid-replay leaves it to the next."""
    with app.app_context():
        client = get_redis()
        if not pending(client) or not database_answers():
            return 0
        token = uuid.uuid4().hex
        if not client.set(DRAIN_LOCK_KEY, token, nx=True, ex=DRAIN_LOCK_S):
            return 0
    replayed = 0
    try:
        # What a dead drainer left half-done goes first: it was received first.
        while client.lmove(PROCESSING_KEY, DEFERRED_KEY, "RIGHT", "LEFT") is not None:
            pass
        while (raw := client.lmove(DEFERRED_KEY, PROCESSING_KEY, "LEFT", "RIGHT")) is not None:
            client.expire(DRAIN_LOCK_KEY, DRAIN_LOCK_S)
            if not _replay_one(app, client, raw):
                client.lmove(PROCESSING_KEY, DEFERRED_KEY, "RIGHT", "LEFT")
                break
            client.lrem(PROCESSING_KEY, 1, raw)
            replayed += 1
    finally:
        # Only our own lock is released (it may have expired and been taken).
        if client.get(DRAIN_LOCK_KEY) == token:
            client.delete(DRAIN_LOCK_KEY)
    if replayed:
        log.info("%d deferred webhook(s) replayed", replayed)
    return replayed


def _replay_one(app: Flask, client: redis.Redis, raw: str) -> bool:
    """Replay one entry through the app's own views; False if the database is down again."""
    entry = json.loads(raw)
    marker = _Replay(entry["received_at"])
    with app.test_request_context(
        entry["path"],
        method="POST",
        base_url=app.config["PUBLIC_BASE_URL"],
        data=MultiDict([(k, v) for k, v in entry["form"]]),
        environ_overrides={REPLAY_ENVIRON_KEY: marker},
    ):
        try:
            response = app.full_dispatch_request()
        except Exception as error:
            if database_unavailable(error):
                log.warning("database unavailable again; replay resumes later")
                return False
            log.exception("deferred %s for %s failed", entry["path"], entry["call_sid"])
            client.rpush(FAILED_KEY, raw)
            return True
    if response.status_code >= 400:
        # Kept for a person to look at: a replay never comes back to the same end.
        log.error(
            "deferred %s for %s answered %d", entry["path"], entry["call_sid"], response.status_code
        )
        client.rpush(FAILED_KEY, raw)
    return True


def received_at() -> float | None:
    """When the request being replayed first arrived (None outside a replay)."""
    marker = replaying()
    return marker.received_at if marker is not None else None
