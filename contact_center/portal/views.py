"""Public pages (no login): submit an enquiry or complaint, follow it, rate the service.

CSRF-protected forms, rate-limited per client address; the status and survey pages are
reached only through signed links.
"""

from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from wtforms import MultipleFileField, RadioField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional

from contact_center.complaints.profiles import PROFILES
from contact_center.errors import APIError
from contact_center.portal import services
from contact_center.portal.services import CUSTOMER_STATUS, Upload

bp = Blueprint("portal", __name__)
CATEGORIES = [
    SelectChoice(value, label)
    for value, label in (
        ("cards", "Cards"),
        ("payments", "Payments"),
        ("account", "My account"),
        ("fees", "Fees and charges"),
        ("service", "Service we gave you"),
        ("other", "Something else"),
    )
]


class SubmitForm(FlaskForm):
    kind = RadioField(
        "What is it?",
        choices=[
            SelectChoice("enquiry", "A question or request"),
            SelectChoice("complaint", "A complaint"),
        ],
        default="enquiry",
        validators=[DataRequired()],
    )
    name = StringField("Your name", validators=[DataRequired(), Length(max=200)])
    email = StringField("Email", validators=[DataRequired(), Length(max=320)])
    phone = StringField("Phone (optional)", validators=[Optional(), Length(max=40)])
    category = SelectField("Topic", choices=CATEGORIES, validators=[DataRequired()])
    subject = StringField("Subject", validators=[DataRequired(), Length(max=300)])
    description = TextAreaField(
        "Tell us what happened", validators=[DataRequired(), Length(max=20000)]
    )
    attachments = MultipleFileField("Attachments (up to 3 files, 5 MB each)")


class InformationForm(FlaskForm):
    text = TextAreaField("Add information", validators=[DataRequired(), Length(max=20000)])
    attachments = MultipleFileField("Attachments (up to 3 files, 5 MB each)")


class SurveyForm(FlaskForm):
    score = RadioField(
        "How satisfied are you with how we handled it?",
        choices=[SelectChoice(str(n)) for n in range(1, 6)],
        validators=[DataRequired()],
    )
    comment = TextAreaField("Anything to add? (optional)", validators=[Length(max=5000)])


def _uploads(field: MultipleFileField) -> list[Upload]:
    uploads = []
    for file in field.data or []:
        if getattr(file, "filename", ""):
            with file.stream:  # large uploads are spooled to a temporary file: close it
                data = file.read()
            uploads.append(Upload(file.filename, file.mimetype or "application/octet-stream", data))
    return uploads


def _limited() -> bool:
    return not services.within_rate_limit(request.remote_addr or "unknown")


@bp.before_request
def allow_attachments() -> None:
    """The forms take up to three 5 MB files: more than the API's request limit."""
    request.max_content_length = services.MAX_REQUEST_BYTES
    request.max_form_memory_size = services.MAX_REQUEST_BYTES


@bp.route("/support", methods=["GET", "POST"])
def submit():
    form = SubmitForm()
    error = None
    if form.validate_on_submit():
        if _limited():
            return render_template(
                "portal/message.html",
                title="Please wait",
                message=(
                    "You have sent several messages in the last few minutes. Please try again "
                    "in ten minutes."
                ),
            ), 429
        data = {
            key: getattr(form, key).data
            for key in ("kind", "name", "email", "phone", "category", "subject", "description")
        }
        try:
            ticket = services.submit(data, _uploads(form.attachments))
        except APIError as exc:
            error = exc.message
        else:
            # The status link goes only to the address given: whoever types someone else's
            # address cannot read the replies.
            return render_template(
                "portal/message.html",
                title="Thank you",
                message=(
                    f"We have received it as case {ticket.number}. We have sent an email to "
                    "the address you gave with a link to follow it and add information."
                ),
            )
    status = 400 if request.method == "POST" else 200
    return render_template("portal/submit.html", form=form, error=error), status


@bp.route("/support/status/<token>", methods=["GET", "POST"])
def status(token: str):
    ticket = services.ticket_for_token(token)
    if ticket is None:
        abort(404)
    form = InformationForm()
    error = None
    if form.validate_on_submit():
        if _limited():
            error = "You have sent several messages in the last few minutes. Please wait."
        else:
            try:
                services.add_information(ticket, form.text.data, _uploads(form.attachments))
            except APIError as exc:
                error = exc.message
            else:
                return redirect(url_for("portal.status", token=token, added=1))
    complaint = services.complaint_of(ticket)
    final_response_due = (
        PROFILES[complaint.profile].local_date(complaint.final_response_due) if complaint else None
    )
    code = 400 if request.method == "POST" else 200
    return render_template(
        "portal/status.html",
        ticket=ticket,
        status_text=CUSTOMER_STATUS[ticket.status],
        final_response_due=final_response_due,
        messages=services.public_messages(ticket),
        form=form,
        error=error,
        added=request.args.get("added"),
    ), code


@bp.route("/survey/<token>", methods=["GET", "POST"])
def survey(token: str):
    interaction = services.interaction_for_survey(token)
    if interaction is None:
        abort(404)
    form = SurveyForm()
    if form.validate_on_submit():
        services.record_satisfaction(interaction, int(form.score.data), form.comment.data)
        return render_template(
            "portal/message.html", title="Thank you", message="Thank you for telling us."
        )
    code = 400 if request.method == "POST" else 200
    return render_template("portal/survey.html", form=form), code
