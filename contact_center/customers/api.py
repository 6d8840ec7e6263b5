"""`/api/v1/customers`: create, read, update, search, history, import, tiers, calls."""

from flask import g, request
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from contact_center import jobs
from contact_center.agents.auth import require_role
from contact_center.customers import privacy, services, value
from contact_center.customers.schemas import (
    CustomerCreateSchema,
    CustomerExportSchema,
    CustomerSchema,
    CustomerSearchSchema,
    CustomerUpdateSchema,
    EraseSchema,
    ImportQuerySchema,
    ImportReportSchema,
    JobSchema,
    NoteCreateSchema,
    NoteSchema,
    ScreenPopSchema,
    TiersSchema,
)
from contact_center.errors import APIError
from contact_center.ivr import control
from contact_center.routing import services as routing
from contact_center.routing.schemas import InteractionSchema

blp = Blueprint("customers", __name__, url_prefix="/api/v1/customers", description="Customers")


@blp.get("")
@require_role("agent")
@blp.arguments(CustomerSearchSchema, location="query")
@blp.response(200, CustomerSchema(many=True))
def list_customers(args: dict):
    """Search customers by name, phone number in any format, or email."""
    customers = services.search_customers(args["q"], args["limit"], args["offset"], g.user)
    return [services.customer_summary(c) for c in customers]


@blp.post("")
@require_role("agent")
@blp.arguments(CustomerCreateSchema)
@blp.response(201, CustomerSchema)
def create_customer(data: dict):
    """Create a customer."""
    return services.customer_summary(services.create_customer(data))


@blp.get("/<int:customer_id>")
@require_role("agent")
@blp.response(200, CustomerSchema)
def get_customer(customer_id: int):
    """One customer."""
    return services.customer_summary(services.get_customer(customer_id))


@blp.patch("/<int:customer_id>")
@require_role("agent")
@blp.arguments(CustomerUpdateSchema)
@blp.response(200, CustomerSchema)
def update_customer(data: dict, customer_id: int):
    """Change some of a customer's fields."""
    customer = services.get_customer(customer_id)
    return services.customer_summary(services.update_customer(customer, data))


@blp.get("/<int:customer_id>/history")
@require_role("agent")
@blp.response(200, ScreenPopSchema)
def customer_history(customer_id: int):
    """The screen pop: open tickets, complaints, recent interactions, notes, satisfaction
    (an agent sees none of another team's restricted queue)."""
    return services.history(customer_id, reader=g.user)


@blp.post("/<int:customer_id>/notes")
@require_role("agent")
@blp.arguments(NoteCreateSchema)
@blp.response(201, NoteSchema)
def add_customer_note(data: dict, customer_id: int):
    """Add a note to the customer's record (shown in every later screen pop)."""
    note = services.add_note(services.get_customer(customer_id), g.user, data["text"])
    return services.note_view(note)


@blp.get("/<int:customer_id>/export")
@require_role("supervisor")
@blp.response(200, CustomerExportSchema)
def export_customer(customer_id: int):
    """Subject access: everything held about the customer as one JSON document (the record,
    identities, notes, tickets with every message and internal note, complaints,
    interactions with recordings' metadata, survey answers, audit entries about them, and
    their recordings' deletions at Twilio).

    Supervisors and admins only, and audited as `customer.exported`: agents see a customer's
    screen pop to serve them, but a complete copy including staff notes and the audit trail
    is a disclosure, answered for a verified request, not part of serving a call."""
    return privacy.export(services.get_customer(customer_id), g.user)


@blp.post("/<int:customer_id>/erase")
@require_role("admin")
@blp.arguments(EraseSchema)
@blp.response(200, CustomerSchema)
def erase_customer(data: dict, customer_id: int):
    """Erasure: anonymise the customer (name, identities, notes, tags, region, owner; status
    `erased`, marketing opt-out) and scrub their tickets, messages, attachments, complaints'
    free text, interactions' addresses and notes and recording URLs, in one transaction;
    their name, numbers and addresses are scrubbed from stored webhook answers (which still
    answer retries), routing decision records, audit entries and mail headers, and their
    recordings are deleted at Twilio by retried jobs (listed in the export).
    Times, queues, outcomes, durations and scores stay, so reports do not change. Audited as
    `customer.erased` with the reason and counts, never the erased values. Erasing an erased
    customer, or one with an interaction in progress, is a 409."""
    customer = privacy.erase(services.get_customer(customer_id), g.user, data["reason"])
    return services.customer_summary(customer)


class CallCustomerSchema(Schema):
    phone = fields.String(
        load_default=None,
        validate=validate.Length(min=1, max=40),
        metadata={"description": "One of the customer's numbers; default: their first"},
    )


@blp.post("/<int:customer_id>/call")
@require_role("agent")
@blp.arguments(CallCustomerSchema)
@blp.response(201, InteractionSchema)
def call_customer(data: dict, customer_id: int):
    """Click-to-call: ring the signed-in agent, then the customer, into one conference."""
    customer = services.get_customer(customer_id)
    return routing.interaction_payload(control.call_customer(g.user, customer, data["phone"]))


@blp.post("/import")
@require_role("supervisor")
@blp.arguments(ImportQuerySchema, location="query")
@blp.response(200, ImportReportSchema)
def import_customers(args: dict):
    """Import customers from a CSV body (text/csv: name, phones, emails, type, status, region,
    lifetime_value, tags; lists separated by ";"). Any bad row: 422 with every bad row and
    nothing imported, unless `?good_rows_only=true`, which imports the good ones and says so."""
    if request.mimetype != "text/csv":
        raise APIError(415, "Send the CSV as the body with Content-Type: text/csv.")
    try:
        text = request.get_data().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise APIError(400, "The CSV must be UTF-8.") from None
    report = value.import_csv(text, good_rows_only=args["good_rows_only"])
    if not report["complete"] and not args["good_rows_only"]:
        raise APIError(
            422, "Some rows are invalid; nothing was imported.", fields={"rows": report["errors"]}
        )
    return report


@blp.post("/tiers")
@require_role("admin")
@blp.arguments(TiersSchema)
@blp.response(202, JobSchema)
def recompute_tiers(data: dict):
    """Recompute every customer's ABC tier in the background (top 5 % A, next 15 % B)."""
    job = jobs.enqueue(value.recompute_tiers_job, data["basis"])
    return {"job_id": job.id}
