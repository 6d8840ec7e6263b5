"""`/api/v1/agents/.../endpoint` and `/api/v1/agents/me/voice-token`: the softphone."""

from flask import g
from flask_smorest import Blueprint

from contact_center.agents.auth import require_role
from contact_center.agents.models import User
from contact_center.errors import NotFound
from contact_center.extensions import ErrorSchema, db
from contact_center.softphone import services
from contact_center.softphone.schemas import (
    EndpointSchema,
    EndpointUpdateSchema,
    VoiceTokenRequestSchema,
    VoiceTokenSchema,
)

blp = Blueprint(
    "softphone",
    __name__,
    url_prefix="/api/v1/agents",
    description="Softphone: where an agent's calls ring, and Voice SDK access tokens",
)
NO_STORE = {"Cache-Control": "no-store"}


def _agent(agent_id: int) -> User:
    user = db.session.get(User, agent_id)
    if user is None:
        raise NotFound("No such agent.")
    return user


@blp.get("/me/endpoint")
@require_role("agent")
@blp.response(200, EndpointSchema)
def my_endpoint():
    """Where my calls ring: the browser (softphone), a phone number or a SIP address."""
    return services.describe_endpoint(g.user)


@blp.patch("/me/endpoint")
@require_role("agent")
@blp.arguments(EndpointUpdateSchema)
@blp.response(200, EndpointSchema)
def set_my_endpoint(data: dict):
    """Choose where my calls ring: {"kind": "browser"}, {"kind": "phone", "address": ...}
    or {"kind": "sip", "address": "sip:me@pbx.example.com"}. Invalid: 422, nothing changed."""
    user = services.set_endpoint(g.user, data["kind"], data["address"], g.user)
    return services.describe_endpoint(user)


@blp.get("/<int:agent_id>/endpoint")
@require_role("supervisor")
@blp.response(200, EndpointSchema)
def agent_endpoint(agent_id: int):
    """Where an agent's calls ring (supervisors)."""
    return services.describe_endpoint(_agent(agent_id))


@blp.patch("/<int:agent_id>/endpoint")
@require_role("supervisor")
@blp.arguments(EndpointUpdateSchema)
@blp.response(200, EndpointSchema)
def set_agent_endpoint(data: dict, agent_id: int):
    """Choose where an agent's calls ring (supervisors); audited with who did it."""
    user = services.set_endpoint(_agent(agent_id), data["kind"], data["address"], g.user)
    return services.describe_endpoint(user)


@blp.post("/me/voice-token")
@require_role("agent")
@blp.arguments(VoiceTokenRequestSchema)
@blp.response(200, VoiceTokenSchema)
@blp.alt_response(409, schema=ErrorSchema, description="My calls ring at a phone or SIP address")
@blp.alt_response(503, schema=ErrorSchema, description="The softphone is not configured")
def my_voice_token(data: dict):
    """A short-lived Twilio Voice SDK access token for my own client identity (never
    another's): incoming calls allowed, outgoing through TWILIO_TWIML_APP_SID when set."""
    voice = services.issue_voice_token(g.user)
    body = {
        "token": voice.token,
        "identity": voice.identity,
        "expires_at": voice.expires_at,
        "ttl_s": voice.ttl_s,
    }
    return body, NO_STORE
