"""Customers: identities, search, and the screen pop."""

from __future__ import annotations

import re
from typing import Any

import phonenumbers
import sqlalchemy as sa
from flask import current_app

from contact_center.agents.models import User
from contact_center.agents.services import hidden_queue_ids, readable_by
from contact_center.customers import screen_pop
from contact_center.customers.models import (
    ERASED_STATUS,
    PHONE_TAIL_DIGITS,
    Customer,
    CustomerIdentity,
    CustomerNote,
    phone_tail,
)
from contact_center.db_types import contains, isoformat
from contact_center.errors import APIError, Conflict, NotFound
from contact_center.extensions import db
from contact_center.reads import execute_read
from contact_center.tickets.models import Ticket


def normalise_phone(raw: str, region: str | None = None) -> str | None:
    """A phone number in E.164, or None when it cannot be one."""
    region = region or current_app.config["PHONE_DEFAULT_REGION"]
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_email(raw: str) -> str | None:
    """An email address lower-cased, or None when it does not look like one."""
    value = raw.strip().lower()
    local, at, domain = value.partition("@")
    if not at or not local or "." not in domain or " " in value:
        return None
    return value


def mask(value: str | None) -> str:
    """A phone number or address shortened for logs: never written in full."""
    if not value:
        return "-"
    if "@" in value:
        local, _, domain = value.partition("@")
        return f"{local[:1]}***@{domain}"
    return f"{value[:3]}***{value[-2:]}" if len(value) > 6 else "***"


# Phone numbers (7+ characters, with the usual separators) and email addresses inside free text.
# Not inside a word: a CallSid's hex digits are not a number.
_PHONE_IN_TEXT = re.compile(r"(?<![\w+])\+?\d[\d ().-]{5,}\d(?!\w)")
_EMAIL_IN_TEXT = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


def scrub(text: str | None) -> str:
    """Free text for logs (a provider's error message) with numbers and addresses masked."""
    if not text:
        return "-"
    text = _EMAIL_IN_TEXT.sub(lambda m: mask(m.group()), text)
    return _PHONE_IN_TEXT.sub(lambda m: mask(re.sub(r"[^\d+]", "", m.group())), text)


def _normalised_identities(phones: list[str], emails: list[str]) -> list[tuple[str, str]]:
    identities: list[tuple[str, str]] = []
    errors: dict[str, Any] = {}
    for index, raw in enumerate(phones):
        value = normalise_phone(raw)
        if value is None:
            errors.setdefault("phones", {})[index] = ["Not a valid phone number."]
        else:
            identities.append(("phone", value))
    for index, raw in enumerate(emails):
        value = normalise_email(raw)
        if value is None:
            errors.setdefault("emails", {})[index] = ["Not a valid email address."]
        else:
            identities.append(("email", value))
    if errors:
        raise APIError(422, "Some identities are invalid.", fields=errors)
    return list(dict.fromkeys(identities))


def _check_identities_free(identities: list[tuple[str, str]], customer_id: int | None) -> None:
    for kind, value in identities:
        owner = db.session.scalar(
            sa.select(CustomerIdentity.customer_id).where(
                CustomerIdentity.kind == kind, CustomerIdentity.value == value
            )
        )
        if owner is not None and owner != customer_id:
            raise Conflict(
                f"That {kind} belongs to another customer.",
                fields={f"{kind}s": [f"Already used by customer {owner}."]},
            )


def _check_owner(owner_id: int | None) -> None:
    if owner_id is not None and db.session.get(User, owner_id) is None:
        raise APIError(422, "Unknown owner.", fields={"owner_id": ["No such user."]})


def create_customer(data: dict[str, Any]) -> Customer:
    """Create a customer with normalised identities; refuses identities already in use."""
    identities = _normalised_identities(data.pop("phones", []), data.pop("emails", []))
    _check_identities_free(identities, None)
    _check_owner(data.get("owner_id"))
    customer = Customer(**data)
    customer.identities = [CustomerIdentity(kind=k, value=v) for k, v in identities]
    db.session.add(customer)
    db.session.commit()
    return customer


def update_customer(customer: Customer, data: dict[str, Any]) -> Customer:
    """Apply a partial update; phones and emails, when given, replace the old ones."""
    refuse_if_erased(customer)
    if "phones" in data or "emails" in data:
        phones = data.pop("phones", customer.identity_values("phone"))
        emails = data.pop("emails", customer.identity_values("email"))
        identities = _normalised_identities(phones, emails)
        _check_identities_free(identities, customer.id)
        kept = {(i.kind, i.value): i for i in customer.identities}
        customer.identities = [
            kept.get((kind, value)) or CustomerIdentity(kind=kind, value=value)
            for kind, value in identities
        ]
    if "owner_id" in data:
        _check_owner(data["owner_id"])
    for key, value in data.items():
        setattr(customer, key, value)
    db.session.commit()
    return customer


def refuse_if_erased(customer: Customer) -> None:
    """409 for an erased customer: nothing personal may be attached to them again."""
    if customer.status == ERASED_STATUS:
        raise Conflict("This customer was erased and cannot be changed.")


def get_customer(customer_id: int) -> Customer:
    """The customer, or 404."""
    customer = db.session.get(Customer, customer_id)
    if customer is None:
        raise NotFound("No such customer.")
    return customer


