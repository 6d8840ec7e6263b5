"""SLA policies applied to tickets: clocks from history, stored deadlines, timers, ladders.

Every commit that changes a ticket's SLA inputs (its status, priority, type, channel, queue,
tags or customer; a message; a call linked to it) recomputes its clocks from the whole
history before the commit goes through (see `track_changes`), so the stored deadlines are
never stale and the SLA log records each transition exactly once: the ticket's row is
locked for the recomputation, which serializes writers. Timers only decide when to look
again; the job they start recomputes from the database, so a lost or early timer cannot
lose a breach.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import has_app_context
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from contact_center import jobs
from contact_center.complaints.models import Complaint
from contact_center.db_types import isoformat, utcnow
from contact_center.extensions import db
from contact_center.redis_client import get_redis
from contact_center.routing.models import Interaction
from contact_center.sla import clocks, escalations, timers
from contact_center.sla.calendars import Calendar
from contact_center.sla.models import SlaEvent, SlaPolicy, TicketSla
from contact_center.tickets.models import Ticket, TicketMessage, TicketStatusChange

log = logging.getLogger(__name__)
CUSTOMER_KINDS = ("inbound", "voicemail")
RESPONSE_KINDS = ("outbound",)
CALL_CHANNELS = ("voice", "callback")
# Ticket fields a policy's conditions or targets read: a change to any re-applies policies.
INPUT_FIELDS = ("status", "priority", "type", "channel", "queue_id", "tags", "customer_id")
DIRTY = "sla_dirty_tickets"  # session.info: tickets whose clock inputs changed
ARMED = "sla_armed_tickets"  # session.info: ticket id -> next look, for Redis at commit
EVENTS = "sla_log_entries"  # session.info: SLA log entries to write at commit
JOB_BATCH = 20  # tickets per timer job: fewer round trips, while both workers share a burst
REPLAY_BATCH = 100


# ---------------------------------------------------------------- policies


@dataclass(frozen=True)
class Rules:
    """An active SLA policy as read once for a batch of tickets (calendar built once)."""

    id: int
    name: str
    conditions: dict[str, list]
    targets: dict[str, dict]
    pauses: dict[str, list]
    escalations: list[dict[str, Any]]
    calendar: Calendar | None

    @property
    def percents(self) -> tuple[int, ...]:
        """The shares of a target at which a warning step runs."""
        return tuple(sorted({s["percent"] for s in self.escalations if "percent" in s}))

    def matches(self, ticket: Ticket) -> bool:
        """Whether the ticket meets every condition (tags: any of those listed)."""
        for name, wanted in self.conditions.items():
            if not wanted:
                continue
            if name == "tags":
                if not set(wanted) & set(ticket.tags or []):
                    return False
            elif name == "customer_tier":
                if (ticket.customer.tier if ticket.customer else None) not in wanted:
                    return False
            elif getattr(ticket, name) not in wanted:
                return False
        return True

    def targets_for(self, priority: str) -> list[clocks.Target]:
        """The targets for a priority, in metric order."""
        by_metric = self.targets.get(priority, {})
        return [
            clocks.Target(
                metric,
                int(by_metric[metric]["minutes"]),
                bool(by_metric[metric].get("business", True)),
                frozenset(self.pauses.get(metric, [])),
            )
            for metric in clocks.METRICS
            if metric in by_metric
        ]


def load_rules() -> list[Rules]:
    """The active policies in the order they are tried."""
    policies = db.session.scalars(
        sa.select(SlaPolicy)
        .where(SlaPolicy.active)
        .order_by(SlaPolicy.position, SlaPolicy.id)
        .options(selectinload(SlaPolicy.business_calendar))
    )
    return [
        Rules(
            id=p.id,
            name=p.name,
            conditions=dict(p.conditions or {}),
            targets=dict(p.targets or {}),
            pauses=dict(p.pauses or {}),
            escalations=list(p.escalations or []),
            calendar=p.business_calendar.calendar() if p.business_calendar else None,
        )
        for p in policies
    ]


def policy_for(ticket: Ticket, rules: list[Rules] | None = None) -> Rules | None:
    """The first active policy, in order, whose conditions the ticket meets."""
    return next(
        (r for r in (rules if rules is not None else load_rules()) if r.matches(ticket)), None
    )


# ---------------------------------------------------------------- history


@dataclass
class Loaded:
    """What recomputing tickets reads from the database, loaded for many tickets at once."""

    events: dict[int, list[tuple[str, str, datetime]]]  # per ticket: (source, what, at)
    deadlines: dict[int, list[tuple[str, datetime, datetime, datetime | None]]]
    rows: dict[int, dict[tuple[str, int], TicketSla]]  # kept in step with refresh's changes
    just_fired: dict[int, set[str]] = field(default_factory=dict)  # steps run since loading

    def history(self, ticket: Ticket) -> clocks.History:
        """The ticket's clock inputs: statuses, customer messages, responses, deadlines."""
        statuses, customer, responses = [], [], []
        for source, what, at in self.events.get(ticket.id, []):
            if source == "status":
                statuses.append((at, what))
            elif source == "call" or (source == "message" and what in RESPONSE_KINDS):
                responses.append(at)
            elif source == "message":
                customer.append(at)
        return clocks.History(
            created_at=ticket.created_at,
            # A ticket from before status history has been in its status since it arrived.
            statuses=statuses or [(ticket.created_at, ticket.status)],
            customer_messages=customer,
            responses=responses,
            deadlines=self.deadlines.get(ticket.id, []),
        )

    def fired(self, ticket: Ticket) -> set[str]:
        """The escalation steps already recorded (or run since loading) for the ticket."""
        recorded = {what for source, what, _ in self.events.get(ticket.id, []) if source == "fired"}
        return recorded | self.just_fired.get(ticket.id, set())


