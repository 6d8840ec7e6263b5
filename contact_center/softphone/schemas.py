"""Schemas of the softphone API: the agent's voice endpoint and Voice SDK tokens."""

from marshmallow import Schema, fields, validate

from contact_center.fields import UTCDateTime
from contact_center.softphone.services import ENDPOINT_KINDS, MAX_ENDPOINT_LENGTH


class EndpointSchema(Schema):
    agent_id = fields.Integer(required=True)
    kind = fields.String(required=True, metadata={"enum": list(ENDPOINT_KINDS)})
    address = fields.String(
        required=True,
        metadata={"description": "client:<identity>, an E.164 number or a sip: URI"},
    )
    masked_address = fields.String(
        required=True, metadata={"description": "The address shortened for display"}
    )
    identity = fields.String(
        allow_none=True,
        metadata={"description": "The Twilio Client identity (browser only)"},
    )
    softphone_configured = fields.Boolean(
        required=True, metadata={"description": "Whether Voice SDK tokens can be issued"}
    )


class EndpointUpdateSchema(Schema):
    kind = fields.String(required=True, validate=validate.OneOf(ENDPOINT_KINDS))
    address = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Length(min=1, max=MAX_ENDPOINT_LENGTH),
        metadata={
            "description": "phone: a number (E.164, or national for PHONE_DEFAULT_REGION); "
            "sip: sip:user@host[:port][;transport=tls]; browser: none"
        },
    )


class VoiceTokenRequestSchema(Schema):
    """No fields: the token is for the signed-in agent's own identity, nobody else's."""


class VoiceTokenSchema(Schema):
    token = fields.String(required=True, metadata={"description": "A Twilio access token (JWT)"})
    identity = fields.String(required=True)
    expires_at = UTCDateTime(required=True)
    ttl_s = fields.Integer(required=True)
