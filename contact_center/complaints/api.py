"""`/api/v1/complaints`: register and handle complaints; the register (JSON or CSV)."""

from flask import Response, g
from flask_smorest import Blueprint

from contact_center.agents.auth import require_role
from contact_center.complaints import services
from contact_center.complaints.schemas import (
    ComplaintCreateSchema,
    ComplaintSchema,
    ComplaintSettingsSchema,
    ComplaintUpdateSchema,
    FollowUpSchema,
    LetterSchema,
    RegisterQuerySchema,
)
from contact_center.extensions import db
from contact_center.system_settings import put_setting

blp = Blueprint("complaints", __name__, url_prefix="/api/v1/complaints", description="Complaints")


@blp.get("")
@require_role("agent")
@blp.arguments(RegisterQuerySchema, location="query")
@blp.response(200, ComplaintSchema(many=True))
def register(args: dict):
    """The complaints register, filtered; `?format=csv` downloads it for audit (an agent
    sees none of another team's restricted queue)."""
    complaints = db.session.scalars(services.register_query(args, g.user)).all()
    if args["format"] == "csv":
        return Response(
            services.register_csv(complaints),
            mimetype="text/csv",
            headers={"Content-Disposition": 'attachment; filename="complaints.csv"'},
        )
    return complaints


@blp.post("")
@require_role("agent")
@blp.arguments(ComplaintCreateSchema)
@blp.response(201, ComplaintSchema)
def create(data: dict):
    """Register a complaint (on a ticket, or as a new one); its clocks start at receipt."""
    return services.register(data, g.user.id, g.user)


@blp.get("/<int:complaint_id>")
@require_role("agent")
@blp.response(200, ComplaintSchema)
def get(complaint_id: int):
    """One complaint with its deadlines."""
    return services.get_complaint(complaint_id, g.user)


@blp.patch("/<int:complaint_id>")
@require_role("agent")
@blp.arguments(ComplaintUpdateSchema)
@blp.response(200, ComplaintSchema)
def update(data: dict, complaint_id: int):
    """Record the handling: stage, root cause, remedy, compensation, outcome, exceptional."""
    return services.update(services.get_complaint(complaint_id, g.user), data, g.user.id)


@blp.get("/<int:complaint_id>/final-response")
@require_role("agent")
@blp.response(200, LetterSchema)
def preview_final_response(complaint_id: int):
    """The final response letter as it would be sent."""
    complaint = services.get_complaint(complaint_id, g.user)
    return {"body": services.render_final_response(complaint, g.user.display_name)}


@blp.post("/<int:complaint_id>/final-response")
@require_role("agent")
@blp.response(200, ComplaintSchema)
def send_final_response(complaint_id: int):
    """Mail the final response; the ombudsman referral window starts."""
    complaint = services.get_complaint(complaint_id, g.user)
    return services.send_final_response(complaint, g.user.id, g.user.display_name)


@blp.post("/<int:complaint_id>/close")
@require_role("agent")
@blp.response(200, ComplaintSchema)
def close(complaint_id: int):
    """Close the complaint; a follow-up contact falls due two weeks later."""
    return services.close(services.get_complaint(complaint_id, g.user), g.user.id)


@blp.post("/<int:complaint_id>/follow-up")
@require_role("agent")
@blp.arguments(FollowUpSchema)
@blp.response(200, ComplaintSchema)
def follow_up(data: dict, complaint_id: int):
    """The customer's satisfaction with how the complaint was handled."""
    complaint = services.get_complaint(complaint_id, g.user)
    return services.record_follow_up(complaint, data["satisfaction"], g.user.id)


@blp.get("/settings")
@require_role("supervisor")
@blp.response(200, ComplaintSettingsSchema)
def get_settings():
    """The clock profile for new complaints and the final response template."""
    return services.settings()


@blp.put("/settings")
@require_role("admin")
@blp.arguments(ComplaintSettingsSchema)
@blp.response(200, ComplaintSettingsSchema)
def put_settings(data: dict):
    """Choose the profile and replace the template (refused without the mandated parts)."""
    services.check_template(data["final_response_template"])
    put_setting(services.SETTINGS_KEY, data, g.user.id)
    db.session.commit()
    return data