def load(tickets: list[Ticket]) -> Loaded:
    """Read the clock inputs of these tickets: three queries however many there are."""
    ids = [t.id for t in tickets]
    # An inbound call counts once an agent took it; a call out once the customer picked up.
    call_answered = sa.case(
        (Interaction.direction == "inbound", Interaction.answered_at),
        else_=Interaction.connected_at,
    )
    union = sa.union_all(
        sa.select(
            TicketStatusChange.ticket_id.label("ticket_id"),
            sa.literal("status").label("source"),
            TicketStatusChange.status.label("what"),
            TicketStatusChange.at.label("at"),
            TicketStatusChange.id.label("seq"),
        ).where(TicketStatusChange.ticket_id.in_(ids)),
        sa.select(
            TicketMessage.ticket_id,
            sa.literal("message"),
            TicketMessage.kind,
            TicketMessage.created_at,
            TicketMessage.id,
        ).where(
            TicketMessage.ticket_id.in_(ids),
            TicketMessage.kind.in_(CUSTOMER_KINDS + RESPONSE_KINDS),
        ),
        sa.select(
            Interaction.ticket_id,
            sa.literal("call"),
            Interaction.direction,
            call_answered,
            Interaction.id,
        ).where(
            Interaction.ticket_id.in_(ids),
            Interaction.channel.in_(CALL_CHANNELS),
            call_answered.is_not(None),
        ),
        sa.select(
            SlaEvent.ticket_id, sa.literal("fired"), SlaEvent.once_key, SlaEvent.at, SlaEvent.id
        ).where(SlaEvent.ticket_id.in_(ids), SlaEvent.once_key.is_not(None)),
    ).order_by(sa.literal_column("at"), sa.literal_column("seq"))
    events: dict[int, list[tuple[str, str, datetime]]] = {}
    for ticket_id, source, what, at, _ in db.session.execute(union):
        events.setdefault(ticket_id, []).append((source, what, at))
    rows: dict[int, dict[tuple[str, int], TicketSla]] = {}
    for row in db.session.scalars(sa.select(TicketSla).where(TicketSla.ticket_id.in_(ids))):
        rows.setdefault(row.ticket_id, {})[(row.metric, row.cycle)] = row
    complaint_ids = [t.id for t in tickets if t.type == "complaint"]
    deadlines = {}
    if complaint_ids:
        for c in db.session.scalars(
            sa.select(Complaint).where(Complaint.ticket_id.in_(complaint_ids))
        ):
            # A complaint's regulatory deadlines run on the same clocks (and ladders).
            deadlines[c.ticket_id] = [
                ("complaint_acknowledge", c.received_at, c.acknowledge_due, c.acknowledged_at),
                (
                    "complaint_final_response",
                    c.received_at,
                    c.final_response_due,
                    c.final_response_at,
                ),
            ]
    return Loaded(events, deadlines, rows)


