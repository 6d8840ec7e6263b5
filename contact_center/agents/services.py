"""Users, passwords and API tokens."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app
from werkzeug.security import check_password_hash, generate_password_hash

from contact_center import audit
from contact_center.agents.models import DEFAULT_CAPACITY, ROLES, AgentSkill, ApiToken, User
from contact_center.db_types import contains, utcnow
from contact_center.errors import APIError, Conflict
from contact_center.extensions import db
from contact_center.reads import execute_read
from contact_center.routing.models import Queue

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


# ---------------------------------------------------------------- restricted queues


def can_read_queue(user: User, queue: Queue | None) -> bool:
    """Whether `user` may read a queue and its records (interactions, tickets, complaints):
    any queue's, but a restricted queue's only as one who may read a restricted queue."""
    return queue is None or not queue.restricted or _reads_restricted(user, queue.teams)


def _reads_restricted(user: User, teams: list[str] | None) -> bool:
    """Whether `user` may read a restricted queue of these teams: supervisors and admins, and
    the agents of one of its teams (a restricted queue without teams: no agent)."""
    return user.has_role("supervisor") or (user.team is not None and user.team in (teams or []))


def hidden_queue_ids(user: User) -> list[int]:
    """The queues whose records `user` may not read (none for supervisors and admins)."""
    if user.has_role("supervisor"):
        return []
    # One read, outside the session's transaction when it can be: every offer's screen pop
    # asks this for its agent.
    restricted = execute_read(sa.select(Queue.id, Queue.teams).where(Queue.restricted), {})
    return [row.id for row in restricted if not _reads_restricted(user, row.teams)]


def can_read(user: User, queue_id: int | None, holder_id: int | None) -> bool:
    """Whether `user` may read a record of queue `queue_id` held by `holder_id` (a ticket's
    assignee, an interaction's agent): its holder may, whatever its queue."""
    if holder_id == user.id or queue_id is None:
        return True
    return can_read_queue(user, db.session.get(Queue, queue_id))


def readable_clause(
    queue_id: sa.ColumnElement[Any], holder_id: sa.ColumnElement[Any], hidden: Any, reader_id: Any
) -> sa.ColumnElement[bool]:
    """`can_read` in SQL: the records of no queue, of a queue not in `hidden`, or held by
    `reader_id` (values, or bound parameters of a statement built once)."""
    return sa.or_(queue_id.is_(None), queue_id.not_in(hidden), holder_id == reader_id)


def readable_by(
    user: User, queue_id: sa.ColumnElement[Any], holder_id: sa.ColumnElement[Any]
) -> sa.ColumnElement[bool]:
    """The filter for a list query: the records `user` may read (see can_read)."""
    hidden = hidden_queue_ids(user)
    return readable_clause(queue_id, holder_id, hidden, user.id) if hidden else sa.true()


# ---------------------------------------------------------------- user administration

MIN_PASSWORD_LENGTH = 10
# Fields a supervisor may change, and only on agents.
SUPERVISOR_FIELDS = frozenset({"team", "skills", "capacity"})


def password_problem(password: str, username: str, display_name: str | None = None) -> str | None:
    """Why a new password is not good enough (None when it is)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"At least {MIN_PASSWORD_LENGTH} characters."
    names = {username.casefold(), (display_name or "").casefold()} - {""}
    if password.casefold() in names:
        return "The password cannot be the username or display name."
    if len(set(password)) < 4:
        return "Use more than three different characters."
    return None


def user_snapshot(user: User) -> dict:
    """What the audit trail keeps of a user (never the password hash or tokens)."""
    return {
        "username": user.username,
        "display_name": user.display_name,
        "role": user.role,
        "team": user.team,
        "skills": user.skill_levels(),
        "capacity": dict(user.capacity or {}),
        "voice_endpoint": user.voice_endpoint,
        "active": user.is_active_user,
    }


def _parse_endpoint(endpoint: dict | None) -> str | None:
    """The voice_endpoint column value for {kind, address}, or 422 naming `voice_endpoint`."""
    from contact_center.softphone.services import parse_endpoint

    if endpoint is None:
        return None
    try:
        return parse_endpoint(endpoint["kind"], endpoint.get("address"))
    except APIError as exc:
        raise APIError(exc.status, exc.message, fields={"voice_endpoint": exc.fields}) from exc


def list_users(
    role: str | None = None, team: str | None = None, active: bool | None = None
) -> list[User]:
    """Users by display name, filtered by role, team and whether they are active."""
    statement = sa.select(User).order_by(User.display_name, User.id)
    if role is not None:
        statement = statement.where(User.role == role)
    if team is not None:
        statement = statement.where(User.team == team)
    if active is not None:
        statement = statement.where(User.is_active_user.is_(active))
    return list(db.session.scalars(statement))


def get_user(user_id: int) -> User:
    """The user with this id, or 404."""
    user = db.session.get(User, user_id)
    if user is None:
        raise APIError(404, "No such user.")
    return user


def admin_create_user(actor: User, data: dict) -> User:
    """Create a user from validated API data (audited); the password policy applies."""
    problem = password_problem(data["password"], data["username"], data.get("display_name"))
    if problem:
        raise APIError(422, problem, fields={"password": [problem]})
    if db.session.scalar(sa.select(User.id).where(User.username == data["username"])):
        raise Conflict(f"Username {data['username']!r} is taken.", fields={"username": ["Taken."]})
    endpoint = _parse_endpoint(data.get("voice_endpoint"))
    user = User(
        username=data["username"],
        display_name=data.get("display_name") or data["username"],
        password_hash=generate_password_hash(data["password"]),
        role=data["role"],
        team=data.get("team"),
        voice_endpoint=endpoint,
        capacity={**DEFAULT_CAPACITY, **(data.get("capacity") or {})},
        skills=[AgentSkill(skill=name, level=lv) for name, lv in data["skills"].items()],
    )
    db.session.add(user)
    db.session.flush()
    audit.record("user.created", "user", user.id, actor_id=actor.id, after=user_snapshot(user))
    db.session.commit()
    return user


def update_user(actor: User, user: User, data: dict) -> User:
    """Change a user (audited). Admins change anything but their own role; supervisors only
    the team, skills and capacity of agents. Routing follows a change of skills, team or
    capacity at once."""
    from contact_center.routing import services as routing

    if not actor.has_role("admin"):
        not_allowed = sorted(set(data) - SUPERVISOR_FIELDS)
        if not_allowed:
            raise APIError(
                403,
                "Only an admin may change these fields.",
                fields={name: ["Admins only."] for name in not_allowed},
            )
        if user.role != "agent":
            raise APIError(403, "Supervisors may change agents only.")
    if "role" in data and user.id == actor.id and data["role"] != user.role:
        raise Conflict("You cannot change your own role.", fields={"role": ["Your own."]})
    endpoint = _parse_endpoint(data["voice_endpoint"]) if "voice_endpoint" in data else None
    before = user_snapshot(user)
    if "display_name" in data:
        user.display_name = data["display_name"]
    if "role" in data:
        user.role = data["role"]
    if "team" in data:
        user.team = data["team"]
    if "voice_endpoint" in data:
        user.voice_endpoint = endpoint
    if "capacity" in data:
        user.capacity = {**(user.capacity or {}), **data["capacity"]}
    if "skills" in data:
        current = {skill.skill: skill for skill in user.skills}
        for name, level in data["skills"].items():
            if name in current:
                current[name].level = level
            else:
                user.skills.append(AgentSkill(skill=name, level=level))
        for name, skill in current.items():
            if name not in data["skills"]:
                user.skills.remove(skill)
    after = user_snapshot(user)
    if after == before:
        db.session.rollback()
        return user
    changed = [key for key in after if after[key] != before[key]]
    audit.record(
        "user.updated",
        "user",
        user.id,
        actor_id=actor.id,
        before={key: before[key] for key in changed},
        after={key: after[key] for key in changed},
    )
    db.session.commit()
    if {"skills", "team", "capacity"} & set(changed):
        routing.agent_changed(user)
    return user


def _sign_out_everywhere(user: User, now: datetime) -> None:
    """Revoke every live token of the user and end their sessions (commits what is staged)."""
    live_tokens = db.session.scalars(
        sa.select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
    ).all()
    for record in live_tokens:
        revoke_token(record, now)
    end_sessions(user)


def deactivate_user(actor: User, user: User) -> User:
    """Stop a user signing in: their tokens are revoked, their sessions and console sockets
    end, routing offers them nothing more (audited). An admin cannot deactivate themselves."""
    from contact_center.routing import services as routing

    if user.id == actor.id:
        raise Conflict("You cannot deactivate yourself.")
    if not user.is_active_user:
        return user
    now = utcnow()
    user.is_active_user = False
    audit.record(
        "user.deactivated",
        "user",
        user.id,
        actor_id=actor.id,
        before={"active": True},
        after={"active": False},
    )
    _sign_out_everywhere(user, now)  # commits the deactivation and its audit entry with it
    if user.presence != "offline":
        routing.set_agent_status(user, "offline", "deactivated")
    return user


def reactivate_user(actor: User, user: User) -> User:
    """Let a deactivated user sign in again (audited); they start offline."""
    if user.is_active_user:
        return user
    user.is_active_user = True
    audit.record(
        "user.reactivated",
        "user",
        user.id,
        actor_id=actor.id,
        before={"active": False},
        after={"active": True},
    )
    db.session.commit()
    return user


def reset_password(actor: User, user: User, password: str) -> User:
    """Set a new password (policy applies; audited without it). Someone else's reset also
    revokes their tokens and ends their sessions: whoever knew the old one is out."""
    problem = password_problem(password, user.username, user.display_name)
    if problem:
        raise APIError(422, problem, fields={"password": [problem]})
    user.password_hash = generate_password_hash(password)
    audit.record("user.password_reset", "user", user.id, actor_id=actor.id)
    from contact_center.agents.signin import unlock  # signin builds on this module

    unlock(user.username)
    if user.id == actor.id:
        db.session.commit()
        return user
    now = utcnow()
    _sign_out_everywhere(user, now)
    return user


def _may_direct(actor: User, agent: User) -> None:
    """Supervisors direct agents; admins direct anyone but themselves (403 otherwise)."""
    if agent.id == actor.id:
        raise APIError(403, "Use your own console to change your own status.")
    if not actor.has_role("admin") and agent.role != "agent":
        raise APIError(403, "Supervisors may direct agents only.")


def force_status(actor: User, agent: User, status: str, reason: str | None = None) -> User:
    """A supervisor sets an agent's presence from the board (audited); routing follows."""
    from contact_center.routing import services as routing

    _may_direct(actor, agent)
    audit.record(
        "agent.status_forced",
        "user",
        agent.id,
        actor_id=actor.id,
        before={"presence": agent.presence, "reason": agent.status_reason},
        after={"presence": status, "reason": reason},
    )
    # Commits the audit entry with the change.
    return routing.set_agent_status(agent, status, reason or f"set by {actor.display_name}")


def sign_out_agent(actor: User, agent: User) -> User:
    """A supervisor signs an agent out everywhere (sessions, tokens, console sockets) and sets
    them offline (audited)."""
    from contact_center.routing import services as routing

    _may_direct(actor, agent)
    audit.record("agent.signed_out", "user", agent.id, actor_id=actor.id)
    _sign_out_everywhere(agent, utcnow())  # commits the audit entry with it
    if agent.presence != "offline":
        routing.set_agent_status(agent, "offline", f"signed out by {actor.display_name}")
    return agent
