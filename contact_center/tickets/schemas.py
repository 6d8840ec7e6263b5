"""Ticket schemas."""

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from contact_center.fields import UTCDateTime
from contact_center.tickets.models import PRIORITIES, STATUSES, TYPES
from contact_center.tickets.services import SLA_STATES, linked_ids

_tags = fields.List(
    fields.String(validate=validate.Regexp(r"^[a-z0-9_:-]{1,40}$", error="Tags: a-z 0-9 _ : -")),
    validate=validate.Length(max=20),
)
_custom = fields.Dict(keys=fields.String(validate=validate.Length(min=1, max=60)))


class TicketQuerySchema(Schema):
    q = fields.String(
        load_default=None,
        validate=validate.Length(min=1, max=200),
        metadata={"description": "A ticket number, or words in the subject"},
    )
    status = fields.String(
        load_default=None,
        validate=validate.OneOf((*STATUSES, "unsolved")),
        metadata={"description": "A status, or unsolved (new, open, pending or on hold)"},
    )
    customer_id = fields.Integer(load_default=None, validate=validate.Range(min=1))
    queue_id = fields.Integer(load_default=None, validate=validate.Range(min=1))
    assignee_id = fields.Integer(load_default=None, validate=validate.Range(min=1))
    sla = fields.String(
        load_default=None,
        validate=validate.OneOf(SLA_STATES),
        metadata={
            "description": "breached (a deadline has passed), due_soon (within an hour), "
            "on_track, or none (no running clock)"
        },
    )
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0))


class AttachmentSchema(Schema):
    id = fields.Integer()
    filename = fields.String()
    content_type = fields.String()
    size = fields.Integer()


class TicketMessageSchema(Schema):
    id = fields.Integer()
    kind = fields.String()
    body = fields.String()
    body_original = fields.String(allow_none=True)
    author_id = fields.Integer(allow_none=True)
    interaction_id = fields.Integer(allow_none=True)
    recording_url = fields.String(allow_none=True)
    created_at = UTCDateTime()
    subject = fields.String(allow_none=True)
    from_address = fields.String(allow_none=True)
    to_address = fields.String(allow_none=True)
    message_id = fields.String(allow_none=True)
    delivery_status = fields.String(allow_none=True)
    delivery_error = fields.String(allow_none=True)
    sent_at = UTCDateTime(allow_none=True)
    attachments = fields.List(fields.Nested(AttachmentSchema))


class ReplySchema(Schema):
    body = fields.String(validate=validate.Length(min=1, max=100_000))
    canned_response_id = fields.Integer(strict=True)

    @validates_schema
    def body_or_canned(self, data, **kwargs):
        if ("body" in data) == ("canned_response_id" in data):
            raise ValidationError("Give either body or canned_response_id.")


class TicketCreateSchema(Schema):
    subject = fields.String(required=True, validate=validate.Length(min=1, max=300))
    customer_id = fields.Integer(load_default=None, validate=validate.Range(min=1))
    channel = fields.String(
        load_default="phone", validate=validate.OneOf(("phone", "voice", "email", "web"))
    )
    type = fields.String(load_default="question", validate=validate.OneOf(TYPES))
    priority = fields.String(load_default="normal", validate=validate.OneOf(PRIORITIES))
    queue_id = fields.Integer(load_default=None, validate=validate.Range(min=1))
    assignee_id = fields.Integer(load_default=None, validate=validate.Range(min=1))
    tags = _tags
    custom_fields = _custom
    note = fields.String(validate=validate.Length(min=1, max=100_000))


class TicketUpdateSchema(Schema):
    subject = fields.String(validate=validate.Length(min=1, max=300))
    status = fields.String(validate=validate.OneOf(STATUSES))
    type = fields.String(validate=validate.OneOf(TYPES))
    priority = fields.String(validate=validate.OneOf(PRIORITIES))
    queue_id = fields.Integer(allow_none=True, validate=validate.Range(min=1))
    assignee_id = fields.Integer(allow_none=True, validate=validate.Range(min=1))
    tags = _tags
    custom_fields = _custom

    @validates_schema
    def not_empty(self, data, **kwargs):
        if not data:
            raise ValidationError("Give at least one field to change.")


class TicketNoteSchema(Schema):
    body = fields.String(required=True, validate=validate.Length(min=1, max=100_000))


class AttachCallSchema(Schema):
    interaction_id = fields.Integer(required=True, strict=True)


class MergeSchema(Schema):
    into_ticket_id = fields.Integer(required=True, strict=True)


class LinkSchema(Schema):
    ticket_id = fields.Integer(required=True, strict=True)


class AuditEventSchema(Schema):
    id = fields.Integer()
    at = UTCDateTime()
    actor_id = fields.Integer(allow_none=True)
    action = fields.String()
    before = fields.Dict(allow_none=True)
    after = fields.Dict(allow_none=True)
    source = fields.String(allow_none=True)


class CustomFieldSchema(Schema):
    kind = fields.String(
        required=True, validate=validate.OneOf(("text", "number", "boolean", "choice"))
    )
    choices = fields.List(fields.String(validate=validate.Length(min=1, max=80)))
    required = fields.Boolean(load_default=False)

    @validates_schema
    def choices_for_choice(self, data, **kwargs):
        if data.get("kind") == "choice" and not data.get("choices"):
            raise ValidationError("A choice field lists its choices.", "choices")


class TicketSettingsSchema(Schema):
    reopen_window_days = fields.Integer(
        required=True, strict=True, validate=validate.Range(min=0, max=365)
    )
    custom_fields = fields.Dict(
        keys=fields.String(validate=validate.OneOf(TYPES)),
        values=fields.Dict(
            keys=fields.String(validate=validate.Regexp(r"^[a-z][a-z0-9_]{0,59}$")),
            values=fields.Nested(CustomFieldSchema),
        ),
        load_default=dict,
    )


class CannedResponseSchema(Schema):
    id = fields.Integer(dump_only=True)
    name = fields.String(required=True, validate=validate.Length(min=1, max=120))
    body = fields.String(required=True, validate=validate.Length(min=1, max=20_000))
    created_at = UTCDateTime(dump_only=True)


class RenderedSchema(Schema):
    body = fields.String()


class TicketSchema(Schema):
    id = fields.Integer()
    number = fields.String()
    subject = fields.String()
    status = fields.String()
    priority = fields.String()
    type = fields.String()
    channel = fields.String()
    customer_id = fields.Integer(allow_none=True)
    queue_id = fields.Integer(allow_none=True)
    assignee_id = fields.Integer(allow_none=True)
    tags = fields.List(fields.String())
    custom_fields = fields.Dict()
    merged_into_id = fields.Integer(allow_none=True)
    created_at = UTCDateTime()
    updated_at = UTCDateTime()
    solved_at = UTCDateTime(allow_none=True)
    closed_at = UTCDateTime(allow_none=True)
    sla_policy_id = fields.Integer(allow_none=True)
    # The nearest deadline not yet met (possibly past: overdue).
    next_breach_at = UTCDateTime(allow_none=True)


class TicketDetailSchema(TicketSchema):
    messages = fields.List(fields.Nested(TicketMessageSchema))
    linked_ticket_ids = fields.Method("_linked_ids", metadata={"type": "array"})
    # Every SLA clock: due time, remaining or overdue time, paused or not.
    sla = fields.Method("_sla", metadata={"type": "array"})

    def _sla(self, ticket) -> list[dict]:
        from contact_center.sla.services import ticket_clocks

        return ticket_clocks(ticket)

    def _linked_ids(self, ticket) -> list[int]:
        return linked_ids(ticket)