# ---------------------------------------------------------------- recompute


@dataclass(frozen=True)
class Step:
    """An escalation step due for one clock cycle."""

    index: int
    spec: dict[str, Any]
    cycle: clocks.Cycle
    at: datetime
    key: str  # unique per ticket, policy, clock cycle and step: a second run fails on it


def _steps(ticket: Ticket, policy: Rules, cycles: list[clocks.Cycle]) -> list[Step]:
    """Every escalation step with an instant, for cycles still open."""
    steps = []
    for index, spec in enumerate(policy.escalations or []):
        for cycle in cycles:
            if cycle.fulfilled_at is not None or cycle.stopped:
                continue
            if spec.get("metric", "*") not in ("*", cycle.metric):
                continue
            if "percent" in spec:
                at = cycle.marks.get(spec["percent"])  # None while paused short of it
            else:
                breach = cycle.breached_at or cycle.due_at
                delay = timedelta(minutes=spec.get("after_breach_minutes", 0))
                at = breach + delay if breach is not None else None
            if at is not None:
                key = f"{ticket.id}:{policy.id}:{cycle.metric}:{cycle.cycle}:{index}"
                steps.append(Step(index, spec, cycle, at, key))
    return steps


def _log(
    ticket: Ticket,
    kind: str,
    cycle: clocks.Cycle | None = None,
    *,
    once_key: str | None = None,
    **details: Any,
) -> None:
    """Stage an SLA log entry; they are written together just before the commit."""
    db.session().info.setdefault(EVENTS, []).append(
        {
            "ticket_id": ticket.id,
            "kind": kind,
            "metric": cycle.metric if cycle else None,
            "cycle": cycle.cycle if cycle else None,
            "at": utcnow(),
            "details": details,
            "once_key": once_key,
        }
    )


def _write_events(session: Session) -> None:
    # One executemany for all of a commit's entries (a step's unique key fails it here if
    # another worker recorded the step first).
    events = session.info.pop(EVENTS, None)
    if events:
        session.execute(sa.insert(SlaEvent), events)


def _transitions(ticket: Ticket, row: TicketSla | None, cycle: clocks.Cycle) -> None:
    """Log what changed in one clock since it was last stored."""
    before = row.state if row is not None else None
    after = cycle.state
    if before == after:
        return
    if after == "fulfilled":
        _log(
            ticket,
            "fulfilled",
            cycle,
            at=isoformat(cycle.fulfilled_at),
            breached=cycle.breached_at is not None,
        )
    elif after == "breached":
        _log(ticket, "breached", cycle, at=isoformat(cycle.breached_at))
    elif after == "paused":
        _log(ticket, "paused", cycle)
    elif after == "running" and before == "paused":
        _log(ticket, "resumed", cycle, due_at=isoformat(cycle.due_at))
    elif after == "stopped":
        _log(ticket, "stopped", cycle)
    elif before is None:
        _log(ticket, "started", cycle, due_at=isoformat(cycle.due_at))


@dataclass(frozen=True)
class Computed:
    """A ticket's clocks as just computed, and the escalation steps still to run."""

    policy: Rules | None
    cycles: list[clocks.Cycle]
    steps: list[Step]

    def wake_at(self, skip: frozenset[str] | set[str] = frozenset()) -> datetime | None:
        """When the clocks next need a look: the next step, or a breach to record."""
        pending = [s.at for s in self.steps if s.key not in skip]
        pending += [c.due_at for c in self.cycles if c.due_at is not None and c.breached_at is None]
        return min(pending, default=None)


