"""Schemas for auth and agents."""

from marshmallow import Schema, fields, validate

from contact_center.fields import UTCDateTime


class TokenRequestSchema(Schema):
    username = fields.String(required=True, validate=validate.Length(min=1, max=80))
    password = fields.String(
        required=True, load_only=True, validate=validate.Length(min=1, max=200)
    )


class TokenSchema(Schema):
    token = fields.String(required=True)
    expires_at = UTCDateTime(required=True)


class AgentDirectoryQuerySchema(Schema):
    q = fields.String(load_default=None, validate=validate.Length(min=1, max=80))
    available = fields.Boolean(
        load_default=False, metadata={"description": "Only agents free to take a call now"}
    )


class AgentEntrySchema(Schema):
    id = fields.Integer()
    username = fields.String()
    display_name = fields.String()
    team = fields.String(allow_none=True)
    role = fields.String()
    status = fields.String()
    presence = fields.String()
