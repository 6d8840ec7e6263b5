"""Ticket schemas."""

from marshmallow import Schema, fields, validate

from contact_center.fields import UTCDateTime
from contact_center.tickets.models import STATUSES


class TicketQuerySchema(Schema):
    status = fields.String(load_default=None, validate=validate.OneOf(STATUSES))
    customer_id = fields.Integer(load_default=None, validate=validate.Range(min=1))
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
    body = fields.String(required=True, validate=validate.Length(min=1, max=100_000))


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
    created_at = UTCDateTime()
    updated_at = UTCDateTime()


class TicketDetailSchema(TicketSchema):
    messages = fields.List(fields.Nested(TicketMessageSchema))
