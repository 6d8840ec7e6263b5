"""Business calendar arithmetic: windows, weekends, holidays, overnight shifts, DST."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from contact_center.sla.calendars import UK_OFFICE, WEEKDAYS, Calendar, NoBusinessTime, england

LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")


def at(zone, *parts) -> datetime:
    return datetime(*parts, tzinfo=zone)


def test_minutes_within_a_day_and_over_the_weekend():
    uk = england()
    friday_4pm = at(LONDON, 2026, 11, 27, 16, 0)  # a Friday
    assert uk.add_business_minutes(friday_4pm, 30) == at(LONDON, 2026, 11, 27, 16, 30)
    # 60 minutes left on Friday, the other 60 on Monday from 09:00.
    assert uk.add_business_minutes(friday_4pm, 120) == at(LONDON, 2026, 11, 30, 10, 0)
    assert uk.business_minutes_between(friday_4pm, at(LONDON, 2026, 11, 30, 10, 0)) == 120
    # Starting outside hours counts from the next opening.
    saturday = at(LONDON, 2026, 11, 28, 12, 0)
    assert uk.add_business_minutes(saturday, 1) == at(LONDON, 2026, 11, 30, 9, 1)
    assert not uk.is_open(saturday) and uk.is_open(friday_4pm)


def test_minutes_across_bank_holidays():
    uk = england()
    # Thursday 24 Dec 2026, 16:00; 25 and 26 are holidays, 28 Dec is Boxing Day observed.
    christmas_eve = at(LONDON, 2026, 12, 24, 16, 0)
    assert uk.add_business_minutes(christmas_eve, 120) == at(LONDON, 2026, 12, 29, 10, 0)
    assert uk.is_holiday(date(2026, 12, 28)) and not uk.is_business_day(date(2026, 12, 28))
    assert uk.next_business_day(date(2026, 12, 24)) == date(2026, 12, 29)


def test_custom_closed_and_open_dates():
    calendar = Calendar(
        "Europe/London",
        UK_OFFICE,
        country="GB",
        subdivision="ENG",
        closed_dates=frozenset({date(2026, 12, 1)}),
        open_dates=frozenset({date(2026, 12, 28)}),
    )
    assert not calendar.is_business_day(date(2026, 12, 1))  # a company closure
    assert calendar.is_business_day(date(2026, 12, 28))  # open although a bank holiday


def test_overnight_window_runs_into_the_next_morning():
    nights = Calendar("Europe/London", {day: [["22:00", "06:00"]] for day in WEEKDAYS})
    start = at(LONDON, 2026, 11, 26, 23, 0)
    assert nights.add_business_minutes(start, 6 * 60) == at(LONDON, 2026, 11, 27, 5, 0)
    # 7 h from 23:00: the night ends at 06:00 (7 h), so it lands exactly at the end.
    assert nights.add_business_minutes(start, 7 * 60) == at(LONDON, 2026, 11, 27, 6, 0)
    assert nights.add_business_minutes(start, 8 * 60) == at(LONDON, 2026, 11, 27, 23, 0)
    assert nights.is_open(at(LONDON, 2026, 11, 27, 3, 0))
    assert not nights.is_open(at(LONDON, 2026, 11, 27, 12, 0))


@pytest.mark.parametrize(
    ("zone", "day", "hours"),
    [
        (LONDON, (2026, 3, 29), 24),  # spring forward: the clock day has 23 real hours
        (LONDON, (2026, 10, 25), 24),  # fall back: 25 real hours
        (NEW_YORK, (2026, 3, 8), 24),
        (NEW_YORK, (2026, 11, 1), 24),
    ],
)
def test_dst_days_keep_their_wall_clock_windows(zone, day, hours):
    always = Calendar(str(zone), {d: [["00:00", "24:00"]] for d in WEEKDAYS})
    office = Calendar(str(zone), {d: [["09:00", "17:00"]] for d in WEEKDAYS})
    start = at(zone, *day, 9, 0)
    # A 09:00-17:00 window is 8 hours of business time whatever the clocks did at 01:00/02:00.
    assert office.add_business_minutes(start, 8 * 60) == at(zone, *day, 17, 0)
    midnight = at(zone, *day, 0, 0)
    next_midnight = at(zone, day[0], day[1], day[2] + 1, 0, 0)
    real_hours = (next_midnight.astimezone(UTC) - midnight.astimezone(UTC)).total_seconds() / 3600
    assert real_hours in (23, 24, 25) and real_hours != hours
    # Around the clock, business minutes are real elapsed minutes (23 h or 25 h that day).
    assert always.business_minutes_between(midnight, next_midnight) == real_hours * 60


def test_a_calendar_without_working_time_says_so():
    never = Calendar("Europe/London", {})
    with pytest.raises(NoBusinessTime):
        never.add_business_minutes(at(LONDON, 2026, 11, 26, 9, 0), 1)


def test_close_of_business_on_the_third_business_day():
    uk = england()
    # Received Thursday 24 Dec 2026: business days after it are 29, 30, 31 Dec.
    received = at(LONDON, 2026, 12, 24, 11, 0)
    assert uk.close_of_business(received, 3) == at(LONDON, 2026, 12, 31, 17, 0)


def test_overlapping_windows_count_once():
    calendar = Calendar("UTC", {"mon": [["22:00", "06:00"]], "tue": [["00:00", "08:00"]]})
    monday_8pm = datetime(2026, 11, 30, 20, 0, tzinfo=UTC)
    # Monday 22:00 to Tuesday 08:00 is ten hours of working time, not sixteen.
    assert (
        calendar.business_minutes_between(monday_8pm, datetime(2026, 12, 1, 12, 0, tzinfo=UTC))
        == 600
    )
    assert calendar.add_business_minutes(monday_8pm, 600) == datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
