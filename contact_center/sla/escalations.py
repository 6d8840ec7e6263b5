"""What an escalation step does: notify, raise priority, reassign, tag, boost in routing.

`perform` stages the ticket changes in the timer job's transaction (they commit with the
step's log entry, so a step that loses the race changes nothing) and returns notices that
`deliver` sends only after that commit: the supervisors' board over Socket.IO, and mail.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formataddr
from typing import Any

import sqlalchemy as sa
from flask import current_app

from contact_center import audit, jobs
from contact_center.db_types import isoformat
from contact_center.extensions import db
from contact_center.realtime.events import emit_to_supervisors
from contact_center.routing.models import Interaction
from contact_center.sla.clocks import Cycle
from contact_center.tickets.models import PRIORITIES, Ticket
from contact_center.tickets.outbound import smtp_send

ACTION_KINDS = ("notify", "priority", "reassign", "tag", "boost")


@dataclass
class Notice:
    """A message about an escalation, sent once its step is committed."""

    payload: dict[str, Any]
    emails: list[str] = field(default_factory=list)


def _payload(ticket: Ticket, cycle: Cycle, kind: str) -> dict[str, Any]:
    return {
        "ticket_id": ticket.id,
        "number": ticket.number,
        "subject": ticket.subject,
        "priority": ticket.priority,
        "queue_id": ticket.queue_id,
        "assignee_id": ticket.assignee_id,
        "metric": cycle.metric,
        "kind": kind,
        "due_at": isoformat(cycle.breached_at or cycle.due_at),
        "elapsed_minutes": cycle.elapsed_minutes,
        "target_minutes": cycle.target_minutes,
    }


def _raise_priority(ticket: Ticket, action: dict[str, Any]) -> str | None:
    current = PRIORITIES.index(ticket.priority)
    wanted = action.get("to")
    new = (
        PRIORITIES.index(wanted) if wanted in PRIORITIES else min(current + 1, len(PRIORITIES) - 1)
    )
    if new <= current:
        return None  # escalation never lowers a priority
    before = ticket.priority
    ticket.priority = PRIORITIES[new]
    audit.record(
        "ticket.escalated",
        "ticket",
        ticket.id,
        before={"priority": before},
        after={"priority": ticket.priority},
    )
    return f"priority {before} -> {ticket.priority}"


def _reassign(ticket: Ticket, action: dict[str, Any]) -> str | None:
    before = {"queue_id": ticket.queue_id, "assignee_id": ticket.assignee_id}
    if action.get("queue_id") is not None:
        ticket.queue_id = action["queue_id"]
    if "assignee_id" in action:
        ticket.assignee_id = action["assignee_id"]
    after = {"queue_id": ticket.queue_id, "assignee_id": ticket.assignee_id}
    if after == before:
        return None
    audit.record("ticket.escalated", "ticket", ticket.id, before=before, after=after)
    return f"reassigned to queue {ticket.queue_id}, assignee {ticket.assignee_id}"


def _tag(ticket: Ticket, action: dict[str, Any]) -> str | None:
    tag = action["tag"]
    if tag in (ticket.tags or []):
        return None
    ticket.tags = [*(ticket.tags or []), tag]
    return f"tagged {tag}"


def _boost(ticket: Ticket, action: dict[str, Any]) -> str | None:
    from contact_center.routing.services import boost

    waiting = db.session.scalars(
        sa.select(Interaction).where(
            Interaction.ticket_id == ticket.id, Interaction.status.in_(("queued", "offered"))
        )
    ).all()
    for interaction in waiting:
        boost(interaction, int(action.get("by", 1)))
    return f"boosted interactions {[i.id for i in waiting]}" if waiting else None


def perform(
    ticket: Ticket, actions: list[dict[str, Any]], cycle: Cycle, kind: str
) -> tuple[list[str], list[Notice]]:
    """Stage the step's actions on the ticket; what was done, and what to send after commit."""
    done: list[str] = []
    notices: list[Notice] = []
    handlers = {"priority": _raise_priority, "reassign": _reassign, "tag": _tag, "boost": _boost}
    for action in actions:
        if action["kind"] == "notify":
            notices.append(Notice(_payload(ticket, cycle, kind), list(action.get("emails", []))))
            done.append("notified")
            continue
        result = handlers[action["kind"]](ticket, action)
        if result:
            done.append(result)
    return done, notices


def deliver(notices: list[Notice]) -> None:
    """Send committed escalations: to the supervisors' board, and by mail where asked."""
    for notice in notices:
        emit_to_supervisors("sla.escalation", notice.payload)
        for address in notice.emails:
            jobs.enqueue(send_notice, address, notice.payload)


def send_notice(address: str, payload: dict[str, Any]) -> str:
    """RQ job: mail one escalation notice to a supervisor or team address."""
    config = current_app.config
    if not config.get("SMTP_HOST"):
        return "not sent: SMTP_HOST is not set"
    mail = EmailMessage()
    mail["From"] = formataddr(("Service desk SLA", config["MAIL_FROM"]))
    mail["To"] = address
    what = "breached" if payload["kind"] == "escalated" else "at risk"
    mail["Subject"] = f"SLA {what}: ticket {payload['number']} ({payload['metric']})"
    mail["Auto-Submitted"] = "auto-generated"
    mail.set_content(
        f"Ticket {payload['number']}: {payload['subject']}\n"
        f"Metric: {payload['metric']}, due {payload['due_at']}, "
        f"{payload['elapsed_minutes']} of {payload['target_minutes']} minutes used.\n"
        f"Priority: {payload['priority']}.\n"
    )
    smtp_send(mail)
    return "sent"
