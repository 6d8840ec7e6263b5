"""Board schemas: the staffing what-if's question and answer; a report's question."""

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from marshmallow import (
    Schema,
    ValidationError,
    fields,
    post_load,
    validate,
    validates,
    validates_schema,
)

from contact_center.board.erlang import MAX_AGENTS
from contact_center.board.reports import MAX_DAYS, Period

# Above this load even 10,000 agents lose half the calls: no staffing question left to ask,
# and the Erlang A sums (whose length grows with the load and the patience) stay short.
MAX_TRAFFIC_ERLANGS = 2 * MAX_AGENTS


def _above(minimum: float, maximum: float) -> validate.Range:
    return validate.Range(min=minimum, max=maximum, min_inclusive=False)


class WhatIfQuerySchema(Schema):
    arrivals = fields.Float(
        required=True,
        validate=validate.Range(min=0, max=1_000_000),
        metadata={"description": "Calls arriving per interval"},
    )
    interval_s = fields.Float(
        load_default=1800.0,
        validate=_above(60, 86400),
        metadata={"description": "Interval length in seconds, over 60 and up to a day"},
    )
    aht_s = fields.Float(
        required=True,
        validate=validate.Range(min=1, max=86400),
        metadata={"description": "Average handle time in seconds (talk, hold and wrap-up)"},
    )
    target_sl = fields.Float(
        load_default=0.8,
        validate=validate.Range(min=0, max=1, min_inclusive=False, max_inclusive=False),
        metadata={"description": "Service-level target, a fraction: 0.8 for 80 %"},
    )
    threshold_s = fields.Float(
        load_default=20.0,
        validate=validate.Range(min=0, max=86400),
        metadata={"description": "Service-level threshold in seconds: the 20 of 80/20"},
    )
    patience_s = fields.Float(
        load_default=None,
        validate=_above(0, 3600),
        metadata={"description": "Callers' mean patience in seconds: Erlang A instead of C"},
    )
    agents_now = fields.Integer(
        load_default=None,
        validate=validate.Range(min=0, max=MAX_AGENTS),
        metadata={"description": "Agents staffed now, to compare with the agents needed"},
    )
    max_occupancy = fields.Float(
        load_default=None,
        validate=_above(0, 1),
        metadata={"description": "Occupancy cap, a fraction: 0.85 for 85 %"},
    )
    target_asa_s = fields.Float(
        load_default=None,
        validate=_above(0, 86400),
        metadata={"description": "Average speed of answer target in seconds"},
    )

    @validates_schema
    def bounded_load(self, data, **kwargs):
        traffic = data["arrivals"] * data["aht_s"] / data["interval_s"]
        if traffic > MAX_TRAFFIC_ERLANGS:
            raise ValidationError(
                f"arrivals x aht_s / interval_s is {traffic:g} erlangs; the calculator takes "
                f"at most {MAX_TRAFFIC_ERLANGS}.",
                "arrivals",
            )


class StaffingPredictionSchema(Schema):
    agents = fields.Integer(required=True)
    stable = fields.Boolean(
        required=True, metadata={"description": "False when Erlang C traffic >= agents"}
    )
    probability_wait = fields.Float(required=True)
    service_level = fields.Float(
        required=True,
        metadata={"description": "Answered within threshold / (answered + abandoned after it)"},
    )
    answered_within = fields.Float(
        required=True, metadata={"description": "Answered within threshold / all calls"}
    )
    asa_s = fields.Float(
        allow_none=True, metadata={"description": "Mean wait of answered calls; null: unbounded"}
    )
    probability_abandon = fields.Float(required=True)
    mean_wait_s = fields.Float(allow_none=True, metadata={"description": "Mean wait of all calls"})
    occupancy = fields.Float(allow_none=True)


class StaffingTargetSchema(Schema):
    label = fields.String(required=True, metadata={"example": "80/20"})
    service_level = fields.Float(required=True)
    threshold_s = fields.Float(required=True)
    asa_s = fields.Float(allow_none=True)
    max_occupancy = fields.Float(allow_none=True)


class StaffingSchema(Schema):
    model = fields.String(required=True, metadata={"description": "erlang_c or erlang_a"})
    traffic_erlangs = fields.Float(required=True)
    target = fields.Nested(StaffingTargetSchema, required=True)
    needed = fields.Nested(StaffingPredictionSchema, required=True)
    now = fields.Nested(StaffingPredictionSchema, allow_none=True)
    extra_agents = fields.Integer(
        allow_none=True, metadata={"description": "Agents needed minus agents now"}
    )
    advice = fields.String(required=True, metadata={"example": "+3 agents needed for 80/20"})
    service_level_formula = fields.String(required=True)