def find_by_identity(kind: str, value: str) -> Customer | None:
    """The customer owning a normalised phone or email."""
    return db.session.scalar(
        sa.select(Customer)
        .join(CustomerIdentity)
        .where(CustomerIdentity.kind == kind, CustomerIdentity.value == value)
    )


def identify_caller(raw_number: str | None) -> Customer | None:
    """The customer calling from this number (any format), if known."""
    if not raw_number:
        return None
    e164 = normalise_phone(raw_number)
    return find_by_identity("phone", e164) if e164 else None


def search_customers(
    query: str | None, limit: int = 50, offset: int = 0, reader: User | None = None
) -> list[Customer]:
    """Customers whose name contains `query`, who own it as a phone (any format) or email, or
    whose ticket has it as its number (a ticket `reader` may read)."""
    statement = sa.select(Customer).order_by(Customer.name, Customer.id)
    query = (query or "").strip()
    if query:
        conditions = [contains(Customer.name, query)]
        phone = normalise_phone(query) if any(ch.isdigit() for ch in query) else None
        if phone:
            conditions.append(_has_identity("phone", phone))
        email = normalise_email(query)
        if email:
            conditions.append(_has_identity("email", email))
        numbered = sa.select(Ticket.customer_id).where(Ticket.number == query.lstrip("#"))
        if reader is not None:
            numbered = numbered.where(readable_by(reader, Ticket.queue_id, Ticket.assignee_id))
        conditions.append(Customer.id.in_(numbered))
        statement = statement.where(sa.or_(*conditions))
    return list(db.session.scalars(statement.limit(limit).offset(offset)))


def _has_identity(kind: str, value: str) -> sa.ColumnElement[bool]:
    return Customer.identities.any(
        sa.and_(CustomerIdentity.kind == kind, CustomerIdentity.value == value)
    )


def _phone_matches(e164: str, limit: int = 5) -> list[sa.Row]:
    """Customers with this number (first) or, for a full number, one ending the same way:
    one indexed read, for the screen pop of a caller known or not."""
    exact = CustomerIdentity.value == e164
    matching = phone_tail(CustomerIdentity.value) == e164[-PHONE_TAIL_DIGITS:]
    statement = (
        sa.select(Customer.id, Customer.name, exact.label("exact"))
        .join(CustomerIdentity)
        .where(CustomerIdentity.kind == "phone", matching if len(e164) >= 8 else exact)
        .order_by(exact.desc(), Customer.id)
        .limit(limit)
    )
    return list(execute_read(statement, {}))


def customer_summary(customer: Customer) -> dict[str, Any]:
    """The `customer` object of the screen pop."""
    return {
        "id": customer.id,
        "name": customer.name,
        "type": customer.type,
        "status": customer.status,
        "region": customer.region,
        "tier": customer.tier,
        "lifetime_value": str(customer.lifetime_value),
        "owner": (
            {"id": customer.owner.id, "name": customer.owner.display_name}
            if customer.owner
            else None
        ),
        "marketing_opt_out": customer.marketing_opt_out,
        "identities": [{"kind": i.kind, "value": i.value} for i in customer.identities],
        "tags": list(customer.tags or []),
    }


def history(
    customer: Customer | int,
    exclude_interaction_id: int | None = None,
    reader: User | None = None,
) -> dict[str, Any]:
    """The screen pop: everything an agent should see when this customer calls.

    Takes the customer or its id (an id spares loading the customer first);
    `exclude_interaction_id` leaves out the interaction the screen pop is shown for; a
    `reader` sees no record of a restricted queue they may not read (see can_read).
    """
    customer_id = customer if isinstance(customer, int) else customer.id
    hidden = hidden_queue_ids(reader) if reader is not None else []
    pop = screen_pop.read(customer_id, exclude_interaction_id, hidden, reader and reader.id)
    if pop is None:
        raise NotFound("No such customer.")
    return pop


def screen_pop_for_caller(
    raw_number: str | None,
    exclude_interaction_id: int | None = None,
    reader: User | None = None,
) -> dict[str, Any]:
    """The screen pop for a caller: their history, or suggestions when unknown."""
    e164 = normalise_phone(raw_number) if raw_number else None
    matches = _phone_matches(e164) if e164 else []
    if matches and matches[0].exact:
        return history(matches[0].id, exclude_interaction_id, reader)
    return {
        "customer": None,
        "suggestions": [
            {"id": m.id, "name": m.name, "reason": "phone number ends the same"} for m in matches
        ],
        "open_tickets": [],
        "complaints": [],
        "recent_interactions": [],
        "notes": [],
        "satisfaction": {"last": None, "average": None},
    }


def add_note(customer: Customer, author: User | None, text: str) -> CustomerNote:
    """Add a note to a customer's record."""
    refuse_if_erased(customer)
    note = CustomerNote(customer_id=customer.id, author_id=author.id if author else None, text=text)
    db.session.add(note)
    db.session.commit()
    return note


def note_view(note: CustomerNote) -> dict[str, Any]:
    """A note as the screen pop shows it: {at, author, text}."""
    return {
        "at": isoformat(note.created_at),
        "author": note.author.display_name if note.author else None,
        "text": note.text,
    }
