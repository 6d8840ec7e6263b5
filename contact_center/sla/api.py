"""`/api/v1/calendars`: business calendars (working windows, holidays, closed and open dates)."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa
from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from contact_center.agents.auth import require_role
from contact_center.errors import Conflict, NotFound
from contact_center.extensions import db
from contact_center.fields import UTCDateTime
from contact_center.sla.calendars import NoBusinessTime
from contact_center.sla.models import BusinessCalendar
from contact_center.sla.schemas import PlaceChecked, weekly_windows

blp = Blueprint("calendars", __name__, url_prefix="/api/v1/calendars", description="Calendars")
ISO_DATE = validate.Regexp(r"^\d{4}-\d{2}-\d{2}$", error="Dates are YYYY-MM-DD.")


class CalendarSchema(PlaceChecked):
    id = fields.Integer(dump_only=True)
    name = fields.String(required=True, validate=validate.Length(min=1, max=80))
    timezone = fields.String(required=True)
    windows = weekly_windows()
    country = fields.String(
        load_default=None, allow_none=True, validate=validate.Regexp(r"^[A-Z]{2}$")
    )
    subdivision = fields.String(load_default=None, allow_none=True, validate=validate.Length(1, 10))
    closed_dates = fields.List(fields.String(validate=ISO_DATE), load_default=list)
    open_dates = fields.List(fields.String(validate=ISO_DATE), load_default=list)
    updated_at = UTCDateTime(dump_only=True)

    @validates_schema
    def real_dates(self, data, **kwargs):
        for key in ("closed_dates", "open_dates"):
            for value in data.get(key, []):
                try:
                    date.fromisoformat(value)
                except ValueError:
                    raise ValidationError(f"{value} is not a date.", key) from None


class AddMinutesSchema(Schema):
    start = fields.AwareDateTime(required=True)
    minutes = fields.Integer(required=True, strict=True, validate=validate.Range(min=0, max=10**7))


class DueSchema(Schema):
    due_at = UTCDateTime()
    business_minutes = fields.Integer()


def _calendar(calendar_id: int) -> BusinessCalendar:
    record = db.session.get(BusinessCalendar, calendar_id)
    if record is None:
        raise NotFound("No such calendar.")
    return record


def _store(record: BusinessCalendar, data: dict) -> BusinessCalendar:
    taken = db.session.scalar(
        sa.select(BusinessCalendar.id).where(
            BusinessCalendar.name == data["name"], BusinessCalendar.id != (record.id or 0)
        )
    )
    if taken:
        raise Conflict("A calendar with that name exists.", fields={"name": ["Taken."]})
    for key in ("name", "timezone", "windows", "country", "subdivision"):
        setattr(record, key, data[key])
    record.closed_dates = data["closed_dates"]
    record.open_dates = data["open_dates"]
    db.session.add(record)
    db.session.commit()
    return record


@blp.get("")
@require_role("agent")
@blp.response(200, CalendarSchema(many=True))
def list_calendars():
    """Every business calendar, by name."""
    return db.session.scalars(sa.select(BusinessCalendar).order_by(BusinessCalendar.name)).all()


@blp.post("")
@require_role("admin")
@blp.arguments(CalendarSchema)
@blp.response(201, CalendarSchema)
def create_calendar(data: dict):
    """Add a calendar: time zone, windows per weekday, holidays of a country, own dates."""
    return _store(BusinessCalendar(), data)


@blp.get("/<int:calendar_id>")
@require_role("agent")
@blp.response(200, CalendarSchema)
def get_calendar(calendar_id: int):
    """One calendar."""
    return _calendar(calendar_id)


@blp.put("/<int:calendar_id>")
@require_role("admin")
@blp.arguments(CalendarSchema)
@blp.response(200, CalendarSchema)
def replace_calendar(data: dict, calendar_id: int):
    """Replace a calendar's definition."""
    return _store(_calendar(calendar_id), data)


@blp.post("/<int:calendar_id>/add-minutes")
@require_role("agent")
@blp.arguments(AddMinutesSchema)
@blp.response(200, DueSchema)
def add_minutes(data: dict, calendar_id: int):
    """When `minutes` of working time after `start` fall due on this calendar."""
    try:
        due = _calendar(calendar_id).calendar().add_business_minutes(data["start"], data["minutes"])
    except NoBusinessTime:
        raise Conflict("The calendar has no working time in the next three years.") from None
    return {"due_at": due, "business_minutes": data["minutes"]}
