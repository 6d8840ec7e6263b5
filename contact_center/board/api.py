"""`/api/v1/board/staffing/what-if`: staffing advice for supervisors, a pure computation;
`/api/v1/board/sla`: the SLA board (next breaches, breached now, compliance today);
`/api/v1/reports/<kind>`: reports for a date range, as JSON or a CSV download."""

from __future__ import annotations

from flask import Response, request
from flask_smorest import Blueprint

from contact_center.agents.auth import require_role
from contact_center.board import erlang, reports, sla_board
from contact_center.board.schemas import (
    ReportQuerySchema,
    ReportSchema,
    SlaBoardQuerySchema,
    SlaBoardSchema,
    StaffingSchema,
    WhatIfQuerySchema,
)
from contact_center.errors import APIError

blp = Blueprint("board", __name__, url_prefix="/api/v1/board", description="Supervisor board")
reports_blp = Blueprint("reports", __name__, url_prefix="/api/v1/reports", description="Reports")


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


@blp.get("/sla")
@require_role("supervisor")
@blp.arguments(SlaBoardQuerySchema, location="query")
@blp.response(200, SlaBoardSchema)
def sla(args: dict):
    """The SLA board: open tickets and complaints by time to their next breach (soonest
    first) with every open clock, the tickets breached now, and each queue's compliance
    today (UTC).

    The answer is cached in Redis for 5 seconds per (`queue_id`, `limit`), shared by every
    board and process: a hundred open boards cost one database computation per 5 s.
    `computed_at` says when it was computed; `server_time` is now, for the client's clock.
    """
    return sla_board.cached_board(args["queue_id"], args["limit"])


@reports_blp.get(f"/<any({', '.join(reports.KINDS)}):kind>")
@require_role("supervisor")
@reports_blp.arguments(ReportQuerySchema, location="query")
@reports_blp.response(200, ReportSchema)
@reports_blp.alt_response(200, content_type="text/csv", description="The report as CSV")
def report(args: dict, kind: str):
    """A report for local days `from`..`to` (at most 92) in `tz`: `interval` (15 minutes),
    `daily`, `agents`, `sla` (compliance) or `complaints` (the register), per queue and
    overall. `format=csv` or `Accept: text/csv` downloads it as CSV."""
    result = reports.report(kind, args["period"], args["queue_id"])
    if _wants_csv(args["format"]):
        filename = f"report-{kind}-{result['from']}-{result['to']}.csv"
        return Response(
            reports.to_csv(result),
            mimetype="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )
    return result


def _wants_csv(format_: str | None) -> bool:
    if format_ is not None:
        return format_ == "csv"
    return request.accept_mimetypes.best_match(["application/json", "text/csv"]) == "text/csv"
