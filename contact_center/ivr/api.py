"""`/api/v1/ivr/flows`: list, read, replace (as a new version) and activate IVR flows."""

from __future__ import annotations

import sqlalchemy as sa
from flask import g
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from contact_center.agents.auth import require_role
from contact_center.errors import NotFound
from contact_center.extensions import db
from contact_center.fields import UTCDateTime
from contact_center.ivr import flows
from contact_center.ivr.models import IvrFlow
from contact_center.system_settings import put_setting

blp = Blueprint("ivr", __name__, url_prefix="/api/v1/ivr", description="IVR flows")


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
    return put_setting(flows.EMERGENCY_KEY, data, g.user.id)


@blp.post("/flows/<int:flow_id>/activate")
@require_role("admin")
@blp.response(200, FlowSchema)
def activate(flow_id: int):
    """Make this version the one new calls enter."""
    record = _flow(flow_id)
    flows.activate_flow(record)
    return record
