"""`/api/v1/auth`: bearer tokens; `/api/v1/agents`: the agent directory."""

from flask import g
from flask_smorest import Blueprint

from contact_center.agents.auth import require_role
from contact_center.agents.schemas import (
    AgentDirectoryQuerySchema,
    AgentEntrySchema,
    TokenRequestSchema,
    TokenSchema,
)
from contact_center.agents.services import authenticate, directory, issue_token, revoke_token
from contact_center.errors import APIError

blp = Blueprint("auth", __name__, url_prefix="/api/v1/auth", description="API tokens")
agents_blp = Blueprint("agents", __name__, url_prefix="/api/v1/agents", description="Agents")


@blp.post("/tokens")
@blp.arguments(TokenRequestSchema)
@blp.response(201, TokenSchema)
def create_token(credentials: dict):
    """Exchange a username and password for a bearer token."""
    user = authenticate(credentials["username"], credentials["password"])
    if user is None:
        raise APIError(401, "Unknown username or wrong password.")
    token, record = issue_token(user)
    return {"token": token, "expires_at": record.expires_at}


@blp.delete("/tokens/current")
@blp.response(204)
@require_role("agent")
def revoke_current_token():
    """Revoke the bearer token this request carries."""
    record = getattr(g, "api_token", None)
    if record is None:
        raise APIError(401, "Only a bearer token can be revoked.")
    revoke_token(record)


@agents_blp.get("")
@require_role("agent")
@agents_blp.arguments(AgentDirectoryQuerySchema, location="query")
@agents_blp.response(200, AgentEntrySchema(many=True))
def list_agents(args: dict):
    """Active colleagues who take calls, with their status (to pick a transfer target)."""
    return directory(args["q"], args["available"])
