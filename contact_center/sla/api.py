"""`/api/v1/calendars` (business calendars: working windows, holidays, closed and open
dates) and `/api/v1/sla` (policies, a ticket's clocks and log, compliance report)."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa
from flask import g
from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from contact_center.agents.auth import require_role
from contact_center.errors import APIError, Conflict, NotFound
from contact_center.extensions import db
from contact_center.fields import UTCDateTime
from contact_center.sla.calendars import NoBusinessTime
from contact_center.sla.clocks import DEADLINE_METRICS, METRICS
from contact_center.sla.escalations import ACTION_KINDS
from contact_center.sla.models import BusinessCalendar, SlaPolicy
from contact_center.sla.schemas import PlaceChecked, weekly_windows
from contact_center.sla.services import (
    PERIODS,
    compliance,
    events_of,
    schedule_replay,
    ticket_clocks,
)
from contact_center.tickets.models import PRIORITIES, TYPES
from contact_center.tickets.services import get_ticket

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


def _found(model: type[db.Model], record_id: int, what: str):
    record = db.session.get(model, record_id)
    if record is None:
        raise NotFound(f"No such {what}.")
    return record


def _check_name_free(record: db.Model, name: str, what: str) -> None:
    model = type(record)
    taken = db.session.scalar(
        sa.select(model.id).where(model.name == name, model.id != (record.id or 0))
    )
    if taken:
        raise Conflict(f"A {what} with that name exists.", fields={"name": ["Taken."]})


def _calendar(calendar_id: int) -> BusinessCalendar:
    return _found(BusinessCalendar, calendar_id, "calendar")


def _store(record: BusinessCalendar, data: dict) -> BusinessCalendar:
    _check_name_free(record, data["name"], "calendar")
    for key in ("name", "timezone", "windows", "country", "subdivision"):
        setattr(record, key, data[key])
    record.closed_dates = data["closed_dates"]
    record.open_dates = data["open_dates"]
    replay = record.id is not None
    db.session.add(record)
    db.session.commit()
    if replay:
        schedule_replay(record.id)  # the open tickets on this calendar get new deadlines
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


# ---------------------------------------------------------------- SLA policies

policies_blp = Blueprint("sla", __name__, url_prefix="/api/v1/sla", description="SLA policies")
PAUSABLE = ("new", "open", "pending", "on_hold")


class ConditionsSchema(Schema):
    priority = fields.List(fields.String(validate=validate.OneOf(PRIORITIES)))
    type = fields.List(fields.String(validate=validate.OneOf(TYPES)))
    channel = fields.List(fields.String(validate=validate.Length(1, 20)))
    queue_id = fields.List(fields.Integer(strict=True))
    customer_tier = fields.List(fields.String(validate=validate.OneOf(("A", "B", "C"))))
    tags = fields.List(fields.String(validate=validate.Length(1, 50)))


class TargetSchema(Schema):
    minutes = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=10**6))
    business = fields.Boolean(load_default=True)


class ActionSchema(Schema):
    kind = fields.String(required=True, validate=validate.OneOf(ACTION_KINDS))
    emails = fields.List(fields.Email())  # notify
    to = fields.String(validate=validate.OneOf(PRIORITIES))  # priority (default: one step up)
    queue_id = fields.Integer(strict=True)  # reassign
    assignee_id = fields.Integer(strict=True, allow_none=True)  # reassign
    tag = fields.String(validate=validate.Length(1, 50))  # tag
    by = fields.Integer(strict=True, validate=validate.Range(min=1, max=10))  # boost

    @validates_schema
    def complete(self, data, **kwargs):
        if data["kind"] == "tag" and "tag" not in data:
            raise ValidationError("A tag action names the tag.", "tag")
        if data["kind"] == "reassign" and "queue_id" not in data and "assignee_id" not in data:
            raise ValidationError("A reassign action names a queue or an assignee.", "queue_id")


class StepSchema(Schema):
    metric = fields.String(
        load_default="*", validate=validate.OneOf(("*", *METRICS, *DEADLINE_METRICS))
    )
    percent = fields.Integer(strict=True, validate=validate.Range(min=1, max=99))
    after_breach_minutes = fields.Integer(strict=True, validate=validate.Range(min=0, max=10**6))
    actions = fields.List(fields.Nested(ActionSchema), required=True, validate=validate.Length(1))

    @validates_schema
    def one_trigger(self, data, **kwargs):
        if ("percent" in data) == ("after_breach_minutes" in data):
            raise ValidationError("A step has either percent (a warning) or after_breach_minutes.")


class PolicySchema(Schema):
    id = fields.Integer(dump_only=True)
    name = fields.String(required=True, validate=validate.Length(1, 80))
    position = fields.Integer(load_default=0, strict=True)
    active = fields.Boolean(load_default=True)
    conditions = fields.Nested(ConditionsSchema, load_default=dict)
    calendar_id = fields.Integer(load_default=None, allow_none=True, strict=True)
    targets = fields.Dict(
        keys=fields.String(validate=validate.OneOf(PRIORITIES)),
        values=fields.Dict(
            keys=fields.String(validate=validate.OneOf(METRICS)), values=fields.Nested(TargetSchema)
        ),
        required=True,
    )
    pauses = fields.Dict(
        keys=fields.String(validate=validate.OneOf(METRICS)),
        values=fields.List(fields.String(validate=validate.OneOf(PAUSABLE))),
        load_default=dict,
    )
    escalations = fields.List(fields.Nested(StepSchema), load_default=list)
    updated_at = UTCDateTime(dump_only=True)

    @validates_schema
    def business_needs_calendar(self, data, **kwargs):
        business = any(
            t.get("business", True) for by in data.get("targets", {}).values() for t in by.values()
        )
        if business and data.get("calendar_id") is None:
            raise ValidationError("Business-time targets need a calendar.", "calendar_id")


class ClockSchema(Schema):
    metric = fields.String()
    cycle = fields.Integer()
    state = fields.String()
    target_minutes = fields.Integer()
    business_time = fields.Boolean()
    started_at = fields.String()
    due_at = fields.String(allow_none=True)
    fulfilled_at = fields.String(allow_none=True)
    breached_at = fields.String(allow_none=True)
    elapsed_minutes = fields.Float()
    remaining_minutes = fields.Float(allow_none=True)
    paused = fields.Boolean()


class SlaEventSchema(Schema):
    kind = fields.String()
    metric = fields.String(allow_none=True)
    cycle = fields.Integer(allow_none=True)
    at = UTCDateTime()
    details = fields.Dict()


class TicketSlaSchema(Schema):
    ticket_id = fields.Integer()
    policy_id = fields.Integer(allow_none=True)
    next_breach_at = UTCDateTime(allow_none=True)
    clocks = fields.List(fields.Nested(ClockSchema))
    events = fields.List(fields.Nested(SlaEventSchema))


class ReportQuerySchema(Schema):
    start = fields.AwareDateTime(required=True)
    end = fields.AwareDateTime(required=True)
    policy_id = fields.Integer(load_default=None)
    queue_id = fields.Integer(load_default=None)
    period = fields.String(load_default=None, validate=validate.OneOf(PERIODS))

    @validates_schema
    def ordered(self, data, **kwargs):
        if data["end"] <= data["start"]:
            raise ValidationError("end must be after start.", "end")


class ComplianceSchema(Schema):
    period = fields.String(allow_none=True)  # the day, week or month's first day
    policy_id = fields.Integer(allow_none=True)
    policy = fields.String(allow_none=True)
    metric = fields.String()
    queue_id = fields.Integer(allow_none=True)
    achieved = fields.Integer()
    breached = fields.Integer()
    total = fields.Integer()
    achieved_pct = fields.Float(allow_none=True)


def _policy(policy_id: int) -> SlaPolicy:
    return _found(SlaPolicy, policy_id, "SLA policy")


def _store_policy(policy: SlaPolicy, data: dict) -> SlaPolicy:
    _check_name_free(policy, data["name"], "policy")
    if (
        data["calendar_id"] is not None
        and db.session.get(BusinessCalendar, data["calendar_id"]) is None
    ):
        raise APIError(422, "Unknown calendar.", fields={"calendar_id": ["No such calendar."]})
    for key in ("name", "position", "active", "conditions", "calendar_id", "targets", "pauses"):
        setattr(policy, key, data[key])
    policy.escalations = data["escalations"]
    db.session.add(policy)
    db.session.commit()
    schedule_replay()  # which policy applies, and its targets, may change for any open ticket
    return policy


@policies_blp.get("/policies")
@require_role("agent")
@policies_blp.response(200, PolicySchema(many=True))
def list_policies():
    """SLA policies in the order they are tried."""
    return db.session.scalars(sa.select(SlaPolicy).order_by(SlaPolicy.position, SlaPolicy.id)).all()


@policies_blp.post("/policies")
@require_role("admin")
@policies_blp.arguments(PolicySchema)
@policies_blp.response(201, PolicySchema)
def create_policy(data: dict):
    """Add a policy: conditions, targets per priority, pauses, calendar, escalation ladder."""
    return _store_policy(SlaPolicy(), data)


@policies_blp.get("/policies/<int:policy_id>")
@require_role("agent")
@policies_blp.response(200, PolicySchema)
def get_policy(policy_id: int):
    """One policy."""
    return _policy(policy_id)


@policies_blp.put("/policies/<int:policy_id>")
@require_role("admin")
@policies_blp.arguments(PolicySchema)
@policies_blp.response(200, PolicySchema)
def replace_policy(data: dict, policy_id: int):
    """Replace a policy; open tickets are recomputed by a worker."""
    return _store_policy(_policy(policy_id), data)


@policies_blp.delete("/policies/<int:policy_id>")
@require_role("admin")
@policies_blp.response(204)
def delete_policy(policy_id: int):
    """Remove a policy; its open tickets fall to the next matching policy."""
    db.session.delete(_policy(policy_id))
    db.session.commit()
    schedule_replay()


@policies_blp.get("/tickets/<int:ticket_id>")
@require_role("agent")
@policies_blp.response(200, TicketSlaSchema)
def ticket_sla(ticket_id: int):
    """A ticket's clocks (every metric and cycle) and its SLA log."""
    ticket = get_ticket(ticket_id, g.user)
    return {
        "ticket_id": ticket.id,
        "policy_id": ticket.sla_policy_id,
        "next_breach_at": ticket.next_breach_at,
        "clocks": ticket_clocks(ticket),
        "events": events_of(ticket),
    }


@policies_blp.get("/report")
@require_role("supervisor")
@policies_blp.arguments(ReportQuerySchema, location="query")
@policies_blp.response(200, ComplianceSchema(many=True))
def report(args: dict):
    """Achieved and breached clocks per policy, metric and queue (and day, week or month
    with `period`), for clocks that ended in [start, end)."""
    return compliance(
        args["start"], args["end"], args["policy_id"], args["queue_id"], args["period"]
    )
