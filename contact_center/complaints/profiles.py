"""Regulatory clock profiles: which deadlines a complaint has, on which calendar.

A profile is data. "UK FCA DISP" (DISP 1.5, 1.6): acknowledge promptly (here: by close of
business the next business day); a summary resolution communication is possible until
close of business on the third business day after the day of receipt; a final response
within eight weeks of receipt; the final response states the customer's right to refer
to the Financial Ombudsman Service within six months. "UK FCA DISP, payment services"
(DISP 1.6.2A): a final response within 15 business days, 35 in exceptional circumstances.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from dateutil.relativedelta import relativedelta

from contact_center.sla.calendars import Calendar, england


@dataclass(frozen=True)
class Profile:
    name: str
    label: str
    calendar: Calendar
    acknowledge_business_days: int
    summary_resolution_business_days: int | None
    final_response_weeks: int | None = None
    final_response_business_days: int | None = None
    exceptional_business_days: int | None = None
    ombudsman_months: int = 6

    def deadlines(
        self, received: datetime, exceptional: bool = False
    ) -> dict[str, datetime | None]:
        """The complaint's deadlines for a receipt at `received`."""
        cal = self.calendar
        # Calendar periods count on the local clock (an 8-week deadline keeps its hour
        # across a daylight-saving change).
        local = received.astimezone(cal.zone)
        if self.final_response_business_days is not None:
            days = self.final_response_business_days
            if exceptional and self.exceptional_business_days is not None:
                days = self.exceptional_business_days
            final = cal.close_of_business(received, days)
        else:
            final = (local + timedelta(weeks=self.final_response_weeks or 8)).astimezone(UTC)
        summary = self.summary_resolution_business_days
        return {
            "acknowledge_due": cal.close_of_business(received, self.acknowledge_business_days),
            "summary_resolution_due": cal.close_of_business(received, summary) if summary else None,
            "final_response_due": final,
        }

    def ombudsman_deadline(self, final_response_at: datetime) -> datetime:
        """The last day to refer the complaint to the ombudsman."""
        local = final_response_at.astimezone(self.calendar.zone)
        return (local + relativedelta(months=self.ombudsman_months)).astimezone(UTC)

    def local_date(self, moment: datetime) -> str:
        """A date as the customer reads it: "18 February 2027", on the profile's clock."""
        return moment.astimezone(self.calendar.zone).strftime("%-d %B %Y")


PROFILES = {
    profile.name: profile
    for profile in (
        Profile(
            "uk_fca_disp",
            "UK FCA DISP",
            england(),
            acknowledge_business_days=1,
            summary_resolution_business_days=3,
            final_response_weeks=8,
        ),
        Profile(
            "uk_fca_psd",
            "UK FCA DISP, payment services",
            england(),
            acknowledge_business_days=1,
            summary_resolution_business_days=3,
            final_response_business_days=15,
            exceptional_business_days=35,
        ),
    )
}
DEFAULT_PROFILE = "uk_fca_disp"
