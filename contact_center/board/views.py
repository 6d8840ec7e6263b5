"""Supervisor pages: the live board (its data comes over Socket.IO) and the reports page."""

from __future__ import annotations

from flask import Blueprint, abort, render_template
from flask_login import current_user, login_required

from contact_center.board import metrics, reports
from contact_center.extensions import db
from contact_center.routing.models import Queue
from contact_center.web.views import LogoutForm

bp = Blueprint("board_pages", __name__, url_prefix="/supervisor")


@bp.get("")
@login_required
def live_board():
    if not current_user.has_role("supervisor"):
        abort(403)
    return render_template("board.html", logout_form=LogoutForm())


@bp.get("/reports")
@login_required
def reports_page():
    if not current_user.has_role("supervisor"):
        abort(403)
    queues = db.session.scalars(db.select(Queue).order_by(Queue.name)).all()
    return render_template(
        "reports.html",
        queues=queues,
        kinds=reports.KINDS,
        max_days=reports.MAX_DAYS,
        definitions=metrics.DEFINITIONS,
        logout_form=LogoutForm(),
    )
