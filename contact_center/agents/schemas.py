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
