"""`/api/v1/auth`: bearer tokens; `/api/v1/agents`: the agent directory; `/api/v1/users`:
user administration (supervisors see and tune agents, admins manage everyone)."""

from flask import g
from flask_smorest import Blueprint

from contact_center.agents import services
from contact_center.agents.auth import require_role
from contact_center.agents.schemas import (
    AgentDirectoryQuerySchema,
    AgentEntrySchema,
    ForceStatusSchema,
    PasswordSchema,
    TokenRequestSchema,
    TokenSchema,
    UserCreateSchema,
    UserQuerySchema,
    UserSchema,
    UserUpdateSchema,
)
from contact_center.agents.services import directory, issue_token, revoke_token
from contact_center.agents.signin import login_rate_limit, sign_in
from contact_center.errors import APIError
from contact_center.extensions import limiter

blp = Blueprint("auth", __name__, url_prefix="/api/v1/auth", description="API tokens")
agents_blp = Blueprint("agents", __name__, url_prefix="/api/v1/agents", description="Agents")
users_blp = Blueprint(
    "users", __name__, url_prefix="/api/v1/users", description="User administration"
)


@blp.post("/tokens")
@limiter.shared_limit(login_rate_limit, scope="password-sign-in")
@blp.arguments(TokenRequestSchema)
@blp.response(201, TokenSchema)
def create_token(credentials: dict):
    """Exchange a username and password for a bearer token (rate limited per address; an
    account locks after repeated failures: 429 with Retry-After)."""
    user = sign_in(credentials["username"], credentials["password"], via="api")
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


@agents_blp.post("/<int:agent_id>/status")
@require_role("supervisor")
@agents_blp.arguments(ForceStatusSchema)
@agents_blp.response(200, AgentEntrySchema)
def force_status(data: dict, agent_id: int):
    """Set an agent available, away (with a reason) or offline from the board (audited)."""
    return services.force_status(
        g.user, services.get_user(agent_id), data["status"], data.get("reason")
    )


@agents_blp.post("/<int:agent_id>/sign-out")
@require_role("supervisor")
@agents_blp.response(200, AgentEntrySchema)
def sign_out_agent(agent_id: int):
    """Sign an agent out everywhere and set them offline (audited)."""
    return services.sign_out_agent(g.user, services.get_user(agent_id))


@users_blp.get("")
@require_role("supervisor")
@users_blp.arguments(UserQuerySchema, location="query")
@users_blp.response(200, UserSchema(many=True))
def list_users(args: dict):
    """Users with their role, team, skills, capacity and voice endpoint (supervisors)."""
    return services.list_users(args["role"], args["team"], args["active"])


@users_blp.post("")
@require_role("admin")
@users_blp.arguments(UserCreateSchema)
@users_blp.response(201, UserSchema)
def create_user(data: dict):
    """Create a user (admins). The password needs 10 characters and is not the username."""
    return services.admin_create_user(g.user, data)


@users_blp.get("/<int:user_id>")
@require_role("supervisor")
@users_blp.response(200, UserSchema)
def get_user(user_id: int):
    """One user (supervisors)."""
    return services.get_user(user_id)


@users_blp.patch("/<int:user_id>")
@require_role("supervisor")
@users_blp.arguments(UserUpdateSchema)
@users_blp.response(200, UserSchema)
def update_user(data: dict, user_id: int):
    """Change a user: admins anything (not their own role), supervisors the team, skills and
    capacity of agents. Skills are the full set: a skill left out is removed."""
    return services.update_user(g.user, services.get_user(user_id), data)


@users_blp.post("/<int:user_id>/deactivate")
@require_role("admin")
@users_blp.response(200, UserSchema)
def deactivate_user(user_id: int):
    """Stop a user signing in: their tokens and sessions end at once (admins; not yourself)."""
    return services.deactivate_user(g.user, services.get_user(user_id))


@users_blp.post("/<int:user_id>/reactivate")
@require_role("admin")
@users_blp.response(200, UserSchema)
def reactivate_user(user_id: int):
    """Let a deactivated user sign in again (admins)."""
    return services.reactivate_user(g.user, services.get_user(user_id))


@users_blp.post("/<int:user_id>/password")
@require_role("admin")
@users_blp.arguments(PasswordSchema)
@users_blp.response(204)
def reset_password(data: dict, user_id: int):
    """Set a user's password (admins); their tokens and sessions end unless it is your own."""
    services.reset_password(g.user, services.get_user(user_id), data["password"])
