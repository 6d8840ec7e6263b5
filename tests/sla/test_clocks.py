"""SLA clocks from history: business time, pauses per metric, cycles, breaches, marks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from contact_center.sla.calendars import Calendar, england
from contact_center.sla.clocks import History, Target, compute

WEEKDAYS = {d: [["09:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def one(cycles, metric, cycle=0):
    return next(c for c in cycles if c.metric == metric and c.cycle == cycle)


def test_first_response_counts_business_minutes_across_a_weekend():
    # Friday 16:30 London (GMT in November): 30 minutes left that day, 30 more on Monday.
    created = at("2026-11-27T16:30:00")
    history = History(created, [(created, "new")], [created], [])
    cycles = compute(history, [Target("first_response", 60)], england(), at("2026-11-28T12:00"))
    clock = one(cycles, "first_response")
    assert clock.due_at == at("2026-11-30T09:30:00")
    assert clock.state == "running"
    assert clock.elapsed_minutes == 30


def test_a_holiday_is_not_business_time():
    created = at("2026-12-24T16:00:00")  # Thursday; 25, 26 (Sat), 28 (substitute) are off
    history = History(created, [(created, "new")], [created], [])
    clock = one(compute(history, [Target("resolution", 120)], england(), created), "resolution")
    assert clock.due_at == at("2026-12-29T10:00:00")


def test_pending_pauses_resolution_but_not_first_response():
    created = at("2026-11-23T09:00:00")  # Monday
    statuses = [(created, "new"), (at("2026-11-23T10:00"), "pending")]
    history = History(created, statuses, [created], [])
    targets = [
        Target("first_response", 240, pause=frozenset()),
        Target("resolution", 480, pause=frozenset({"pending"})),
    ]
    now = at("2026-11-23T12:00")
    cycles = compute(history, targets, england(), now)
    first, resolution = one(cycles, "first_response"), one(cycles, "resolution")
    assert first.state == "running" and first.due_at == at("2026-11-23T13:00")
    assert resolution.state == "paused" and resolution.due_at is None
    assert resolution.elapsed_minutes == 60 and resolution.remaining_minutes == 420

    # Resumed at 14:00: seven hours of the target left from there, so the next day 13:00.
    history = History(created, [*statuses, (at("2026-11-23T14:00"), "open")], [created], [])
    resolution = one(compute(history, targets, england(), at("2026-11-23T15:00")), "resolution")
    assert resolution.state == "running"
    assert resolution.due_at == at("2026-11-24T13:00")


def test_next_response_starts_at_the_oldest_unanswered_customer_message():
    created = at("2026-11-23T09:00")
    messages = [created, at("2026-11-23T11:00"), at("2026-11-23T11:30")]
    responses = [at("2026-11-23T10:00")]
    history = History(created, [(created, "open")], messages, responses)
    target = Target("next_response", 60)
    cycles = compute(history, [target], england(), at("2026-11-23T11:45"))
    clock = one(cycles, "next_response")
    assert clock.started_at == at("2026-11-23T11:00")  # not the later 11:30 message
    assert clock.due_at == at("2026-11-23T12:00")

    # Answered late at 12:30: fulfilled, and recorded as breached at 12:00.
    answered = History(created, [(created, "open")], messages, [*responses, at("2026-11-23T12:30")])
    clock = one(compute(answered, [target], england(), at("2026-11-23T13:00")), "next_response")
    assert clock.state == "fulfilled"
    assert clock.fulfilled_at == at("2026-11-23T12:30")
    assert clock.breached_at == at("2026-11-23T12:00")

    # A second exchange is a second cycle.
    again = History(
        created,
        [(created, "open")],
        [*messages, at("2026-11-23T14:00")],
        [*responses, at("2026-11-23T12:30")],
    )
    cycles = compute(again, [target], england(), at("2026-11-23T14:10"))
    assert one(cycles, "next_response", 1).started_at == at("2026-11-23T14:00")
    assert one(cycles, "next_response", 1).state == "running"


def test_no_next_response_clock_before_the_first_response():
    created = at("2026-11-23T09:00")
    history = History(created, [(created, "new")], [created, at("2026-11-23T09:30")], [])
    assert compute(history, [Target("next_response", 60)], england(), at("2026-11-23T10:00")) == []


def test_resolution_stops_while_solved_and_resumes_on_reopen():
    created = at("2026-11-23T09:00")
    statuses = [(created, "new"), (at("2026-11-23T10:00"), "solved")]
    target = Target("resolution", 120)
    solved = compute(
        History(created, statuses, [], []), [target], england(), at("2026-11-23T11:00")
    )
    assert one(solved, "resolution").state == "fulfilled"

    reopened = [*statuses, (at("2026-11-23T13:00"), "open")]
    clock = one(
        compute(History(created, reopened, [], []), [target], england(), at("2026-11-23T13:30")),
        "resolution",
    )
    assert clock.state == "running"
    assert clock.elapsed_minutes == 90  # 09:00-10:00 and 13:00-13:30; solved time excluded
    assert clock.due_at == at("2026-11-23T14:00")


def test_solving_stops_unfulfilled_response_clocks_without_a_breach():
    created = at("2026-11-23T09:00")
    statuses = [(created, "new"), (at("2026-11-23T09:30"), "solved")]
    cycles = compute(
        History(created, statuses, [created], []),
        [Target("first_response", 60)],
        england(),
        at("2026-11-24T09:00"),
    )
    clock = one(cycles, "first_response")
    assert clock.state == "stopped" and clock.breached_at is None and clock.due_at is None


def test_periodic_update_runs_from_each_response():
    created = at("2026-11-23T09:00")
    responses = [at("2026-11-23T10:00"), at("2026-11-23T11:00")]
    cycles = compute(
        History(created, [(created, "open")], [created], responses),
        [Target("periodic_update", 120)],
        england(),
        at("2026-11-23T11:30"),
    )
    assert one(cycles, "periodic_update", 0).fulfilled_at == at("2026-11-23T11:00")
    assert one(cycles, "periodic_update", 1).due_at == at("2026-11-23T13:00")


def test_warning_marks_fall_at_their_share_of_the_target():
    created = at("2026-11-23T09:00")
    cycles = compute(
        History(created, [(created, "new")], [created], []),
        [Target("first_response", 100)],
        england(),
        at("2026-11-23T09:10"),
        percents=(50, 90),
    )
    clock = one(cycles, "first_response")
    assert clock.marks == {50: at("2026-11-23T09:50"), 90: at("2026-11-23T10:30")}


def test_calendar_time_counts_real_hours_across_daylight_saving_changes():
    new_york = Calendar("America/New_York", {})
    # 2026-11-01 02:00 EDT -> 01:00 EST: a local day that lasts 25 hours.
    created = at("2026-10-31T16:00")
    target = Target("resolution", 24 * 60, business=False)
    clock = one(
        compute(History(created, [(created, "new")], [], []), [target], new_york, created),
        "resolution",
    )
    assert clock.due_at == created + timedelta(hours=24)


def test_business_time_across_spring_forward_in_new_york():
    new_york = Calendar(
        "America/New_York",
        {d: [["00:00", "24:00"]] for d in WEEKDAYS}
        | {"sat": [["00:00", "24:00"]], "sun": [["00:00", "24:00"]]},
    )
    # 2026-03-08 02:00 EST -> 03:00 EDT: the local day has 23 hours of business time.
    created = at("2026-03-08T05:00")  # 00:00 EST
    clock = one(
        compute(
            History(created, [(created, "new")], [], []),
            [Target("resolution", 23 * 60)],
            new_york,
            created,
        ),
        "resolution",
    )
    assert clock.due_at == at("2026-03-09T04:00")  # local midnight EDT


def test_a_fixed_deadline_runs_in_plain_time_and_marks_its_share():
    received = at("2026-11-02T10:00")
    due = at("2026-12-28T10:00")  # eight weeks
    history = History(
        received,
        [(received, "pending")],  # a pending ticket does not stop a regulator's clock
        [],
        [],
        deadlines=[("complaint_final_response", received, due, None)],
    )
    [clock] = compute(history, [], england(), at("2026-12-29T10:00"), percents=(50,))
    assert clock.metric == "complaint_final_response"
    assert clock.state == "breached" and clock.breached_at == due
    assert clock.marks[50] == at("2026-11-30T10:00")