def refresh(
    ticket: Ticket,
    now: datetime | None = None,
    rules: list[Rules] | None = None,
    loaded: Loaded | None = None,
) -> Computed:
    """Recompute the ticket's clocks from its history; stage the rows, the log, the timer.

    `rules` and `loaded` (from `load_rules` and `load`) spare the queries when many tickets
    are recomputed together."""
    now = now or utcnow()
    loaded = loaded or load([ticket])
    history = loaded.history(ticket)
    # A merged ticket's messages and clocks live on in the ticket that absorbed it.
    policy = policy_for(ticket, rules) if ticket.merged_into_id is None else None
    if policy is None and (ticket.merged_into_id is not None or not history.deadlines):
        _clear(ticket, loaded)
        return Computed(None, [], [])
    if policy is not None and ticket.sla_policy_id != policy.id:
        _log(ticket, "applied", policy=policy.name, policy_id=policy.id, priority=ticket.priority)
    elif policy is None and ticket.sla_policy_id is not None:
        _log(ticket, "removed", policy_id=ticket.sla_policy_id)
    ticket.sla_policy_id = policy.id if policy is not None else None
    cycles = clocks.compute(
        history,
        policy.targets_for(ticket.priority) if policy is not None else [],
        policy.calendar if policy is not None else None,
        now,
        policy.percents if policy is not None else (),
    )
    stored = loaded.rows.setdefault(ticket.id, {})
    rows = dict(stored)
    for cycle in cycles:
        row = rows.pop((cycle.metric, cycle.cycle), None)
        _transitions(ticket, row, cycle)
        if row is None:
            row = TicketSla(ticket_id=ticket.id, metric=cycle.metric, cycle=cycle.cycle)
            db.session.add(row)
            stored[(cycle.metric, cycle.cycle)] = row
        row.policy_id = ticket.sla_policy_id
        row.target_minutes = cycle.target_minutes
        row.business = cycle.business
        row.started_at = cycle.started_at
        row.due_at = cycle.due_at
        row.breached_at = cycle.breached_at
        row.fulfilled_at = cycle.fulfilled_at
        row.elapsed_minutes = cycle.elapsed_minutes
        row.state = cycle.state
    for key, row in rows.items():  # metrics the policy no longer targets
        db.session.delete(row)
        del stored[key]
    open_dues = [c.due_at for c in cycles if c.due_at is not None and c.fulfilled_at is None]
    ticket.next_breach_at = min(open_dues, default=None)
    fired = loaded.fired(ticket)
    steps = _steps(ticket, policy, cycles) if policy is not None else []
    computed = Computed(policy, cycles, [s for s in steps if s.key not in fired])
    _arm(ticket, computed.wake_at())
    return computed


def _clear(ticket: Ticket, loaded: Loaded) -> None:
    rows = loaded.rows.pop(ticket.id, {})
    # A deleted policy may already have nulled sla_policy_id (ON DELETE SET NULL): the
    # clocks it left are what says something was removed.
    if ticket.sla_policy_id is not None or rows:
        _log(ticket, "removed", policy_id=ticket.sla_policy_id)
        ticket.sla_policy_id = None
    for row in rows.values():
        db.session.delete(row)
    ticket.next_breach_at = None
    _arm(ticket, None)


def _arm(ticket: Ticket, wake_at: datetime | None) -> None:
    """Stage the ticket's next look; Redis gets it just before the commit (`_write_timers`)."""
    ticket.sla_wake_at = wake_at
    db.session().info.setdefault(ARMED, {})[ticket.id] = wake_at


def _write_timers(session: Session) -> None:
    # Always written, even when unchanged: a claimed timer sits a lease ahead until then.
    # Written while the tickets' rows are locked, so writers reach Redis in commit order.
    armed = session.info.pop(ARMED, None)
    if not armed:
        return
    try:
        timers.arm_many(armed)
    except Exception:
        # The database keeps the times; the timer set is rebuilt from them.
        log.exception("SLA timers of %d tickets not armed", len(armed))


# ---------------------------------------------------------------- session hook


def _touched(session: Session) -> set[int]:
    ids = set()
    for obj in list(session.new) + list(session.dirty):
        if isinstance(obj, Ticket):
            state = sa.inspect(obj)
            if obj in session.new or any(
                state.attrs[f].history.has_changes() for f in INPUT_FIELDS
            ):
                ids.add(obj.id)
        elif isinstance(obj, TicketMessage | TicketStatusChange) and obj in session.new:
            ids.add(obj.ticket_id)
        elif isinstance(obj, Complaint):
            ids.add(obj.ticket_id)
        elif isinstance(obj, Interaction) and obj.ticket_id is not None:
            state = sa.inspect(obj)
            if any(
                state.attrs[f].history.has_changes()
                for f in ("answered_at", "connected_at", "ticket_id")
            ):
                ids.add(obj.ticket_id)
    ids.discard(None)
    return ids


