"""Complaint schemas."""

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from contact_center.complaints.models import CHANNELS, OUTCOMES, SEVERITIES, STAGES
from contact_center.complaints.profiles import PROFILES
from contact_center.complaints.services import deadlines
from contact_center.customers.schemas import DeadlineSchema
from contact_center.fields import UTCDateTime

_category = fields.String(validate=validate.Length(min=1, max=80))


class ComplaintCreateSchema(Schema):
    ticket_id = fields.Integer(strict=True)
    customer_id = fields.Integer(strict=True)
    subject = fields.String(validate=validate.Length(min=1, max=300))
    category = fields.String(required=True, validate=validate.Length(min=1, max=80))
    severity = fields.String(load_default="medium", validate=validate.OneOf(SEVERITIES))
    channel_received = fields.String(required=True, validate=validate.OneOf(CHANNELS))
    profile = fields.String(validate=validate.OneOf(tuple(PROFILES)))
    received_at = fields.AwareDateTime(default_timezone=None)


class ComplaintUpdateSchema(Schema):
    stage = fields.String(validate=validate.OneOf(STAGES))
    category = _category
    severity = fields.String(validate=validate.OneOf(SEVERITIES))
    root_cause = fields.String(validate=validate.Length(max=10_000))
    remedy = fields.String(validate=validate.Length(max=10_000))
    compensation_amount = fields.Decimal(
        places=2,
        validate=validate.Range(min=0, max=1_000_000),
        as_string=True,
        # apispec would write the bounds as strings; OpenAPI wants numbers.
        metadata={"minimum": 0, "maximum": 1_000_000},
    )
    outcome = fields.String(validate=validate.OneOf(OUTCOMES))
    exceptional = fields.Boolean()

    @validates_schema
    def not_empty(self, data, **kwargs):
        if not data:
            raise ValidationError("Give at least one field to change.")


class FollowUpSchema(Schema):
    satisfaction = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=5))


class RegisterQuerySchema(Schema):
    stage = fields.String(validate=validate.OneOf(STAGES))
    category = _category
    outcome = fields.String(validate=validate.OneOf(OUTCOMES))
    severity = fields.String(validate=validate.OneOf(SEVERITIES))
    profile = fields.String(validate=validate.OneOf(tuple(PROFILES)))
    received_from = fields.AwareDateTime()
    received_to = fields.AwareDateTime()
    overdue = fields.Boolean()
    format = fields.String(load_default="json", validate=validate.OneOf(("json", "csv")))


class ComplaintSchema(Schema):
    id = fields.Integer()
    ticket_id = fields.Integer()
    number = fields.Function(lambda c: c.ticket.number)
    profile = fields.String()
    category = fields.String()
    severity = fields.String()
    channel_received = fields.String()
    stage = fields.String()
    received_at = UTCDateTime()
    exceptional = fields.Boolean()
    acknowledged_at = UTCDateTime(allow_none=True)
    final_response_at = UTCDateTime(allow_none=True)
    root_cause = fields.String(allow_none=True)
    remedy = fields.String(allow_none=True)
    compensation_amount = fields.Decimal(places=2, as_string=True, allow_none=True)
    outcome = fields.String(allow_none=True)
    closed_at = UTCDateTime(allow_none=True)
    follow_up_due = UTCDateTime(allow_none=True)
    follow_up_done_at = UTCDateTime(allow_none=True)
    follow_up_satisfaction = fields.Integer(allow_none=True)
    deadlines = fields.Method("_deadlines", metadata={"type": "array"})

    def _deadlines(self, complaint):
        return DeadlineSchema(many=True).dump(deadlines(complaint))


class LetterSchema(Schema):
    body = fields.String()


class ComplaintSettingsSchema(Schema):
    profile = fields.String(required=True, validate=validate.OneOf(tuple(PROFILES)))
    final_response_template = fields.String(
        required=True, validate=validate.Length(min=1, max=20_000)
    )
