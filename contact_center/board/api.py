"""`/api/v1/board/staffing/what-if`: staffing advice for supervisors, a pure computation."""

from __future__ import annotations

from flask_smorest import Blueprint

from contact_center.agents.auth import require_role
from contact_center.board import erlang
from contact_center.board.schemas import StaffingSchema, WhatIfQuerySchema
from contact_center.errors import APIError

blp = Blueprint("board", __name__, url_prefix="/api/v1/board", description="Supervisor board")


@blp.get("/staffing/what-if")
@require_role("supervisor")
@blp.arguments(WhatIfQuerySchema, location="query")
@blp.response(200, StaffingSchema)
def staffing_what_if(args: dict):
    """Agents needed for a service-level target: Erlang C, or Erlang A given a patience.

    With `agents_now`, also what those agents give and how many are missing.
    """
    try:
        advice = erlang.staffing(
            args["arrivals"],
            args["interval_s"],
            args["aht_s"],
            args["target_sl"],
            args["threshold_s"],
            agents_now=args["agents_now"],
            patience_s=args["patience_s"],
            max_occupancy=args["max_occupancy"],
            target_asa_s=args["target_asa_s"],
        )
    except erlang.StaffingLimitError as exc:
        raise APIError(422, str(exc), fields={"_schema": [str(exc)]}) from exc
    threshold = f"{args['threshold_s']:g} s"
    return {
        "model": advice.model,
        "traffic_erlangs": advice.traffic_erlangs,
        "target": {
            "label": advice.target_label,
            "service_level": args["target_sl"],
            "threshold_s": args["threshold_s"],
            "asa_s": args["target_asa_s"],
            "max_occupancy": args["max_occupancy"],
        },
        "needed": advice.needed,
        "now": advice.now,
        "extra_agents": advice.extra_agents,
        "advice": advice.advice,
        "service_level_formula": (
            f"answered within {threshold} / (answered + abandoned after {threshold})"
        ),
    }