def _after_flush(session: Session, flush_context: Any) -> None:
    if not has_app_context() or session is not db.session():
        return  # another session (a script's own): the app's services are not in play
    touched = _touched(session)
    if touched:
        session.info.setdefault(DIRTY, set()).update(touched)


def _before_commit(session: Session) -> None:
    session.flush()  # the commit's own changes: what they touched is in DIRTY afterwards
    if session.info.get(DIRTY):
        _refresh_touched(session)
    _write_events(session)
    _write_timers(session)


def _refresh_touched(session: Session) -> None:
    done: set[int] = set()
    rules = load_rules()
    for _ in range(5):  # a refresh does not touch inputs, so this settles at once
        pending = session.info.pop(DIRTY, set()) - done
        if not pending:
            return
        # Locked, so two transactions touching one ticket recompute it one after the other.
        tickets = _locked(sorted(pending))
        loaded = load(tickets)
        for ticket in tickets:
            refresh(ticket, rules=rules, loaded=loaded)
        done |= pending
        session.flush()


def _after_rollback(session: Session) -> None:
    for key in (DIRTY, ARMED, EVENTS):
        session.info.pop(key, None)


def track_changes() -> None:
    """Recompute SLA clocks of every ticket a transaction touches, before it commits."""
    if not sa.event.contains(Session, "after_flush", _after_flush):
        sa.event.listen(Session, "after_flush", _after_flush)
        sa.event.listen(Session, "before_commit", _before_commit)
        sa.event.listen(Session, "after_rollback", _after_rollback)


# ---------------------------------------------------------------- timers and ladders


def poll_due(now: float | None = None, limit: int = 200) -> int:
    """Claim the tickets whose clocks need a look and hand them to RQ jobs, a batch each."""
    if not timers.is_built():
        rebuild_timers()
    now = now if now is not None else utcnow().timestamp()
    if timers.sweep_turn():
        sweep_overdue(now)
    due = timers.claim(now, limit)
    for start in range(0, len(due), JOB_BATCH):
        jobs.enqueue(run_timers, due[start : start + JOB_BATCH])
    return len(due)


def sweep_overdue(now: float) -> int:
    """Put back in the timer set the tickets the database says are overdue by more than a
    lease: a worker died between writing their next time to Redis and committing."""
    cutoff = datetime.fromtimestamp(now - timers.LEASE_S, UTC)
    rows = db.session.execute(
        sa.select(Ticket.id, Ticket.sla_wake_at).where(Ticket.sla_wake_at < cutoff).limit(1000)
    ).all()
    db.session.rollback()
    timers.lower([(r.id, r.sla_wake_at) for r in rows])
    return len(rows)


def rebuild_timers() -> int:
    """Load the timer set from the tickets' stored wake times (after Redis lost it)."""
    with get_redis().lock(timers.REBUILD_LOCK, timeout=60, blocking_timeout=60):
        if timers.is_built():
            return 0
        rows = db.session.execute(
            sa.select(Ticket.id, Ticket.sla_wake_at).where(Ticket.sla_wake_at.is_not(None))
        ).all()
        db.session.rollback()
        timers.load([(r.id, r.sla_wake_at) for r in rows])
        return len(rows)


def run_timers(ticket_ids: list[int]) -> str:
    """RQ job: the clocks of these tickets need a look: record breaches, run the escalation
    steps that are due, arm each ticket's next look. One transaction for the batch; if a step
    was recorded meanwhile by another worker, each ticket is retried alone."""
    rules = load_rules()
    try:
        return _run_timers(ticket_ids, rules)
    except IntegrityError:
        db.session.rollback()
    outcomes = []
    for ticket_id in ticket_ids:
        try:
            outcomes.append(_run_timers([ticket_id], rules))
        except IntegrityError:
            db.session.rollback()  # that step ran elsewhere: it is not repeated
            outcomes.append("raced")
        except Exception:
            # Its claimed timer stays a lease ahead: it comes back then.
            db.session.rollback()
            log.exception("SLA timer of ticket %s failed", ticket_id)
            outcomes.append("failed")
    return ", ".join(outcomes)


