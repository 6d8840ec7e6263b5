"""Business calendars: working windows per weekday in a time zone, public holidays from
`holidays` (country and subdivision), and custom closed and open dates.

Arithmetic walks local calendar days and turns each day's windows into UTC instants on
that day, so daylight-saving changes fall out right: a 09:00-17:00 window is eight hours
on the day clocks go forward or back, and an overnight window (22:00-06:00) runs into the
next morning.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays as holidays_lib

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_DAYS = 3 * 366  # a search that finds no working time in three years has no answer


class NoBusinessTime(ValueError):
    """The calendar has no working time in the range searched."""


def _parse(clock: str) -> time | None:
    """HH:MM; 24:00 is the end of the day (None)."""
    return None if clock == "24:00" else time.fromisoformat(clock)


@dataclass(frozen=True)
class Calendar:
    """A business calendar; `windows` maps weekday -> [["09:00", "17:00"], ...]."""

    timezone: str
    windows: dict[str, list[list[str]]]
    country: str | None = None
    subdivision: str | None = None
    closed_dates: frozenset[date] = field(default_factory=frozenset)
    # Dates open although a holiday (or a weekend with windows given for them here).
    open_dates: frozenset[date] = field(default_factory=frozenset)

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @cached_property
    def _holidays(self) -> holidays_lib.HolidayBase | None:
        if not self.country:
            return None
        return holidays_lib.country_holidays(self.country, subdiv=self.subdivision)

    def is_holiday(self, day: date) -> bool:
        """A public holiday or a custom closed date (and not a custom open one)."""
        if day in self.open_dates:
            return False
        return day in self.closed_dates or (self._holidays is not None and day in self._holidays)

    def is_business_day(self, day: date) -> bool:
        """A day with working windows that is not a holiday."""
        return bool(self.windows.get(WEEKDAYS[day.weekday()])) and not self.is_holiday(day)

    def day_intervals(self, day: date) -> list[tuple[datetime, datetime]]:
        """The working intervals that start on local `day`, as UTC instants."""
        if not self.is_business_day(day):
            return []
        intervals = []
        for start_clock, end_clock in self.windows.get(WEEKDAYS[day.weekday()], []):
            start, end = _parse(start_clock) or time(0), _parse(end_clock)
            start_at = datetime.combine(day, start, self.zone)
            if end is None or end <= start:  # to midnight, or overnight into the next day
                end_day = day + timedelta(days=1)
                end_at = datetime.combine(end_day, end or time(0), self.zone)
            else:
                end_at = datetime.combine(day, end, self.zone)
            intervals.append((start_at.astimezone(UTC), end_at.astimezone(UTC)))
        return sorted(intervals)

    def _intervals_from(self, moment: datetime):
        """Working intervals (UTC) after `moment`, in order and not overlapping (a night
        shift running into the next day's early window is counted once)."""
        day = moment.astimezone(self.zone).date() - timedelta(days=1)  # overnight windows
        covered = moment
        for offset in range(MAX_DAYS):
            for start, end in self.day_intervals(day + timedelta(days=offset)):
                begin = max(start, covered)
                if end > begin:
                    yield begin, end
                    covered = end
        raise NoBusinessTime("No working time within three years.")

    def add_business_minutes(self, start: datetime, minutes: float) -> datetime:
        """The instant `minutes` of working time after `start`."""
        remaining = timedelta(minutes=minutes)
        if remaining <= timedelta(0):
            return start
        for begin, end in self._intervals_from(start):
            if end - begin >= remaining:
                return begin + remaining
            remaining -= end - begin
        raise NoBusinessTime("unreachable")

    def business_minutes_between(self, start: datetime, end: datetime) -> float:
        """Working minutes between two instants (negative if `end` is before `start`)."""
        if end < start:
            return -self.business_minutes_between(end, start)
        total = timedelta(0)
        for begin, finish in self._intervals_from(start):
            if begin >= end:
                break
            total += min(finish, end) - begin
        return total.total_seconds() / 60

    def next_business_day(self, day: date) -> date:
        """The first business day after `day`."""
        for offset in range(1, MAX_DAYS):
            candidate = day + timedelta(days=offset)
            if self.is_business_day(candidate):
                return candidate
        raise NoBusinessTime("No business day within three years.")

    def close_of_business(self, start: datetime, business_days: int) -> datetime:
        """Close of business on the Nth business day following the day of `start`
        (FCA DISP: "by the close of business on the third business day following the day on
        which it is received")."""
        day = start.astimezone(self.zone).date()
        for _ in range(business_days):
            day = self.next_business_day(day)
        return max(end for _, end in self.day_intervals(day))

    def is_open(self, moment: datetime) -> bool:
        """Whether `moment` falls in a working window."""
        return any(start <= moment < end for start, end in self._window_candidates(moment))

    def _window_candidates(self, moment: datetime):
        day = moment.astimezone(self.zone).date()
        for offset in (-1, 0):
            yield from self.day_intervals(day + timedelta(days=offset))


def place_errors(definition: dict) -> dict[str, str]:
    """What is wrong with a calendar definition's time zone and holiday country."""
    try:
        ZoneInfo(definition.get("timezone") or "")
    except (ZoneInfoNotFoundError, ValueError):
        return {"timezone": "Unknown time zone."}
    if definition.get("country"):
        try:
            holidays_lib.country_holidays(definition["country"])
        except NotImplementedError:
            return {"country": "Unknown country."}
        try:
            holidays_lib.country_holidays(
                definition["country"], subdiv=definition.get("subdivision")
            )
        except NotImplementedError:
            return {"subdivision": f"Unknown subdivision of {definition['country']}."}
    return {}


UK_OFFICE = {day: [["09:00", "17:00"]] for day in WEEKDAYS[:5]}


def england() -> Calendar:
    """Mon-Fri 09:00-17:00 in London with the bank holidays of England."""
    return Calendar("Europe/London", UK_OFFICE, country="GB", subdivision="ENG")
