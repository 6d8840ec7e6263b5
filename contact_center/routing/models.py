"""Queue, Interaction and Reservation: the records routing state is rebuilt from."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from contact_center.agents.models import User
from contact_center.customers.models import Customer
from contact_center.db_types import UTCDateTime, utcnow
from contact_center.extensions import db

CHANNELS = ("voice", "email", "callback")
INTERACTION_STATUSES = ("ivr", "queued", "offered", "connecting", "active", "wrapup", "ended")
# Interactions holding a slot of the agent's channel capacity.
HOLDING_STATUSES = ("connecting", "active", "wrapup")
LIVE_STATUSES = ("connecting", "active")
STRATEGIES = ("longest_idle", "least_occupied", "round_robin")
OUTCOMES = (
    "answered",
    "abandoned",
    "voicemail",
    "callback",
    "failed",
    "self_service",
    "transferred",
    "hung_up_in_ivr",
    "busy",
    "no_answer",
    "closed",
)
RESERVATION_STATUSES = ("pending", "accepted", "rejected", "timeout", "revoked")


class Queue(db.Model):
    __tablename__ = "queues"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(80), unique=True)
    channels: Mapped[list] = mapped_column(sa.JSON, default=lambda: ["voice"])
    # {skill: minimum level}; an agent needs all of them to be offered this queue's work.
    required_skills: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    ordering: Mapped[str] = mapped_column(sa.String(20), default="fifo")
    strategy: Mapped[str] = mapped_column(sa.String(20), default="longest_idle")
    # Breaks ties between queues when a free agent picks the best waiting interaction.
    weight: Mapped[int] = mapped_column(default=0)
    # Teams whose agents serve this queue; empty = every team.
    teams: Mapped[list] = mapped_column(sa.JSON, default=list)
    # Its records (interactions, tickets, complaints) are for its teams' agents only, and
    # supervisors and admins: agents.services.can_read_queue.
    restricted: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    # Ordered steps: {"after_s": 30, "relax": {"lang:zh": 2}} lowers minimum levels (0 drops
    # the skill), {"after_s": 60, "add_teams": ["Cards"]} widens the teams, {"after_s": 90,
    # "queue": "General"} moves the interaction to another queue, keeping its place.
    overflow_steps: Mapped[list] = mapped_column(sa.JSON, default=list)
    # Whether an agent on a voice call may still be offered this queue's other channels.
    allow_during_voice: Mapped[bool] = mapped_column(default=False)
    max_missed_offers: Mapped[int] = mapped_column(default=2)
    # A known customer who hangs up while waiting gets called back, keeping their place.
    callback_on_abandon: Mapped[bool] = mapped_column(default=True)
    # After this long waiting (0 = never) callers leave for voicemail or a callback.
    max_wait_s: Mapped[int] = mapped_column(default=0)
    max_wait_action: Mapped[str] = mapped_column(sa.String(20), default="voicemail")
    wrapup_s: Mapped[int] = mapped_column(default=0)
    service_level_threshold_s: Mapped[int] = mapped_column(default=20)
    # The share of calls to answer within the threshold (0.8 = 80/20): boards and staffing.
    service_level_target: Mapped[float] = mapped_column(default=0.8, server_default="0.8")
    offer_timeout_s: Mapped[int] = mapped_column(default=15)
    # Calls answered from this queue are recorded, after the caller hears the consent notice.
    record_calls: Mapped[bool] = mapped_column(default=False)
    # After the agent hangs up, the caller is asked to rate the call (1-5 on the keypad).
    post_call_survey: Mapped[bool] = mapped_column(default=False)
    recording_consent: Mapped[str | None] = mapped_column(sa.String(500))
    is_default: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Interaction(db.Model):
    __tablename__ = "interactions"

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(sa.String(20))
    direction: Mapped[str] = mapped_column(sa.String(10), default="inbound")
    # CallSid or Message-ID: a retried webhook finds its interaction by this.
    external_id: Mapped[str | None] = mapped_column(sa.String(255), unique=True)
    from_address: Mapped[str | None] = mapped_column(sa.String(320))
    to_address: Mapped[str | None] = mapped_column(sa.String(320))
    customer_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("customers.id", ondelete="SET NULL"), index=True
    )
    queue_id: Mapped[int | None] = mapped_column(sa.ForeignKey("queues.id"), index=True)
    priority: Mapped[int] = mapped_column(default=0)
    required_skills: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    is_complaint: Mapped[bool] = mapped_column(default=False)
    # An agent who should get this first (owner, last agent), until preferred_until.
    preferred_agent_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    preferred_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A transfer to an agent offers it to them once: a decline or timeout goes to the queue.
    preferred_single_offer: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    # Overflow steps applied so far (tier = relaxations applied).
    overflow_step: Mapped[int] = mapped_column(default=0)
    # When it entered its current queue: overflow steps count from here.
    queue_entered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    wrapup_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The IVR flow version the call started on: it keeps it even if the flow is replaced.
    ivr_flow_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("ivr_flows.id", ondelete="SET NULL")
    )
    recording_url: Mapped[str | None] = mapped_column(sa.String(500))
    # Paused for sensitive moments (card details); every pause and resume is audited.
    recording_paused: Mapped[bool] = mapped_column(default=False)
    # The agent's call leg in the conference (for hold, coaching, hanging up a transfer).
    agent_call_sid: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    on_hold: Mapped[bool] = mapped_column(default=False)
    hold_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    hold_s: Mapped[int] = mapped_column(default=0)
    # A warm transfer in progress: the agent consulted (their voice slot is taken) and their leg.
    # Indexed: an agent's status is derived from the calls they consult on or handed on.
    consult_agent_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    consult_call_sid: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    # An agent who handed the call on (transfer) keeps their slot for wrap-up until then.
    handoff_agent_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    handoff_wrapup_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Where a caller stood when they left the queue, and why they left (callback, voicemail).
    left_at_position: Mapped[int | None] = mapped_column()
    leave_reason: Mapped[str | None] = mapped_column(sa.String(20))
    # A callback points at the call it calls back.
    origin_interaction_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("interactions.id", ondelete="SET NULL")
    )
    # The queue score (enqueue time minus priority credit): kept so a returned offer
    # goes back to the same place in the queue.
    queue_score: Mapped[float | None] = mapped_column(sa.Float)
    status: Mapped[str] = mapped_column(sa.String(20), default="queued", index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    offered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # From Twilio's status callbacks: the customer's leg and the agent's leg ringing and
    # picked up (answered_at above is when the agent accepted the work).
    ringing_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    connected_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    agent_ringing_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    agent_connected_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str | None] = mapped_column(sa.String(20))
    disposition: Mapped[str | None] = mapped_column(sa.String(80))
    notes: Mapped[str | None] = mapped_column(sa.Text)
    duration_s: Mapped[int | None] = mapped_column()
    satisfaction: Mapped[int | None] = mapped_column()
    satisfaction_comment: Mapped[str | None] = mapped_column(sa.Text)
    agent_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    # The ticket this interaction belongs to (a voicemail's, a mail thread's).
    ticket_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("tickets.id", ondelete="SET NULL"), index=True
    )

    customer: Mapped[Customer | None] = relationship()
    queue: Mapped[Queue | None] = relationship()
    agent: Mapped[User | None] = relationship(foreign_keys=[agent_id])
    origin: Mapped[Interaction | None] = relationship(
        remote_side=[id], foreign_keys=[origin_interaction_id]
    )
    preferred_agent: Mapped[User | None] = relationship(foreign_keys=[preferred_agent_id])
    consult_agent: Mapped[User | None] = relationship(foreign_keys=[consult_agent_id])
    handoff_agent: Mapped[User | None] = relationship(foreign_keys=[handoff_agent_id])


class Reservation(db.Model):
    __tablename__ = "reservations"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    interaction_id: Mapped[int] = mapped_column(
        sa.ForeignKey("interactions.id", ondelete="CASCADE"), index=True
    )
    agent_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(sa.String(20), default="pending", index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    responded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reason: Mapped[str | None] = mapped_column(sa.String(200))
    # Why this agent: step, candidates, scores. Grows with the routing engine.
    decision: Mapped[dict] = mapped_column(sa.JSON, default=dict)

    interaction: Mapped[Interaction] = relationship()
    agent: Mapped[User] = relationship()
