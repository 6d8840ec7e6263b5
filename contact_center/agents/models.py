"""Users with roles, skills and channel capacity; hashed API tokens."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from flask_login import UserMixin
from sqlalchemy.orm import Mapped, mapped_column, relationship

from contact_center.db_types import UTCDateTime, utcnow
from contact_center.extensions import db

ROLES = ("agent", "supervisor", "admin")
# A role includes the permissions of the roles before it.
ROLE_RANK = {role: rank for rank, role in enumerate(ROLES)}
PRESENCES = ("available", "away", "offline")
# Reason codes the console offers (the server takes any short reason): going away, declining.
AWAY_REASONS = (
    ("break", "Break"),
    ("lunch", "Lunch"),
    ("meeting", "Meeting"),
    ("training", "Training"),
    ("coaching", "Coaching"),
    ("admin", "Admin work"),
)
REJECT_REASONS = (
    ("busy", "Busy with other work"),
    ("wrong_skill", "Not my skill or language"),
    ("technical_problem", "Technical problem"),
    ("stepping_away", "Stepping away"),
)
AGENT_STATUSES = ("offline", "available", "reserved", "busy", "wrapup", "away")
DEFAULT_CAPACITY = {"voice": 1, "email": 3, "callback": 1}


class User(UserMixin, db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(sa.String(80), unique=True)
    display_name: Mapped[str] = mapped_column(sa.String(120))
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    role: Mapped[str] = mapped_column(sa.String(20), default="agent")
    team: Mapped[str | None] = mapped_column(sa.String(80))
    # Where the agent's call leg rings: a phone number (E.164), "sip:..." or "client:<name>"
    # (Twilio Voice SDK); unset = client:<username>.
    voice_endpoint: Mapped[str | None] = mapped_column(sa.String(200))
    capacity: Mapped[dict] = mapped_column(sa.JSON, default=lambda: dict(DEFAULT_CAPACITY))
    # What the agent chose (available, away, offline) ...
    presence: Mapped[str] = mapped_column(sa.String(20), default="offline")
    # ... and what they are doing, derived from presence, offers and interactions.
    status: Mapped[str] = mapped_column(sa.String(20), default="offline")
    status_reason: Mapped[str | None] = mapped_column(sa.String(200))
    status_since: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # When the agent last became free for work (longest-idle routing) and last got an offer.
    idle_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_offer_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    is_active_user: Mapped[bool] = mapped_column(default=True)
    # Bumped at sign-out: every login session and console socket of the user ends.
    session_epoch: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    skills: Mapped[list[AgentSkill]] = relationship(
        back_populates="user", cascade="all, delete-orphan", order_by="AgentSkill.skill"
    )

    @property
    def is_active(self) -> bool:  # Flask-Login refuses inactive users
        return self.is_active_user

    def has_role(self, role: str) -> bool:
        """True when the user's role is `role` or above it."""
        return ROLE_RANK[self.role] >= ROLE_RANK[role]

    def call_address(self) -> str:
        """Where this user's call leg rings: their voice endpoint, else their Twilio Client id."""
        return self.voice_endpoint or f"client:{self.username}"

    def skill_levels(self) -> dict[str, int]:
        """The user's skills as {skill: level}."""
        return {skill.skill: skill.level for skill in self.skills}


class AgentSkill(db.Model):
    __tablename__ = "agent_skills"
    __table_args__ = (sa.UniqueConstraint("user_id", "skill"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    skill: Mapped[str] = mapped_column(sa.String(80))
    level: Mapped[int] = mapped_column(default=1)

    user: Mapped[User] = relationship(back_populates="skills")


class ApiToken(db.Model):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # SHA-256 of the token: the token itself is shown once and never stored.
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship()
