"""`/api/v1/ivr/flows`: list, read, replace (as a new version) and activate IVR flows."""

from __future__ import annotations

import sqlalchemy as sa
from flask import g
from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from contact_center.agents.auth import require_role
from contact_center.agents.models import User
from contact_center.errors import APIError, NotFound
from contact_center.extensions import db
from contact_center.fields import StrictBoolean, UTCDateTime
from contact_center.ivr import control, flows
from contact_center.ivr.models import IvrFlow
from contact_center.routing import services as routing
from contact_center.routing.models import Interaction, Queue
from contact_center.routing.schemas import InteractionSchema
from contact_center.system_settings import put_setting

blp = Blueprint("ivr", __name__, url_prefix="/api/v1/ivr", description="IVR flows")
calls_blp = Blueprint(
    "calls", __name__, url_prefix="/api/v1/interactions", description="Call control"
)


class HoldSchema(Schema):
    hold = StrictBoolean(required=True)


class TransferSchema(Schema):
    queue_id = fields.Integer(strict=True, metadata={"description": "Transfer to this queue"})
    agent_id = fields.Integer(
        strict=True,
        metadata={"description": "Transfer to this agent (one offer, then the call's queue)"},
    )

    @validates_schema
    def one_target(self, data: dict, **kwargs) -> None:
        if len([key for key in ("queue_id", "agent_id") if data.get(key) is not None]) != 1:
            raise ValidationError("Give exactly one of queue_id or agent_id.", "_schema")


class ConsultSchema(Schema):
    agent_id = fields.Integer(required=True, strict=True)


class MonitorSchema(Schema):
    mode = fields.String(required=True, validate=validate.OneOf(control.MONITOR_MODES))


class RecordingSchema(Schema):
    paused = StrictBoolean(required=True)


class MonitorResultSchema(Schema):
    call_sid = fields.String()
    mode = fields.String()


def _controllable(interaction_id: int) -> Interaction:
    """The interaction, if the caller holds it as its agent or is a supervisor."""
    return routing.handled_by(g.user, interaction_id)


@calls_blp.post("/<int:interaction_id>/hold")
@require_role("agent")
@calls_blp.arguments(HoldSchema)
@calls_blp.response(200, InteractionSchema)
def hold(data: dict, interaction_id: int):
    """Put the customer on hold with music, or take them off hold (hold time is counted)."""
    interaction = control.set_hold(_controllable(interaction_id), data["hold"])
    return routing.interaction_payload(interaction)


def _agent(agent_id: int) -> User:
    """A user who can take calls, or 422 naming agent_id."""
    user = db.session.get(User, agent_id)
    if user is None or not user.is_active_user:
        raise APIError(422, "Unknown agent.", fields={"agent_id": ["No such agent."]})
    return user


@calls_blp.post("/<int:interaction_id>/transfer")
@require_role("agent")
@calls_blp.arguments(TransferSchema)
@calls_blp.response(200, InteractionSchema)
def transfer(data: dict, interaction_id: int):
    """Blind transfer to a queue or an agent: the caller waits again; the agent wraps up.

    An agent is offered the call once (within the preferred-agent window); if they decline,
    miss it or are not free in time, it goes to the call's queue.
    """
    interaction = _controllable(interaction_id)
    if data.get("agent_id") is not None:
        return routing.interaction_payload(
            control.transfer(interaction, agent=_agent(data["agent_id"]))
        )
    queue = db.session.get(Queue, data["queue_id"])
    if queue is None:
        raise APIError(422, "Unknown queue.", fields={"queue_id": ["No such queue."]})
    return routing.interaction_payload(control.transfer(interaction, queue))


@calls_blp.post("/<int:interaction_id>/consult")
@require_role("agent")
@calls_blp.arguments(ConsultSchema)
@calls_blp.response(200, InteractionSchema)
def consult(data: dict, interaction_id: int):
    """Warm transfer: hold the customer and dial another agent (signed in, free) into the call."""
    interaction = _controllable(interaction_id)
    return routing.interaction_payload(control.consult(interaction, _agent(data["agent_id"])))