class ReportQuerySchema(Schema):
    """A report's question: local days from..to (inclusive) in a time zone, one queue or all."""

    date_from = fields.Date(
        required=True,
        data_key="from",
        metadata={"description": "First local day, YYYY-MM-DD"},
    )
    date_to = fields.Date(
        required=True,
        data_key="to",
        metadata={"description": "Last local day (inclusive), YYYY-MM-DD"},
    )
    tz = fields.String(
        load_default="UTC",
        validate=validate.Length(max=64),
        metadata={"description": "IANA time zone the days and intervals are in"},
    )
    queue_id = fields.Integer(
        load_default=None,
        validate=validate.Range(min=1),
        metadata={"description": "One queue; all queues when left out"},
    )
    format = fields.String(
        load_default=None,
        validate=validate.OneOf(("json", "csv")),
        metadata={"description": "csv downloads the report (so does Accept: text/csv)"},
    )

    @validates("tz")
    def known_zone(self, value, **kwargs):
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValidationError(f"{value!r} is not a known time zone.") from None

    @validates_schema
    def bounded_range(self, data, **kwargs):
        if data["date_to"] < data["date_from"]:
            raise ValidationError("to must not be before from.", "to")
        days = (data["date_to"] - data["date_from"]).days + 1
        if days > MAX_DAYS:
            raise ValidationError(f"The range is {days} days; at most {MAX_DAYS}.", "to")

    @post_load
    def period(self, data, **kwargs):
        data["period"] = Period(data["date_from"], data["date_to"], ZoneInfo(data["tz"]))
        return data


class ReportSchema(Schema):
    kind = fields.String(required=True)
    date_from = fields.String(required=True, attribute="from", data_key="from")
    date_to = fields.String(required=True, attribute="to", data_key="to")
    tz = fields.String(required=True)
    start = fields.String(required=True, metadata={"description": "The range's start, UTC"})
    end = fields.String(required=True, metadata={"description": "The range's end (exclusive)"})
    queue_id = fields.Integer(allow_none=True)
    columns = fields.List(fields.String(), required=True)
    rows = fields.List(fields.Dict(), required=True)
    totals = fields.List(fields.Dict(), required=True)
    definitions = fields.Dict(
        keys=fields.String(), values=fields.String(), metadata={"description": "The formulas"}
    )


class SlaBoardQuerySchema(Schema):
    queue_id = fields.Integer(
        load_default=None,
        validate=validate.Range(min=1),
        metadata={"description": "One queue; all queues when left out"},
    )
    limit = fields.Integer(
        load_default=100,
        validate=validate.Range(min=1, max=500),
        metadata={"description": "At most this many tickets (and breached tickets) listed"},
    )


class SlaClockSchema(Schema):
    metric = fields.String(required=True)
    cycle = fields.Integer(required=True)
    state = fields.String(required=True, metadata={"description": "running, paused, breached"})
    paused = fields.Boolean(required=True)
    target_minutes = fields.Integer(required=True)
    business_time = fields.Boolean(required=True)
    due_at = fields.String(allow_none=True, metadata={"description": "Null while paused"})
    remaining_s = fields.Integer(
        allow_none=True,
        metadata={
            "description": "Seconds to the due time at computed_at (paused: target time left); "
            "null once breached"
        },
    )
    breached = fields.Boolean(required=True, metadata={"description": "Past its due time"})
    breached_since = fields.String(allow_none=True)


class SlaTicketSchema(Schema):
    id = fields.Integer(required=True)
    number = fields.String(allow_none=True)
    subject = fields.String(required=True)
    status = fields.String(required=True)
    priority = fields.String(required=True)
    type = fields.String(required=True)
    complaint_id = fields.Integer(allow_none=True)
    queue_id = fields.Integer(allow_none=True)
    queue = fields.String(allow_none=True)
    assignee = fields.String(allow_none=True)
    next_breach_at = fields.String(allow_none=True)
    clocks = fields.List(fields.Nested(SlaClockSchema), required=True)
    breached_since = fields.String(metadata={"description": "breached_now only: the first breach"})


class SlaBreachedSchema(Schema):
    count = fields.Integer(required=True, metadata={"description": "Every breached ticket"})
    tickets = fields.List(
        fields.Nested(SlaTicketSchema),
        required=True,
        metadata={"description": "Longest breached first, at most `limit`"},
    )


class SlaComplianceFiguresSchema(Schema):
    met = fields.Integer(required=True)
    breached = fields.Integer(required=True)
    total = fields.Integer(required=True)
    met_pct = fields.Float(allow_none=True, metadata={"description": "met / total x 100"})


class SlaMetricComplianceSchema(SlaComplianceFiguresSchema):
    metric = fields.String(required=True)


class SlaQueueComplianceSchema(SlaComplianceFiguresSchema):
    queue_id = fields.Integer(allow_none=True)
    queue = fields.String(allow_none=True)
    metrics = fields.List(fields.Nested(SlaMetricComplianceSchema), required=True)


class SlaBoardSchema(Schema):
    server_time = fields.String(required=True, metadata={"description": "Now, per request"})
    computed_at = fields.String(
        required=True, metadata={"description": "When the (cached) answer was computed"}
    )
    cache_s = fields.Integer(required=True)
    queue_id = fields.Integer(allow_none=True)
    limit = fields.Integer(required=True)
    tickets = fields.List(
        fields.Nested(SlaTicketSchema),
        required=True,
        metadata={"description": "Open tickets and complaints, soonest next breach first"},
    )
    breached_now = fields.Nested(SlaBreachedSchema, required=True)
    compliance_today = fields.List(
        fields.Nested(SlaQueueComplianceSchema),
        required=True,
        metadata={"description": "Clocks that were met or breached today (UTC), per queue"},
    )
