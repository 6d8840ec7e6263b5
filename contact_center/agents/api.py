"""`/api/v1/auth`: bearer tokens."""

from flask import g
from flask_smorest import Blueprint

from contact_center.agents.auth import require_role
from contact_center.agents.schemas import TokenRequestSchema, TokenSchema
from contact_center.agents.services import authenticate, issue_token, revoke_token
from contact_center.errors import APIError

blp = Blueprint("auth", __name__, url_prefix="/api/v1/auth", description="API tokens")


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