@calls_blp.post("/<int:interaction_id>/consult/complete")
@require_role("agent")
@calls_blp.response(200, InteractionSchema)
def complete_consult(interaction_id: int):
    """Hand the call to the consulted agent: the consulting agent leaves and wraps up."""
    interaction = _controllable(interaction_id)
    return routing.interaction_payload(control.complete_consult(interaction))


@calls_blp.post("/<int:interaction_id>/consult/cancel")
@require_role("agent")
@calls_blp.response(200, InteractionSchema)
def cancel_consult(interaction_id: int):
    """Call the consult off: the consulted agent hangs up, the customer comes off hold."""
    interaction = _controllable(interaction_id)
    return routing.interaction_payload(control.cancel_consult(interaction))


@calls_blp.post("/<int:interaction_id>/monitor")
@require_role("supervisor")
@calls_blp.arguments(MonitorSchema)
@calls_blp.response(201, MonitorResultSchema)
def monitor(data: dict, interaction_id: int):
    """Join the call as a supervisor: listen, whisper to the agent, or barge in."""
    interaction = _controllable(interaction_id)
    call_sid = control.monitor(interaction, g.user, data["mode"])
    return {"call_sid": call_sid, "mode": data["mode"]}


@calls_blp.post("/<int:interaction_id>/recording")
@require_role("agent")
@calls_blp.arguments(RecordingSchema)
@calls_blp.response(200, InteractionSchema)
def recording(data: dict, interaction_id: int):
    """Pause the call's recording (card payments) or resume it; each change is audited."""
    interaction = _controllable(interaction_id)
    return routing.interaction_payload(
        control.set_recording_paused(interaction, data["paused"], g.user)
    )


class FlowCreateSchema(Schema):
    definition = fields.Dict(required=True, metadata={"description": "The flow (see README)"})
    activate = fields.Boolean(load_default=False)


class FlowSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    version = fields.Integer()
    is_active = fields.Boolean()
    created_at = UTCDateTime()
    definition = fields.Dict()


class EmergencySchema(Schema):
    enabled = fields.Boolean(required=True)
    message = fields.String(
        load_default=flows.EMERGENCY_DEFAULT["message"], validate=validate.Length(min=1, max=1000)
    )


def _flow(flow_id: int) -> IvrFlow:
    record = db.session.get(IvrFlow, flow_id)
    if record is None:
        raise NotFound("No such flow version.")
    return record


@blp.get("/flows")
@require_role("supervisor")
@blp.response(200, FlowSchema(many=True))
def list_flows():
    """Every flow version, newest first; the active one is marked."""
    return db.session.scalars(
        sa.select(IvrFlow).order_by(IvrFlow.name, IvrFlow.version.desc())
    ).all()


@blp.post("/flows")
@require_role("admin")
@blp.arguments(FlowCreateSchema)
@blp.response(201, FlowSchema)
def create_flow(data: dict):
    """Add a flow version (validated; 422 names every problem); calls in progress keep theirs."""
    return flows.save_flow(data["definition"], activate=data["activate"], author_id=g.user.id)


@blp.get("/flows/<int:flow_id>")
@require_role("supervisor")
@blp.response(200, FlowSchema)
def get_flow(flow_id: int):
    """One flow version."""
    return _flow(flow_id)


@blp.get("/emergency")
@require_role("supervisor")
@blp.response(200, EmergencySchema)
def get_emergency():
    """Whether new callers hear the emergency closure message."""
    return flows.emergency_closure()


@blp.put("/emergency")
@require_role("admin")
@blp.arguments(EmergencySchema)
@blp.response(200, EmergencySchema)
def put_emergency(data: dict):
    """Switch the emergency closure on or off (every new caller hears the message)."""
    value = put_setting(flows.EMERGENCY_KEY, data, g.user.id)
    flows.forget_entry()
    return value


@blp.post("/flows/<int:flow_id>/activate")
@require_role("admin")
@blp.response(200, FlowSchema)
def activate(flow_id: int):
    """Make this version the one new calls enter."""
    record = _flow(flow_id)
    flows.activate_flow(record)
    return record
