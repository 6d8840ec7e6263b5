"""Routing schemas: queues, interactions, events."""

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from contact_center.routing.models import CHANNELS, STRATEGIES

SKILL_NAME = validate.Regexp(
    r"^[A-Za-z0-9_.:-]{1,80}$", error="Skill names use letters, digits, _.:-"
)
_skills = fields.Dict(
    keys=fields.String(validate=SKILL_NAME),
    values=fields.Integer(strict=True, validate=validate.Range(min=1, max=5)),
    load_default=dict,
)


class OverflowStepSchema(Schema):
    after_s = fields.Integer(required=True, strict=True, validate=validate.Range(min=0, max=86400))
    relax = fields.Dict(
        keys=fields.String(validate=SKILL_NAME),
        values=fields.Integer(strict=True, validate=validate.Range(min=0, max=5)),
    )
    add_teams = fields.List(fields.String(validate=validate.Length(min=1, max=80)))
    queue = fields.String(validate=validate.Length(min=1, max=80))

    @validates_schema
    def one_action(self, data, **kwargs):
        actions = [key for key in ("relax", "add_teams", "queue") if key in data]
        if len(actions) != 1:
            raise ValidationError("A step does exactly one of: relax, add_teams, queue.")


class QueueCreateSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=80))
    channels = fields.List(
        fields.String(validate=validate.OneOf(CHANNELS)),
        load_default=lambda: ["voice"],
        validate=validate.Length(min=1),
    )
    required_skills = _skills
    ordering = fields.String(load_default="fifo", validate=validate.OneOf(("fifo", "deadline")))
    strategy = fields.String(load_default="longest_idle", validate=validate.OneOf(STRATEGIES))
    weight = fields.Integer(load_default=0, strict=True, validate=validate.Range(min=-100, max=100))
    teams = fields.List(fields.String(validate=validate.Length(min=1, max=80)), load_default=list)
    restricted = fields.Boolean(
        load_default=False,
        metadata={
            "description": "Agents outside its teams cannot read its interactions, tickets "
            "or complaints (supervisors and admins can)"
        },
    )
    overflow_steps = fields.List(fields.Nested(OverflowStepSchema), load_default=list)
    allow_during_voice = fields.Boolean(load_default=False)
    max_missed_offers = fields.Integer(
        load_default=2, strict=True, validate=validate.Range(min=0, max=100)
    )
    wrapup_s = fields.Integer(load_default=0, strict=True, validate=validate.Range(min=0, max=3600))
    service_level_threshold_s = fields.Integer(
        load_default=20, strict=True, validate=validate.Range(min=1, max=86400)
    )
    offer_timeout_s = fields.Integer(
        load_default=15, strict=True, validate=validate.Range(min=3, max=600)
    )
    record_calls = fields.Boolean(load_default=False)
    post_call_survey = fields.Boolean(load_default=False)
    recording_consent = fields.String(
        load_default=None, allow_none=True, validate=validate.Length(min=1, max=500)
    )
    service_level_target = fields.Float(
        load_default=0.8,
        validate=validate.Range(min=0.01, max=1.0),
        metadata={"description": "Share answered within the threshold, e.g. 0.8 for 80/20"},
    )


class QueueUpdateSchema(QueueCreateSchema):
    """Any of the create fields, validated alike; those not given stay as they are."""

    def __init__(self, **kwargs):
        # Partial at the top level only (partial=True would also let steps lose `after_s`).
        kwargs.setdefault("partial", tuple(QueueCreateSchema._declared_fields))
        super().__init__(**kwargs)


class QueueSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    channels = fields.List(fields.String())
    required_skills = fields.Dict(keys=fields.String(), values=fields.Integer())
    ordering = fields.String()
    strategy = fields.String()
    weight = fields.Integer()
    teams = fields.List(fields.String())
    restricted = fields.Boolean()
    overflow_steps = fields.List(fields.Dict())
    allow_during_voice = fields.Boolean()
    max_missed_offers = fields.Integer()
    wrapup_s = fields.Integer()
    service_level_threshold_s = fields.Integer()
    service_level_target = fields.Float()
    offer_timeout_s = fields.Integer()
    record_calls = fields.Boolean()
    post_call_survey = fields.Boolean()
    recording_consent = fields.String(allow_none=True)
    is_default = fields.Boolean()


class EstimateSchema(Schema):
    queue_id = fields.Integer()
    waiting = fields.Integer()
    position = fields.Integer()
    agents_staffed = fields.Integer()
    handle_time_s = fields.Float()
    estimated_wait_s = fields.Integer(metadata={"description": "-1 when no agent is staffed"})


class QueueWithStatsSchema(QueueSchema):
    estimate = fields.Nested(EstimateSchema)


class ReservationSchema(Schema):
    id = fields.String()
    agent_id = fields.Integer()
    agent = fields.String(allow_none=True)
    status = fields.String()
    created_at = fields.String()
    expires_at = fields.String()
    responded_at = fields.String(allow_none=True)
    reason = fields.String(allow_none=True)
    decision = fields.Dict(metadata={"description": "Why this agent: step, candidates, scores"})


class InteractionUpdateSchema(Schema):
    customer_id = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))


class InteractionSchema(Schema):
    id = fields.Integer()
    channel = fields.String()
    direction = fields.String()
    status = fields.String()
    queue = fields.String(allow_none=True)
    queue_id = fields.Integer(allow_none=True)
    customer_id = fields.Integer(allow_none=True)
    agent_id = fields.Integer(allow_none=True)
    priority = fields.Integer()
    required_skills = fields.Dict()
    waited_s = fields.Integer()
    created_at = fields.String()
    enqueued_at = fields.String(allow_none=True)
    offered_at = fields.String(allow_none=True)
    answered_at = fields.String(allow_none=True)
    ended_at = fields.String(allow_none=True)
    ringing_at = fields.String(allow_none=True)
    connected_at = fields.String(allow_none=True)
    agent_ringing_at = fields.String(allow_none=True)
    agent_connected_at = fields.String(allow_none=True)
    wrapup_until = fields.String(allow_none=True)
    outcome = fields.String(allow_none=True)
    disposition = fields.String(allow_none=True)
    duration_s = fields.Integer(allow_none=True)
    on_hold = fields.Boolean()
    hold_s = fields.Integer()
    recording_paused = fields.Boolean()
    ticket_id = fields.Integer(allow_none=True)
    consult_agent_id = fields.Integer(
        allow_none=True, metadata={"description": "The agent being consulted (warm transfer)"}
    )
    reservations = fields.List(fields.Nested(ReservationSchema))


class EventsQuerySchema(Schema):
    count = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))
