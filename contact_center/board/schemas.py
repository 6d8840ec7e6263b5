"""Board schemas: the staffing what-if's question and answer."""

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from contact_center.board.erlang import MAX_AGENTS

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
