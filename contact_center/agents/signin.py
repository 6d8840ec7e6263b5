"""Signing in with a password, guarded: lockout after repeated failures, and an audit line
for every attempt.

Both ways in (the login form and `POST /api/v1/auth/tokens`) go through `sign_in`. Each
client address is also rate limited (Flask-Limiter, `LOGIN_RATE_LIMIT`), which stops one
address guessing many accounts; the lockout stops many addresses guessing one account.
A locked account refuses even the right password until the lock expires or an admin sets
a new password. Failures are counted in Redis, per lower-cased username, for
`LOGIN_LOCKOUT_S` seconds from the first failure.
"""

from __future__ import annotations

import math

import sqlalchemy as sa
from flask import current_app

from contact_center import audit
from contact_center.agents.models import User
from contact_center.agents.services import authenticate
from contact_center.errors import APIError
from contact_center.extensions import db
from contact_center.redis_client import get_redis


class LockedOut(APIError):
    """Too many failed attempts: 429 with Retry-After."""

    def __init__(self, retry_after_s: int) -> None:
        minutes = max(1, math.ceil(retry_after_s / 60))
        super().__init__(
            429,
            f"Too many failed sign-ins: this account is locked for {minutes} more minute"
            f"{'s' if minutes != 1 else ''}.",
            code="rate_limited",
            headers={"Retry-After": str(retry_after_s)},
        )


def login_rate_limit() -> str:
    """The per-address limit on password sign-ins (Flask-Limiter's notation)."""
    return current_app.config["LOGIN_RATE_LIMIT"]


def _key(kind: str, username: str) -> str:
    return f"login:{kind}:{username.strip().casefold()}"


def locked_for(username: str) -> int:
    """Seconds the account stays locked (0: not locked)."""
    ttl = get_redis().ttl(_key("lock", username))
    return max(0, int(ttl or 0))


def unlock(username: str) -> None:
    """Forget failures and any lock (a new password was set)."""
    get_redis().delete(_key("fail", username), _key("lock", username))


def sign_in(username: str, password: str, via: str) -> User | None:
    """The user for these credentials, or None; audited; raises LockedOut when locked."""
    config = current_app.config
    wait = locked_for(username)
    if wait:
        _audit_failure(username, _known(username), via, "locked")
        db.session.commit()
        raise LockedOut(wait)
    user = authenticate(username, password)
    if user is not None:
        get_redis().delete(_key("fail", username))
        audit.record("user.signed_in", "user", user.id, actor_id=user.id, after={"via": via})
        db.session.commit()
        return user
    known = _known(username)
    failures = _count_failure(username, int(config["LOGIN_LOCKOUT_S"]))
    locking = failures >= int(config["LOGIN_MAX_FAILURES"]) > 0
    if locking:
        get_redis().set(_key("lock", username), 1, ex=int(config["LOGIN_LOCKOUT_S"]))
        get_redis().delete(_key("fail", username))
    _audit_failure(username, known, via, "locked_now" if locking else "wrong_credentials")
    db.session.commit()
    return None


def _known(username: str) -> User | None:
    return db.session.scalar(sa.select(User).where(User.username == username))


def _count_failure(username: str, window_s: int) -> int:
    pipe = get_redis().pipeline(transaction=True)
    pipe.incr(_key("fail", username))
    pipe.expire(_key("fail", username), window_s, nx=True)
    return int(pipe.execute()[0])


def _audit_failure(username: str, user: User | None, via: str, reason: str) -> None:
    # An unknown username is kept (cut short) so guessing shows in the trail; passwords never.
    audit.record(
        "user.sign_in_failed",
        "user",
        user.id if user is not None else 0,
        after={"via": via, "reason": reason, "username": username[:80]},
    )
