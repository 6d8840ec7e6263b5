"""Customer schemas: create, update, search, output and the screen pop."""

from marshmallow import Schema, fields, validate

from contact_center.customers.models import CUSTOMER_STATUSES, CUSTOMER_TYPES, TIERS

_name = fields.String(validate=validate.Length(min=1, max=200))
_phones = fields.List(fields.String(validate=validate.Length(min=1, max=40)), load_default=list)
_emails = fields.List(fields.String(validate=validate.Length(min=3, max=320)), load_default=list)
_tags = fields.List(fields.String(validate=validate.Length(min=1, max=50)), load_default=list)


class CustomerCreateSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    phones = _phones
    emails = _emails
    type = fields.String(load_default="end_customer", validate=validate.OneOf(CUSTOMER_TYPES))
    status = fields.String(load_default="active", validate=validate.OneOf(CUSTOMER_STATUSES))
    region = fields.String(allow_none=True, validate=validate.Length(max=80))
    tier = fields.String(load_default="C", validate=validate.OneOf(TIERS))
    lifetime_value = fields.Decimal(
        places=2,
        validate=validate.Range(min=0),
        as_string=True,
        # apispec would write the bound as a string ("0.00"); OpenAPI wants a number.
        metadata={"minimum": 0},
    )
    owner_id = fields.Integer(allow_none=True, strict=True)
    marketing_opt_out = fields.Boolean(load_default=False)
    tags = _tags


class CustomerUpdateSchema(Schema):
    name = fields.String(validate=validate.Length(min=1, max=200))
    phones = fields.List(fields.String(validate=validate.Length(min=1, max=40)))
    emails = fields.List(fields.String(validate=validate.Length(min=3, max=320)))
    type = fields.String(validate=validate.OneOf(CUSTOMER_TYPES))
    status = fields.String(validate=validate.OneOf(CUSTOMER_STATUSES))
    region = fields.String(allow_none=True, validate=validate.Length(max=80))
    tier = fields.String(validate=validate.OneOf(TIERS))
    lifetime_value = fields.Decimal(
        places=2,
        validate=validate.Range(min=0),
        as_string=True,
        # apispec would write the bound as a string ("0.00"); OpenAPI wants a number.
        metadata={"minimum": 0},
    )
    owner_id = fields.Integer(allow_none=True, strict=True)
    marketing_opt_out = fields.Boolean()
    tags = fields.List(fields.String(validate=validate.Length(min=1, max=50)))


class CustomerSearchSchema(Schema):
    q = fields.String(load_default=None, validate=validate.Length(max=200))
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0))


class IdentitySchema(Schema):
    kind = fields.String()
    value = fields.String()


class OwnerSchema(Schema):
    id = fields.Integer()
    name = fields.String()


class CustomerSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    type = fields.String()
    status = fields.String()
    region = fields.String(allow_none=True)
    tier = fields.String()
    lifetime_value = fields.String()
    owner = fields.Nested(OwnerSchema, allow_none=True)
    marketing_opt_out = fields.Boolean()
    identities = fields.List(fields.Nested(IdentitySchema))
    tags = fields.List(fields.String())


class OpenTicketSchema(Schema):
    id = fields.Integer()
    number = fields.String()
    subject = fields.String()
    status = fields.String()
    priority = fields.String()
    next_breach_at = fields.String(allow_none=True)


class DeadlineSchema(Schema):
    name = fields.String()
    due_at = fields.String()
    met_at = fields.String(allow_none=True)


class ComplaintSummarySchema(Schema):
    id = fields.Integer()
    number = fields.String()
    status = fields.String()
    deadlines = fields.List(fields.Nested(DeadlineSchema))


class RecentInteractionSchema(Schema):
    id = fields.Integer()
    channel = fields.String()
    started_at = fields.String()
    queue = fields.String(allow_none=True)
    agent = fields.String(allow_none=True)
    outcome = fields.String(allow_none=True)
    duration_s = fields.Integer(allow_none=True)
    disposition = fields.String(allow_none=True)


class NoteSchema(Schema):
    at = fields.String()
    author = fields.String(allow_none=True)
    text = fields.String()


class NoteCreateSchema(Schema):
    text = fields.String(required=True, validate=validate.Length(min=1, max=10_000))


class SatisfactionSchema(Schema):
    last = fields.Integer(allow_none=True)
    average = fields.Float(allow_none=True)


class SuggestionSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    reason = fields.String()


class ScreenPopSchema(Schema):
    customer = fields.Nested(CustomerSchema, allow_none=True)
    suggestions = fields.List(fields.Nested(SuggestionSchema))
    open_tickets = fields.List(fields.Nested(OpenTicketSchema))
    complaints = fields.List(fields.Nested(ComplaintSummarySchema))
    recent_interactions = fields.List(fields.Nested(RecentInteractionSchema))
    notes = fields.List(fields.Nested(NoteSchema))
    satisfaction = fields.Nested(SatisfactionSchema)


class ImportQuerySchema(Schema):
    good_rows_only = fields.Boolean(load_default=False)


class ImportReportSchema(Schema):
    imported = fields.Integer()
    rejected = fields.Integer()
    complete = fields.Boolean()
    errors = fields.List(fields.Dict())


class TiersSchema(Schema):
    basis = fields.String(
        load_default="lifetime_value", validate=validate.OneOf(("lifetime_value", "interactions"))
    )


class JobSchema(Schema):
    job_id = fields.String()


class EraseSchema(Schema):
    reason = fields.String(
        required=True,
        validate=validate.Length(min=3, max=500),
        metadata={"description": "Why (e.g. the request's reference); kept in the audit trail"},
    )


class CustomerExportSchema(Schema):
    """Everything held about a customer (a subject access request)."""

    exported_at = fields.String()
    customer = fields.Dict()
    notes = fields.List(fields.Dict())
    tickets = fields.List(fields.Dict(), metadata={"description": "With every message and note"})
    complaints = fields.List(fields.Dict())
    interactions = fields.List(fields.Dict())
    surveys = fields.List(fields.Dict())
    audit = fields.List(fields.Dict(), metadata={"description": "Entries about them and theirs"})
    recording_deletions = fields.List(
        fields.Dict(),
        metadata={
            "description": "Their recordings deleted at Twilio (or pending, with the attempts "
            "and last error): recording_sid, reason, status, attempts, last_error, "
            "requested_at, deleted_at"
        },
    )
