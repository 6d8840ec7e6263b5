"""Schemas for auth and agents."""

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from contact_center.agents.models import DEFAULT_CAPACITY, PRESENCES, ROLES
from contact_center.fields import UTCDateTime
from contact_center.routing.schemas import SKILL_NAME
from contact_center.softphone.schemas import EndpointUpdateSchema
from contact_center.softphone.services import endpoint_kind


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


class ForceStatusSchema(Schema):
    status = fields.String(required=True, validate=validate.OneOf(PRESENCES))
    reason = fields.String(validate=validate.Length(max=200), allow_none=True)


# ---------------------------------------------------------------- user administration

USERNAME = validate.Regexp(
    r"^[A-Za-z0-9_.@-]{2,80}$", error="2-80 letters, digits or _.@- (no spaces)."
)
_capacity = fields.Dict(
    keys=fields.String(validate=validate.OneOf(tuple(DEFAULT_CAPACITY))),
    values=fields.Integer(strict=True, validate=validate.Range(min=0, max=20)),
    metadata={"description": "Interactions at once per channel, e.g. {voice: 1, email: 3}"},
)
_password = fields.String(
    required=True,
    load_only=True,
    validate=validate.Length(max=200),
    metadata={"description": "At least 10 characters, not the username"},
)


def _skill_levels(**kwargs) -> fields.Dict:
    """{skill: level 1-5}, named as queues name their required skills."""
    return fields.Dict(
        keys=fields.String(validate=SKILL_NAME),
        values=fields.Integer(strict=True, validate=validate.Range(min=1, max=5)),
        metadata={"description": "The full set of skills {name: level 1-5}"},
        **kwargs,
    )


_team = fields.String(allow_none=True, validate=validate.Length(min=1, max=80))


class UserQuerySchema(Schema):
    role = fields.String(load_default=None, validate=validate.OneOf(ROLES))
    team = fields.String(load_default=None, validate=validate.Length(min=1, max=80))
    active = fields.Boolean(load_default=None, allow_none=True)


class UserCreateSchema(Schema):
    username = fields.String(required=True, validate=USERNAME)
    display_name = fields.String(load_default=None, validate=validate.Length(min=1, max=120))
    password = _password
    role = fields.String(load_default="agent", validate=validate.OneOf(ROLES))
    team = _team
    skills = _skill_levels(load_default=dict)
    capacity = _capacity
    voice_endpoint = fields.Nested(EndpointUpdateSchema, load_default=None, allow_none=True)


class UserUpdateSchema(Schema):
    display_name = fields.String(validate=validate.Length(min=1, max=120))
    role = fields.String(validate=validate.OneOf(ROLES))
    team = _team
    skills = _skill_levels()
    capacity = _capacity
    voice_endpoint = fields.Nested(EndpointUpdateSchema)

    @validates_schema
    def not_empty(self, data, **kwargs):
        if not data:
            raise ValidationError("Nothing to change.")


class PasswordSchema(Schema):
    password = _password


class VoiceEndpointSchema(Schema):
    kind = fields.String()
    address = fields.String(allow_none=True)


class UserSchema(Schema):
    id = fields.Integer()
    username = fields.String()
    display_name = fields.String()
    role = fields.String()
    team = fields.String(allow_none=True)
    skills = fields.Function(lambda user: user.skill_levels())
    capacity = fields.Dict(keys=fields.String(), values=fields.Integer())
    voice_endpoint = fields.Function(
        lambda user: {
            "kind": endpoint_kind(user.call_address()),
            "address": user.voice_endpoint,
        },
        metadata={"description": "{kind: browser|phone|sip, address (null = the browser)}"},
    )
    active = fields.Boolean(attribute="is_active_user")
    status = fields.String()
    presence = fields.String()
    created_at = UTCDateTime()
