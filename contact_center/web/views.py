"""Login, logout, the agent console and the configuration pages (users, queues, business
calendars, SLA policies, IVR flows)."""

from __future__ import annotations

from urllib.parse import urlsplit
from zoneinfo import available_timezones

import sqlalchemy as sa
from flask import Blueprint, abort, redirect, render_template, request, session, url_for
from flask_limiter.errors import RateLimitExceeded
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from contact_center.agents.models import AWAY_REASONS, DEFAULT_CAPACITY, REJECT_REASONS, ROLES, User
from contact_center.agents.services import end_sessions
from contact_center.agents.signin import LockedOut, login_rate_limit, sign_in
from contact_center.extensions import db, limiter, login_manager
from contact_center.ivr.models import IvrFlow
from contact_center.routing.models import STRATEGIES, Queue
from contact_center.sla.api import PAUSABLE
from contact_center.sla.calendars import WEEKDAYS
from contact_center.sla.clocks import METRICS
from contact_center.sla.models import BusinessCalendar, SlaPolicy
from contact_center.softphone.services import ENDPOINT_KINDS, page_csp_sources
from contact_center.tickets.models import PRIORITIES, TYPES

bp = Blueprint("web", __name__)


class LoginForm(FlaskForm):
    username = StringField("Username", validators=[DataRequired(), Length(max=80)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=200)])


class LogoutForm(FlaskForm):
    pass


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    user = db.session.get(User, int(user_id)) if user_id.isdigit() else None
    if user is None or not user.is_active or session.get("epoch") != user.session_epoch:
        return None  # signed out since (on this or another device)
    return user


def _safe_next(target: str | None) -> str | None:
    """Only same-site paths: never redirect to another host after login."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


@bp.get("/")
def index():
    if not current_user.is_authenticated:
        return redirect(url_for("web.login"))
    return redirect(url_for("web.agent_console"))


@bp.errorhandler(RateLimitExceeded)
def _too_many_attempts(_error: RateLimitExceeded):
    """The login page, refusing: this address tried too often (LOGIN_RATE_LIMIT); the
    limiter adds Retry-After."""
    page = render_template(
        "login.html",
        form=LoginForm(),
        error="Too many sign-in attempts from your network. Please wait a minute and retry.",
    )
    return page, 429


@bp.route("/login", methods=["GET", "POST"])
@limiter.shared_limit(login_rate_limit, scope="password-sign-in", methods=["POST"])
def login():
    form = LoginForm()
    error = None
    headers = {}
    status = 401 if request.method == "POST" else 200
    if form.validate_on_submit():
        try:
            user = sign_in(form.username.data, form.password.data, via="web")
        except LockedOut as locked:
            user, error, status, headers = None, locked.message, 429, locked.headers
        if user is not None:
            login_user(user)
            session["epoch"] = user.session_epoch
            return redirect(_safe_next(request.args.get("next")) or url_for("web.index"))
        error = error or "Unknown username or wrong password."
    return render_template("login.html", form=form, error=error), status, headers


@bp.post("/logout")
@login_required
def logout():
    form = LogoutForm()
    if not form.validate_on_submit():
        abort(400)
    end_sessions(current_user._get_current_object())
    logout_user()
    return redirect(url_for("web.login"))


@bp.get("/agent")
@login_required
def agent_console():
    if not current_user.has_role("agent"):
        abort(403)
    # The softphone's SDK reaches Twilio from this page only (none when it is not set up).
    return render_template(
        "agent.html",
        logout_form=LogoutForm(),
        away_reasons=AWAY_REASONS,
        reject_reasons=REJECT_REASONS,
        **page_csp_sources(),
    )


def _configuration_page(template: str, **context):
    """A configuration page: supervisors and admins only (the API enforces the rest)."""
    if not current_user.has_role("supervisor"):
        abort(403)
    return render_template(template, logout_form=LogoutForm(), **context)


@bp.get("/admin/users")
@login_required
def admin_users():
    return _configuration_page(
        "admin_users.html",
        roles=ROLES,
        channels=tuple(DEFAULT_CAPACITY),
        endpoint_kinds=ENDPOINT_KINDS,
    )


@bp.get("/admin/queues")
@login_required
def admin_queues():
    return _configuration_page("admin_queues.html", strategies=STRATEGIES)


def _calendars() -> list[BusinessCalendar]:
    return db.session.scalars(sa.select(BusinessCalendar).order_by(BusinessCalendar.name)).all()


@bp.get("/admin/calendars")
@login_required
def admin_calendars():
    return _configuration_page(
        "admin_calendars.html",
        calendars=_calendars(),
        weekdays=WEEKDAYS,
        timezones=sorted(available_timezones()),
    )


@bp.get("/admin/sla-policies")
@login_required
def admin_sla_policies():
    policies = db.session.scalars(
        sa.select(SlaPolicy).order_by(SlaPolicy.position, SlaPolicy.id)
    ).all()
    calendars = _calendars()
    return _configuration_page(
        "admin_sla_policies.html",
        policies=policies,
        calendars=calendars,
        calendar_names={calendar.id: calendar.name for calendar in calendars},
        queues=db.session.scalars(sa.select(Queue).order_by(Queue.name)).all(),
        priorities=PRIORITIES,
        types=TYPES,
        tiers=("A", "B", "C"),
        metrics=METRICS,
        pausable=PAUSABLE,
    )


@bp.get("/admin/ivr-flows")
@login_required
def admin_ivr_flows():
    flows = db.session.scalars(
        sa.select(IvrFlow).order_by(IvrFlow.name, IvrFlow.version.desc())
    ).all()
    return _configuration_page("admin_ivr_flows.html", flows=flows)
