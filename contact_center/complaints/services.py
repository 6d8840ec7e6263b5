"""The complaints process: register (with the profile's clocks), acknowledge, assess,
investigate, respond (the final response letter), close, follow up; and the register."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from contact_center import audit
from contact_center.agents.models import User
from contact_center.agents.services import readable_by
from contact_center.complaints.models import STAGES, Complaint
from contact_center.complaints.profiles import DEFAULT_PROFILE, PROFILES
from contact_center.db_types import isoformat, utcnow
from contact_center.errors import APIError, Conflict, NotFound
from contact_center.extensions import db
from contact_center.system_settings import get_setting
from contact_center.tickets import outbound
from contact_center.tickets.models import Ticket
from contact_center.tickets.services import (
    can_read_ticket,
    change_status,
    create_ticket,
    template_placeholders,
)

SETTINGS_KEY = "complaints"
FOLLOW_UP_AFTER = timedelta(days=14)
# What a final response must say (DISP 1.6.2R and 1 Annex 3): the outcome, the right to
# refer to the ombudsman, by when, and how. A template without these does not render.
MANDATED = {
    "{outcome}": "the decision",
    "{ombudsman_deadline}": "the date the referral right ends",
    "Financial Ombudsman Service": "the ombudsman's name",
    "financial-ombudsman.org.uk": "the ombudsman's website",
}
DEFAULT_FINAL_RESPONSE = (
    "Dear {customer_name},\n\n"
    "This is our final response to your complaint {ticket_number} about {category}.\n\n"
    "Our decision: your complaint is {outcome}.\n{remedy}\n\n"
    "If you are not happy with our response, you can refer your complaint to the Financial "
    "Ombudsman Service, free of charge, until {ombudsman_deadline}. If you do not refer it "
    "by then, the ombudsman will not normally be able to consider it. You can contact them at "
    "www.financial-ombudsman.org.uk or on 0800 023 4567.\n\n"
    "Yours sincerely,\n{agent_name}"
)
LETTER_FIELDS = (
    "customer_name",
    "ticket_number",
    "category",
    "outcome",
    "remedy",
    "ombudsman_deadline",
    "agent_name",
)
OUTCOME_WORDS = {"upheld": "upheld", "partly_upheld": "partly upheld", "rejected": "not upheld"}
EDITABLE = ("category", "severity", "root_cause", "remedy", "compensation_amount", "outcome")


def settings() -> dict[str, Any]:
    """The profile new complaints use and the final response template."""
    return get_setting(
        SETTINGS_KEY,
        {"profile": DEFAULT_PROFILE, "final_response_template": DEFAULT_FINAL_RESPONSE},
    )


def check_template(template: str) -> str:
    """Refuse a final response template that lacks a mandated part (422 naming each)."""
    unknown = template_placeholders(template, "final_response_template") - set(LETTER_FIELDS)
    if unknown:
        raise APIError(
            422,
            "Unknown placeholders in the template.",
            fields={"final_response_template": [f"Unknown: {', '.join(sorted(unknown))}."]},
        )
    missing = [why for part, why in MANDATED.items() if part not in template]
    if missing:
        raise APIError(
            422,
            "The final response template lacks mandated parts.",
            fields={"final_response_template": [f"Missing {why}." for why in missing]},
        )
    return template


def get_complaint(complaint_id: int, reader: User | None = None) -> Complaint:
    """The complaint, or 404 (also when `reader` may not read its ticket)."""
    complaint = db.session.get(Complaint, complaint_id)
    if complaint is None or (reader is not None and not can_read_ticket(reader, complaint.ticket)):
        raise NotFound("No such complaint.")
    return complaint


def stage_complaint(
    data: dict[str, Any], actor_id: int | None, reader: User | None = None
) -> Complaint:
    """Stage a complaint: on an existing ticket (one `reader` may read), or a new complaint
    ticket; clocks start."""
    received = data.get("received_at") or utcnow()
    profile = PROFILES[data.get("profile") or settings()["profile"]]
    if data.get("ticket_id"):
        ticket = db.session.get(Ticket, data["ticket_id"])
        if ticket is None or (reader is not None and not can_read_ticket(reader, ticket)):
            raise APIError(422, "Unknown ticket.", fields={"ticket_id": ["No such ticket."]})
        if db.session.scalar(sa.select(Complaint.id).where(Complaint.ticket_id == ticket.id)):
            raise Conflict("That ticket is already a complaint.")
        ticket.type = "complaint"
    else:
        ticket = create_ticket(
            data.get("subject") or f"Complaint: {data['category']}",
            data["channel_received"],
            customer_id=data.get("customer_id"),
            type="complaint",
            priority="high",
            actor_id=actor_id,
        )
    complaint = Complaint(
        ticket_id=ticket.id,
        profile=profile.name,
        category=data["category"],
        severity=data.get("severity", "medium"),
        channel_received=data["channel_received"],
        received_at=received,
        exceptional=False,
        **profile.deadlines(received),
    )
    db.session.add(complaint)
    db.session.flush()
    audit.record(
        "complaint.registered",
        "complaint",
        complaint.id,
        actor_id=actor_id,
        after={"ticket_id": ticket.id, "profile": profile.name, **_deadline_values(complaint)},
    )
    return complaint


def register(data: dict[str, Any], actor_id: int | None, reader: User | None = None) -> Complaint:
    """Register a complaint (committed)."""
    complaint = stage_complaint(data, actor_id, reader)
    db.session.commit()
    return complaint


def _deadline_values(complaint: Complaint) -> dict[str, str | None]:
    return {
        "acknowledge_due": isoformat(complaint.acknowledge_due),
        "summary_resolution_due": isoformat(complaint.summary_resolution_due),
        "final_response_due": isoformat(complaint.final_response_due),
    }


def deadlines(complaint: Complaint) -> list[dict[str, Any]]:
    """The complaint's clocks for the screen pop and the register."""
    items = [
        ("acknowledgement", complaint.acknowledge_due, complaint.acknowledged_at),
        ("summary_resolution", complaint.summary_resolution_due, None),
        ("final_response", complaint.final_response_due, complaint.final_response_at),
        ("ombudsman_referral", complaint.ombudsman_deadline, None),
    ]
    return [
        {"name": name, "due_at": isoformat(due), "met_at": isoformat(met)}
        for name, due, met in items
        if due is not None
    ]


