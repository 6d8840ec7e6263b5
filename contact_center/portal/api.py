"""`/api/v1/surveys`: SERVQUAL answers and the gap report."""

from flask import g
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from contact_center.agents.auth import require_role
from contact_center.errors import APIError
from contact_center.extensions import db
from contact_center.portal import servqual
from contact_center.routing.models import Interaction
from contact_center.routing.services import can_read_interaction

blp = Blueprint("surveys", __name__, url_prefix="/api/v1/surveys", description="Surveys")

_scores = fields.Dict(
    keys=fields.String(validate=validate.OneOf(servqual.DIMENSIONS)),
    values=fields.Integer(strict=True, validate=validate.Range(min=1, max=7)),
    required=True,
    validate=validate.Length(equal=len(servqual.DIMENSIONS), error="Give all five dimensions."),
)


class ServqualSchema(Schema):
    interaction_id = fields.Integer(required=True, strict=True)
    expectations = _scores
    perceptions = _scores


class ServqualResultSchema(Schema):
    id = fields.Integer()
    interaction_id = fields.Integer()
    queue_id = fields.Integer(allow_none=True)


class PeriodSchema(Schema):
    start = fields.AwareDateTime(data_key="from")
    end = fields.AwareDateTime(data_key="to")


class GapSchema(Schema):
    queue_id = fields.Integer(allow_none=True)
    queue = fields.String(allow_none=True)
    responses = fields.Integer()
    dimensions = fields.Dict(
        metadata={"description": "{dimension: {expectation, perception, gap}}"}
    )
    gap = fields.Float(metadata={"description": "Mean of the five gaps, Q = P - E"})


@blp.post("/servqual")
@require_role("agent")
@blp.arguments(ServqualSchema)
@blp.response(201, ServqualResultSchema)
def record_servqual(data: dict):
    """Record a customer's SERVQUAL answers (1-7 per dimension) about an interaction."""
    interaction = db.session.get(Interaction, data["interaction_id"])
    if interaction is None or not can_read_interaction(g.user, interaction):
        raise APIError(422, "Unknown interaction.", fields={"interaction_id": ["No such record."]})
    return servqual.record(interaction, data["expectations"], data["perceptions"])


@blp.get("/servqual/report")
@require_role("supervisor")
@blp.arguments(PeriodSchema, location="query")
@blp.response(200, GapSchema(many=True))
def servqual_report(args: dict):
    """Per queue and period: mean expectation, perception and gap Q = P - E per dimension."""
    return servqual.gap_report(args.get("start"), args.get("end"))
