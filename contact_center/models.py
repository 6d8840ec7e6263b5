"""Every model, imported in one place for migrations and the shell."""

from contact_center.agents.models import AgentSkill, ApiToken, User
from contact_center.audit import AuditEvent
from contact_center.complaints.models import Complaint
from contact_center.customers.models import Customer, CustomerIdentity, CustomerNote
from contact_center.ivr.models import IvrFlow
from contact_center.portal.servqual import ServqualResponse
from contact_center.recording_deletions import RecordingDeletion
from contact_center.routing.models import Interaction, Queue, Reservation
from contact_center.sla.models import BusinessCalendar, SlaEvent, SlaPolicy, TicketSla
from contact_center.system_settings import SystemSetting
from contact_center.tickets.models import (
    CannedResponse,
    MailAttachment,
    Ticket,
    TicketLink,
    TicketMessage,
    TicketStatusChange,
)
from contact_center.webhook_receipts import WebhookReceipt

__all__ = [
    "AgentSkill",
    "AuditEvent",
    "BusinessCalendar",
    "ApiToken",
    "CannedResponse",
    "Complaint",
    "Customer",
    "CustomerIdentity",
    "CustomerNote",
    "Interaction",
    "IvrFlow",
    "MailAttachment",
    "Queue",
    "RecordingDeletion",
    "Reservation",
    "ServqualResponse",
    "SlaEvent",
    "SlaPolicy",
    "SystemSetting",
    "Ticket",
    "TicketLink",
    "TicketMessage",
    "TicketSla",
    "TicketStatusChange",
    "User",
    "WebhookReceipt",
]