def _move(complaint: Complaint, stage: str, actor_id: int | None) -> None:
    """Advance the ISO 10002 stage; going back is refused."""
    if STAGES.index(stage) < STAGES.index(complaint.stage):
        raise Conflict(f"A complaint at {complaint.stage} cannot go back to {stage}.")
    if complaint.stage == "closed":
        raise Conflict("The complaint is closed.")
    before = complaint.stage
    complaint.stage = stage
    audit.record(
        "complaint.stage",
        "complaint",
        complaint.id,
        actor_id=actor_id,
        before={"stage": before},
        after={"stage": stage},
    )


def update(complaint: Complaint, changes: dict[str, Any], actor_id: int) -> Complaint:
    """Record the handling: stage, category, severity, root cause, remedy, compensation,
    outcome; declaring exceptional circumstances moves the final response deadline."""
    if complaint.stage == "closed":
        raise Conflict("The complaint is closed.")
    if "stage" in changes:
        if changes["stage"] in ("responded", "closed"):
            raise Conflict("Send the final response, or close, through their own actions.")
        _move(complaint, changes["stage"], actor_id)
        if changes["stage"] == "acknowledged" and complaint.acknowledged_at is None:
            complaint.acknowledged_at = utcnow()
    before = {f: _plain(getattr(complaint, f)) for f in EDITABLE if f in changes}
    for field in before:
        setattr(complaint, field, changes[field])
    if changes.get("exceptional") and not complaint.exceptional:
        profile = PROFILES[complaint.profile]
        if profile.exceptional_business_days is None:
            raise Conflict(f"The {profile.label} profile has no exceptional deadline.")
        complaint.exceptional = True
        complaint.final_response_due = profile.deadlines(complaint.received_at, True)[
            "final_response_due"
        ]
        before["exceptional"] = False
    if before:
        audit.record(
            "complaint.updated",
            "complaint",
            complaint.id,
            actor_id=actor_id,
            before=before,
            after={f: _plain(getattr(complaint, f)) for f in before},
        )
    db.session.commit()
    return complaint


def _plain(value: Any) -> Any:
    return str(value) if isinstance(value, Decimal) else value


def render_final_response(
    complaint: Complaint, agent_name: str, template: str | None = None
) -> str:
    """The final response letter; refuses a template without the mandated parts."""
    if complaint.outcome is None:
        raise Conflict("Record the outcome before the final response.")
    template = check_template(template or settings()["final_response_template"])
    profile = PROFILES[complaint.profile]
    ombudsman = profile.local_date(profile.ombudsman_deadline(utcnow()))
    ticket = complaint.ticket
    remedy = complaint.remedy or ""
    if complaint.compensation_amount:
        remedy = f"{remedy}\nWe will pay you £{complaint.compensation_amount}.".strip()
    return template.format(
        customer_name=ticket.customer.name if ticket.customer else "customer",
        ticket_number=ticket.number,
        category=complaint.category,
        outcome=OUTCOME_WORDS[complaint.outcome],
        remedy=remedy,
        ombudsman_deadline=ombudsman,
        agent_name=agent_name,
    )


