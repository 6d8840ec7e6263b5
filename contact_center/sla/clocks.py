"""SLA clocks from a ticket's history: pure arithmetic, no database.

A metric's clock runs from its start event until it is fulfilled, counting only the time
the ticket spent in a status that does not pause that metric (solved and closed pause every
clock). Elapsed time is in business minutes on the policy's calendar, or in plain minutes.
From the same walk come the breach instant and the instant any share of the target is
used up (the warning steps of an escalation ladder), so a change anywhere in the history
(a status, a message, the calendar) moves every deadline consistently, as Zammad rebuilds
escalations from the state history.

Metrics (Zendesk's, channel-neutral: a response is a public reply, an answered call or a
completed callback to the customer):
- first_response: from the ticket's creation to the first response.
- next_response: from the oldest customer message not yet answered, after the first
  response, to the next response; one cycle per exchange.
- periodic_update: from each response to the next one, while the ticket is open.
- resolution: from creation until the ticket is solved (reopening resumes it).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from contact_center.sla.calendars import Calendar

METRICS = ("first_response", "next_response", "periodic_update", "resolution")
# Regulatory deadlines of a complaint (complaints.profiles): fixed when it is registered.
DEADLINE_METRICS = ("complaint_acknowledge", "complaint_final_response")
FINISHED = frozenset({"solved", "closed"})  # every clock stops here


@dataclass(frozen=True)
class Target:
    """One metric's commitment under a policy: minutes, business or calendar time, pauses."""

    metric: str
    minutes: int
    business: bool = True
    pause: frozenset[str] = frozenset()


@dataclass(frozen=True)
class History:
    """What the clocks are computed from, each list in time order."""

    created_at: datetime
    statuses: list[tuple[datetime, str]]  # (since, status); the first is the creation status
    customer_messages: list[datetime]
    responses: list[datetime]
    # (metric, started, due, met) of fixed deadlines, such as a complaint's.
    deadlines: list[tuple[str, datetime, datetime, datetime | None]] = field(default_factory=list)


@dataclass(frozen=True)
class Cycle:
    """One run of a metric's clock, as of `now`."""

    metric: str
    cycle: int
    started_at: datetime
    target_minutes: int
    business: bool
    elapsed_minutes: float
    due_at: datetime | None  # when the target is used up; None while paused or stopped
    breached_at: datetime | None
    fulfilled_at: datetime | None
    paused: bool
    stopped: bool  # the ticket was solved or closed before this clock was fulfilled
    marks: dict[int, datetime | None]  # percent of the target -> when it is reached

    @property
    def state(self) -> str:
        """fulfilled, breached, stopped, paused or running."""
        if self.fulfilled_at is not None:
            return "fulfilled"
        if self.breached_at is not None:
            return "breached"
        if self.stopped:
            return "stopped"
        return "paused" if self.paused else "running"

    @property
    def remaining_minutes(self) -> float:
        """Target left (negative once overdue), in the clock's own minutes."""
        return self.target_minutes - self.elapsed_minutes


class _Clock:
    """Minutes and instants on one metric's time base (business or plain)."""

    def __init__(self, calendar: Calendar | None, business: bool) -> None:
        self.calendar = calendar if business else None

    def minutes(self, start: datetime, end: datetime) -> float:
        if self.calendar is not None:
            return self.calendar.business_minutes_between(start, end)
        return (end - start).total_seconds() / 60

    def advance(self, start: datetime, minutes: float) -> datetime:
        if self.calendar is not None:
            return self.calendar.add_business_minutes(start, minutes)
        return start + timedelta(minutes=minutes)


def _segments(
    history: History, start: datetime, end: datetime, pause: frozenset[str]
) -> Iterator[tuple[datetime, datetime]]:
    """The stretches of [start, end] in which the ticket's status lets the clock run."""
    stops = pause | FINISHED
    statuses = history.statuses or [(history.created_at, "new")]
    for index, (since, status) in enumerate(statuses):
        until = statuses[index + 1][0] if index + 1 < len(statuses) else end
        begin, finish = max(since, start), min(until, end)
        if finish > begin and status not in stops:
            yield begin, finish


def _status_at(history: History, moment: datetime) -> str:
    current = history.statuses[0][1] if history.statuses else "new"
    for since, status in history.statuses:
        if since <= moment:
            current = status
    return current