def _locked(ticket_ids: list[int]) -> list[Ticket]:
    """The tickets, fresh from the database and locked until the commit."""
    return list(
        db.session.scalars(
            sa.select(Ticket)
            .where(Ticket.id.in_(ticket_ids))
            .order_by(Ticket.id)  # one lock order for every worker: no deadlocks
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    )


def _run_timers(ticket_ids: list[int], rules: list[Rules]) -> str:
    tickets = _locked(ticket_ids)
    gone = set(ticket_ids) - {t.id for t in tickets}
    if gone:
        timers.arm_many(dict.fromkeys(gone))
    now = utcnow()
    loaded = load(tickets)
    notices: list[escalations.Notice] = []
    for ticket in tickets:
        notices += _run_due_steps(ticket, now, rules, loaded)
    db.session.flush()
    db.session().info.pop(DIRTY, None)  # computed above, under the tickets' locks
    db.session.commit()
    escalations.deliver(notices)
    return f"{len(tickets)} tickets, {len(notices)} notices"


def _run_due_steps(
    ticket: Ticket, now: datetime, rules: list[Rules], loaded: Loaded
) -> list[escalations.Notice]:
    notices: list[escalations.Notice] = []
    computed = refresh(ticket, now, rules, loaded)
    for _ in range(3):  # an action may change the priority, and so the policy or targets
        due = [s for s in computed.steps if s.at <= now]
        if not due or computed.policy is None:
            break
        priority = ticket.priority
        for step in due:
            notices += _run_step(ticket, computed.policy, step, now, loaded)
        if policy_for(ticket, rules) == computed.policy and ticket.priority == priority:
            _arm(ticket, computed.wake_at(skip={s.key for s in due}))
            break
        # Actions change the ticket, not its history: what was loaded still holds.
        computed = refresh(ticket, now, rules, loaded)
    return notices


def _run_step(
    ticket: Ticket, policy: Rules, step: Step, now: datetime, loaded: Loaded
) -> list[escalations.Notice]:
    kind = "warned" if "percent" in step.spec else "escalated"
    loaded.just_fired.setdefault(ticket.id, set()).add(step.key)
    details: dict[str, Any] = {
        "step": step.index,
        "at": isoformat(step.at),
        "late_s": round((now - step.at).total_seconds(), 3),
        "policy": policy.name,
    }
    if "percent" in step.spec:
        details["percent"] = step.spec["percent"]
    else:
        details["after_breach_minutes"] = step.spec.get("after_breach_minutes", 0)
    done, notices = escalations.perform(ticket, step.spec.get("actions", []), step.cycle, kind)
    _log(ticket, kind, step.cycle, once_key=step.key, actions=done, **details)
    return notices


# ---------------------------------------------------------------- replays


def open_ticket_ids(calendar_id: int | None = None) -> list[int]:
    """Open tickets (all, or those under a policy on this calendar)."""
    query = sa.select(Ticket.id).where(Ticket.status.not_in(clocks.FINISHED))
    if calendar_id is not None:
        query = query.join(SlaPolicy, SlaPolicy.id == Ticket.sla_policy_id).where(
            SlaPolicy.calendar_id == calendar_id
        )
    return list(db.session.scalars(query.order_by(Ticket.id)))


def replay(ticket_ids: list[int]) -> int:
    """Recompute these tickets' clocks (a calendar or policy changed), a batch per commit."""
    rules = load_rules()
    for start in range(0, len(ticket_ids), REPLAY_BATCH):
        tickets = _locked(ticket_ids[start : start + REPLAY_BATCH])
        loaded = load(tickets)
        for ticket in tickets:
            refresh(ticket, rules=rules, loaded=loaded)
        db.session.commit()
    return len(ticket_ids)


def replay_open(calendar_id: int | None = None) -> int:
    """RQ job: recompute every affected open ticket after a calendar or policy change."""
    return replay(open_ticket_ids(calendar_id))


def schedule_replay(calendar_id: int | None = None) -> None:
    """Queue the recomputation of open tickets (call after the change is committed)."""
    jobs.enqueue(replay_open, calendar_id)


# ---------------------------------------------------------------- views


def clock_view(row: TicketSla, now: datetime | None = None) -> dict[str, Any]:
    """One clock as agents see it: due time, remaining or overdue time, paused or not."""
    now = now or utcnow()
    remaining = None
    if row.state in ("running", "breached") and row.due_at is not None:
        remaining = round((row.due_at - now).total_seconds() / 60, 1)
    elif row.state == "paused":
        remaining = round(row.target_minutes - row.elapsed_minutes, 1)
    return {
        "metric": row.metric,
        "cycle": row.cycle,
        "state": row.state,
        "target_minutes": row.target_minutes,
        "business_time": row.business,
        "started_at": isoformat(row.started_at),
        "due_at": isoformat(row.due_at),
        "fulfilled_at": isoformat(row.fulfilled_at),
        "breached_at": isoformat(row.breached_at),
        "elapsed_minutes": round(row.elapsed_minutes, 1),
        # Wall-clock minutes to the due time (negative: overdue); paused: target time left.
        "remaining_minutes": remaining,
        "paused": row.state == "paused",
    }


def ticket_clocks(ticket: Ticket) -> list[dict[str, Any]]:
    """Every clock of a ticket (latest cycle of each metric first in metric order)."""
    rows = db.session.scalars(sa.select(TicketSla).where(TicketSla.ticket_id == ticket.id))
    order = {m: i for i, m in enumerate(clocks.METRICS + clocks.DEADLINE_METRICS)}
    rows = sorted(rows, key=lambda r: (order.get(r.metric, 99), -r.cycle))
    return [clock_view(r) for r in rows]


def events_of(ticket: Ticket) -> list[SlaEvent]:
    """The ticket's SLA log, oldest first."""
    return list(
        db.session.scalars(
            sa.select(SlaEvent).where(SlaEvent.ticket_id == ticket.id).order_by(SlaEvent.id)
        )
    )


PERIODS = ("day", "week", "month")


def _period_start(moment: sa.ColumnElement, period: str) -> sa.ColumnElement:
    """The UTC day, week (from Monday) or month a moment falls in, as YYYY-MM-DD."""
    if db.engine.dialect.name == "postgresql":
        return sa.func.to_char(sa.func.date_trunc(period, moment), "YYYY-MM-DD")
    if period == "week":
        return sa.func.date(moment, "weekday 0", "-6 days")
    return sa.func.strftime("%Y-%m-01" if period == "month" else "%Y-%m-%d", moment)


def compliance(
    start: datetime,
    end: datetime,
    policy_id: int | None = None,
    queue_id: int | None = None,
    period: str | None = None,
) -> list[dict[str, Any]]:
    """Achieved and breached clocks per policy, metric and queue (and `period`: day, week or
    month), for clocks that ended (fulfilled or breached) in [start, end)."""
    outcome = sa.case((TicketSla.breached_at.is_not(None), "breached"), else_="achieved")
    ended = sa.func.coalesce(TicketSla.fulfilled_at, TicketSla.breached_at)
    bucket = _period_start(ended, period) if period else sa.literal(None, sa.String)
    keys = (TicketSla.policy_id, SlaPolicy.name, TicketSla.metric, Ticket.queue_id)
    query = (
        sa.select(
            *keys, bucket.label("period"), outcome.label("outcome"), sa.func.count().label("n")
        )
        .join(Ticket, Ticket.id == TicketSla.ticket_id)
        .outerjoin(SlaPolicy, SlaPolicy.id == TicketSla.policy_id)
        .where(ended >= start, ended < end)
        .group_by(*keys, bucket, outcome)
    )
    if policy_id is not None:
        query = query.where(TicketSla.policy_id == policy_id)
    if queue_id is not None:
        query = query.where(Ticket.queue_id == queue_id)
    groups: dict[tuple, dict[str, Any]] = {}
    for row in db.session.execute(query):
        group = groups.setdefault(
            (row.period, row.policy_id, row.metric, row.queue_id),
            {
                "period": row.period,
                "policy_id": row.policy_id,
                "policy": row.name,
                "metric": row.metric,
                "queue_id": row.queue_id,
                "achieved": 0,
                "breached": 0,
            },
        )
        group[row.outcome] += row.n
    result = sorted(
        groups.values(),
        key=lambda g: (g["period"] or "", g["policy"] or "", g["metric"], g["queue_id"] or 0),
    )
    for group in result:
        group["total"] = group["achieved"] + group["breached"]
        group["achieved_pct"] = round(100 * group["achieved"] / group["total"], 1)
    return result