def send_final_response(complaint: Complaint, actor_id: int, agent_name: str) -> Complaint:
    """Mail the final response; the ombudsman referral window starts now."""
    if complaint.stage in ("responded", "closed"):
        raise Conflict("The final response was already sent.")
    body = render_final_response(complaint, agent_name)
    now = utcnow()
    message = outbound.stage_mail(
        complaint.ticket,
        "outbound",
        body,
        author_id=actor_id,
        subject=f"Our final response: {complaint.ticket.subject}",
    )
    complaint.final_response_at = now
    complaint.ombudsman_deadline = PROFILES[complaint.profile].ombudsman_deadline(now)
    _move(complaint, "responded", actor_id)
    db.session.commit()
    outbound.queue_send(message)
    return complaint


def close(complaint: Complaint, actor_id: int) -> Complaint:
    """Close the complaint (and solve its ticket); a follow-up contact is due in two weeks."""
    if complaint.outcome is None:
        raise Conflict("Record the outcome before closing.")
    _move(complaint, "closed", actor_id)
    now = utcnow()
    complaint.closed_at = now
    complaint.follow_up_due = now + FOLLOW_UP_AFTER
    if complaint.ticket.status != "solved":
        change_status(complaint.ticket, "solved")
    db.session.commit()
    return complaint


def record_follow_up(complaint: Complaint, satisfaction: int, actor_id: int) -> Complaint:
    """The customer's view of how their complaint was handled (1-5)."""
    if complaint.stage != "closed":
        raise Conflict("Follow-up comes after closing.")
    complaint.follow_up_done_at = utcnow()
    complaint.follow_up_satisfaction = satisfaction
    audit.record(
        "complaint.follow_up",
        "complaint",
        complaint.id,
        actor_id=actor_id,
        after={"satisfaction": satisfaction},
    )
    db.session.commit()
    return complaint


def register_query(filters: dict[str, Any], reader: User | None = None) -> sa.Select:
    """The complaints register, filtered, oldest received first; only those `reader` may read."""
    query = sa.select(Complaint).order_by(Complaint.received_at, Complaint.id)
    if reader is not None:
        query = query.join(Complaint.ticket).where(
            readable_by(reader, Ticket.queue_id, Ticket.assignee_id)
        )
    for field in ("stage", "category", "outcome", "severity", "profile"):
        if filters.get(field):
            query = query.where(getattr(Complaint, field) == filters[field])
    if filters.get("received_from"):
        query = query.where(Complaint.received_at >= filters["received_from"])
    if filters.get("received_to"):
        query = query.where(Complaint.received_at < filters["received_to"])
    if filters.get("overdue"):
        query = query.where(
            Complaint.final_response_at.is_(None), Complaint.final_response_due < utcnow()
        )
    return query


CSV_COLUMNS = (
    "id",
    "ticket_number",
    "profile",
    "category",
    "severity",
    "channel_received",
    "stage",
    "received_at",
    "acknowledge_due",
    "acknowledged_at",
    "final_response_due",
    "final_response_at",
    "exceptional",
    "outcome",
    "root_cause",
    "remedy",
    "compensation_amount",
    "closed_at",
    "ombudsman_deadline",
    "follow_up_satisfaction",
)


def register_csv(complaints: list[Complaint]) -> str:
    """The register as CSV (for audit)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for c in complaints:
        row = {
            **{col: getattr(c, col, None) for col in CSV_COLUMNS},
            "ticket_number": c.ticket.number,
        }
        writer.writerow(
            [
                isoformat(v) if hasattr(v, "astimezone") else ("" if v is None else v)
                for v in (row[k] for k in CSV_COLUMNS)
            ]
        )
    return buffer.getvalue()


def summaries_for_customer(customer_id: int) -> list[dict[str, Any]]:
    """A customer's complaints with their clocks, for the screen pop."""
    complaints = db.session.scalars(
        sa.select(Complaint)
        .join(Ticket, Ticket.id == Complaint.ticket_id)
        .where(Ticket.customer_id == customer_id)
        .order_by(Complaint.received_at.desc())
        .limit(10)
    )
    return [
        {"id": c.id, "number": c.ticket.number, "status": c.stage, "deadlines": deadlines(c)}
        for c in complaints
    ]