def _walk(
    history: History,
    target: Target,
    clock: _Clock,
    start: datetime,
    end: datetime,
    open_ended: bool,
    thresholds: list[float],
) -> tuple[float, list[datetime | None]]:
    """Elapsed minutes over [start, end], and when each threshold (minutes) is crossed.

    A threshold not crossed by `end` is projected forward from `end` if the clock is still
    running there (`open_ended`); otherwise it has no instant yet.
    """
    elapsed = 0.0
    crossed: list[datetime | None] = [None] * len(thresholds)
    for begin, finish in _segments(history, start, end, target.pause):
        length = clock.minutes(begin, finish)
        for i, threshold in enumerate(thresholds):
            if crossed[i] is None and elapsed + length >= threshold:
                crossed[i] = clock.advance(begin, threshold - elapsed)
        elapsed += length
    if open_ended:
        for i, threshold in enumerate(thresholds):
            if crossed[i] is None:
                crossed[i] = clock.advance(end, threshold - elapsed)
    return elapsed, crossed


def _cycle(
    history: History,
    target: Target,
    calendar: Calendar | None,
    number: int,
    start: datetime,
    fulfilled_at: datetime | None,
    now: datetime,
    percents: tuple[int, ...],
) -> Cycle:
    clock = _Clock(calendar, target.business)
    end = fulfilled_at or now
    status_now = _status_at(history, end)
    stopped = fulfilled_at is None and status_now in FINISHED
    paused = fulfilled_at is None and not stopped and status_now in target.pause
    running = fulfilled_at is None and not stopped and not paused
    thresholds = [target.minutes * p / 100 for p in percents] + [float(target.minutes)]
    elapsed, crossed = _walk(history, target, clock, start, end, running, thresholds)
    due = crossed[-1]
    breached = due if due is not None and due <= end else None
    return Cycle(
        metric=target.metric,
        cycle=number,
        started_at=start,
        target_minutes=target.minutes,
        business=target.business,
        elapsed_minutes=round(elapsed, 3),
        due_at=due if fulfilled_at is None and not stopped else None,
        breached_at=breached,
        fulfilled_at=fulfilled_at,
        paused=paused,
        stopped=stopped,
        marks=dict(zip(percents, crossed[:-1], strict=True)),
    )


def _first_after(moments: list[datetime], after: datetime, now: datetime) -> datetime | None:
    return next((m for m in moments if after <= m <= now), None)


def _starts_and_ends(history: History, metric: str, now: datetime):
    """(start, fulfilled_at) for every cycle of a metric."""
    responses = [r for r in history.responses if history.created_at <= r <= now]
    if metric == "first_response":
        yield history.created_at, (responses[0] if responses else None)
    elif metric == "resolution":
        status, since = history.statuses[-1][1], history.statuses[-1][0]
        yield history.created_at, (since if status in FINISHED and since <= now else None)
    elif metric == "periodic_update":
        for i, response in enumerate(responses):
            yield response, (responses[i + 1] if i + 1 < len(responses) else None)
    elif metric == "next_response" and responses:
        after = responses[0]
        while True:
            asked = next((m for m in history.customer_messages if after < m <= now), None)
            if asked is None:
                return
            answered = _first_after(responses, asked, now)
            yield asked, answered
            if answered is None:
                return
            after = answered


def compute(
    history: History,
    targets: list[Target],
    calendar: Calendar | None,
    now: datetime,
    percents: tuple[int, ...] = (),
) -> list[Cycle]:
    """Every cycle of every targeted metric and fixed deadline, with `percents` of each
    target marked."""
    if not history.statuses:
        history = replace(history, statuses=[(history.created_at, "new")])
    cycles = [
        deadline_cycle(metric, started, due, met, now, percents)
        for metric, started, due, met in history.deadlines
    ]
    for target in targets:
        for number, (start, fulfilled) in enumerate(_starts_and_ends(history, target.metric, now)):
            cycles.append(
                _cycle(history, target, calendar, number, start, fulfilled, now, percents)
            )
    return cycles


def deadline_cycle(
    metric: str,
    started_at: datetime,
    due_at: datetime,
    met_at: datetime | None,
    now: datetime,
    percents: tuple[int, ...] = (),
) -> Cycle:
    """A fixed deadline (a regulator's): it runs in plain time and never pauses."""
    span = due_at - started_at
    end = met_at or now
    return Cycle(
        metric=metric,
        cycle=0,
        started_at=started_at,
        target_minutes=round(span.total_seconds() / 60),
        business=False,
        elapsed_minutes=round((end - started_at).total_seconds() / 60, 3),
        due_at=due_at if met_at is None else None,
        breached_at=due_at if due_at <= end else None,
        fulfilled_at=met_at,
        paused=False,
        stopped=False,
        marks={p: started_at + span * p / 100 for p in percents},
    )
