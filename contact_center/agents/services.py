"""Users, passwords and API tokens."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from werkzeug.security import check_password_hash, generate_password_hash

from contact_center.agents.models import DEFAULT_CAPACITY, ROLES, AgentSkill, ApiToken, User
from contact_center.db_types import contains, utcnow
from contact_center.errors import APIError, Conflict
from contact_center.extensions import db

# Checked against when a username is unknown, so a login takes as long either way.
_DUMMY_HASH = generate_password_hash("not a real password")


def parse_skills(text: str | None) -> dict[str, int]:
    """Parse 'lang:en=5,product:cards=3' into {skill: level}; a bare skill is level 1."""
    skills: dict[str, int] = {}
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        name, _, level = part.partition("=")
        name = name.strip()
        try:
            level_value = int(level) if level else 1
        except ValueError:
            raise APIError(422, f"Skill level for {name!r} must be a number.") from None
        if not name or not 1 <= level_value <= 5:
            raise APIError(422, f"Skill {part!r} needs a name and a level from 1 to 5.")
        skills[name] = level_value
    return skills


def create_user(
    username: str,
    password: str,
    role: str = "agent",
    *,
    display_name: str | None = None,
    team: str | None = None,
    skills: dict[str, int] | None = None,
    capacity: dict[str, int] | None = None,
) -> User:
    """Create a user with a hashed password; refuses a taken username."""
    if role not in ROLES:
        raise APIError(422, f"Role must be one of {', '.join(ROLES)}.", fields={"role": role})
    if len(password) < 8:
        raise APIError(422, "Passwords need at least 8 characters.")
    if db.session.scalar(sa.select(User.id).where(User.username == username)):
        raise Conflict(f"Username {username!r} is taken.")
    user = User(
        username=username,
        display_name=display_name or username,
        password_hash=generate_password_hash(password),
        role=role,
        team=team,
        capacity=dict(capacity or DEFAULT_CAPACITY),
        skills=[AgentSkill(skill=name, level=level) for name, level in (skills or {}).items()],
    )
    db.session.add(user)
    db.session.commit()
    return user


def authenticate(username: str, password: str) -> User | None:
    """The active user with these credentials, or None."""
    user = db.session.scalar(sa.select(User).where(User.username == username))
    if user is None:
        check_password_hash(_DUMMY_HASH, password)
        return None
    if not check_password_hash(user.password_hash, password) or not user.is_active:
        return None
    return user


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(user: User) -> tuple[str, ApiToken]:
    """A new bearer token for the user; only its hash is stored."""
    token = secrets.token_urlsafe(32)
    ttl = timedelta(hours=current_app.config["API_TOKEN_TTL_HOURS"])
    record = ApiToken(user_id=user.id, token_hash=_hash_token(token), expires_at=utcnow() + ttl)
    db.session.add(record)
    db.session.commit()
    return token, record


def token_record(token: str) -> ApiToken | None:
    """The live (unexpired, unrevoked) token record for a bearer token, or None."""
    return token_record_by_hash(_hash_token(token))


def token_record_by_hash(token_hash: str) -> ApiToken | None:
    """The live token record with this hash (sockets keep the hash, never the token)."""
    record = db.session.scalar(sa.select(ApiToken).where(ApiToken.token_hash == token_hash))
    if record is None or record.revoked_at is not None or record.expires_at <= utcnow():
        return None
    if not record.user.is_active:
        return None
    return record


def end_sessions(user: User) -> None:
    """Sign the user out everywhere: login sessions and console sockets stop working."""
    user.session_epoch += 1
    db.session.commit()


def revoke_token(record: ApiToken, when: datetime | None = None) -> None:
    """Revoke a token so it authenticates nothing more."""
    record.revoked_at = when or utcnow()
    db.session.commit()


def directory(query: str | None = None, available_only: bool = False) -> list[User]:
    """Active users who take calls, by name; optionally only those available now."""
    statement = (
        sa.select(User)
        .where(User.is_active_user.is_(True))
        .order_by(User.display_name, User.id)
        .limit(200)
    )
    if query:
        statement = statement.where(
            sa.or_(contains(User.display_name, query), contains(User.username, query))
        )
    if available_only:
        statement = statement.where(User.status == "available")
    return list(db.session.scalars(statement))
