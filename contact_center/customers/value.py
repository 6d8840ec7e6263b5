"""Customer value: ABC tiers (top 5 % A, next 15 % B, the rest C) and CSV import.

Tiers feed routing: an A customer's call gets more priority credit than a C customer's.
"""

from __future__ import annotations

import csv
import io
import logging
from typing import Any

import sqlalchemy as sa
from marshmallow import ValidationError

from contact_center.customers.models import Customer, CustomerIdentity
from contact_center.customers.schemas import CustomerCreateSchema
from contact_center.customers.services import _normalised_identities, find_by_identity
from contact_center.errors import APIError
from contact_center.extensions import db

log = logging.getLogger(__name__)
TIER_SHARES = (("A", 0.05), ("B", 0.15))  # the rest is C
VALUE_BASES = ("lifetime_value", "interactions")
CHUNK = 5000
MAX_IMPORT_ROWS = 100_000
CSV_FIELDS = ("name", "phones", "emails", "type", "status", "region", "lifetime_value", "tags")


def _ranked_ids(basis: str) -> list[int]:
    """Customer ids from the most to the least valuable (ties: the older customer first)."""
    if basis == "lifetime_value":
        query = sa.select(Customer.id).order_by(Customer.lifetime_value.desc(), Customer.id)
    else:
        from contact_center.routing.models import Interaction

        count = sa.func.count(Interaction.id)
        query = (
            sa.select(Customer.id)
            .outerjoin(Interaction, Interaction.customer_id == Customer.id)
            .group_by(Customer.id)
            .order_by(count.desc(), Customer.id)
        )
    return list(db.session.scalars(query))


def compute_tiers(basis: str = "lifetime_value") -> dict[str, int]:
    """Set every customer's tier from their rank by value; returns the count per tier."""
    if basis not in VALUE_BASES:
        raise ValueError(f"basis must be one of {VALUE_BASES}")
    ranked = _ranked_ids(basis)
    total = len(ranked)
    counts: dict[str, int] = {}
    start = 0
    db.session.execute(sa.update(Customer).values(tier="C"))
    for tier, share in TIER_SHARES:
        size = round(total * share)
        ids = ranked[start : start + size]
        for offset in range(0, len(ids), CHUNK):
            chunk = ids[offset : offset + CHUNK]
            db.session.execute(sa.update(Customer).where(Customer.id.in_(chunk)).values(tier=tier))
        counts[tier] = len(ids)
        start += size
    counts["C"] = total - start
    db.session.commit()
    log.info("customer tiers by %s: %s", basis, counts)
    return counts


def recompute_tiers_job(basis: str = "lifetime_value") -> dict[str, int]:
    """RQ job: recompute the tiers."""
    return compute_tiers(basis)


def _row_data(row: dict[str, str]) -> dict[str, Any]:
    def split(value: str | None) -> list[str]:
        return [part.strip() for part in (value or "").split(";") if part.strip()]

    data: dict[str, Any] = {"name": (row.get("name") or "").strip()}
    data["phones"], data["emails"], data["tags"] = (
        split(row.get("phones")),
        split(row.get("emails")),
        split(row.get("tags")),
    )
    for key in ("type", "status", "region"):
        if row.get(key):
            data[key] = row[key].strip()
    if row.get("lifetime_value"):
        data["lifetime_value"] = row["lifetime_value"].strip()
    return data


def import_csv(text: str, *, good_rows_only: bool) -> dict[str, Any]:
    """Import customers from CSV. Every bad row is reported with its line number and fields.

    By default nothing is imported when any row is bad; with `good_rows_only` the good rows
    are imported and the report says which were left out.
    """
    # newline="": the csv module reads line ends itself (a quoted field may hold one).
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        return _import_rows(reader, good_rows_only=good_rows_only)
    except csv.Error as exc:
        raise APIError(
            422,
            "The CSV could not be read.",
            # line_num counts the lines read before the one that failed.
            fields={"csv": [f"Line {reader.line_num + 1}: {exc}."]},
        ) from None


def _import_rows(reader: csv.DictReader, *, good_rows_only: bool) -> dict[str, Any]:
    missing = {"name"} - set(reader.fieldnames or [])
    if missing:
        raise APIError(
            422,
            "The CSV needs a header row with at least: name.",
            fields={"header": sorted(missing)},
        )
    unknown = set(reader.fieldnames or []) - set(CSV_FIELDS)
    if unknown:
        raise APIError(
            422,
            "Unknown columns.",
            fields={
                "header": [f"Unknown: {', '.join(sorted(unknown))}; use {', '.join(CSV_FIELDS)}."]
            },
        )
    schema = CustomerCreateSchema()
    errors: list[dict[str, Any]] = []
    good: list[tuple[dict[str, Any], list[tuple[str, str]]]] = []
    seen: dict[tuple[str, str], int] = {}
    for line, row in enumerate(reader, start=2):  # line 1 is the header
        if line - 1 > MAX_IMPORT_ROWS:
            raise APIError(413, f"At most {MAX_IMPORT_ROWS} rows per import.")
        try:
            data = schema.load(_row_data(row))
            identities = _normalised_identities(data.pop("phones"), data.pop("emails"))
        except ValidationError as exc:
            errors.append({"line": line, "fields": exc.messages})
            continue
        except APIError as exc:
            errors.append({"line": line, "fields": exc.fields})
            continue
        clash = [
            f"{kind} {value} is also on line {seen[(kind, value)]}"
            for kind, value in identities
            if (kind, value) in seen
        ]
        taken = _taken(identities)
        if clash or taken:
            errors.append({"line": line, "fields": {"identities": clash + taken}})
            continue
        for identity in identities:
            seen[identity] = line
        good.append((data, identities))
    imported = 0
    if good and (good_rows_only or not errors):
        for data, identities in good:
            customer = Customer(**data)
            customer.identities = [CustomerIdentity(kind=k, value=v) for k, v in identities]
            db.session.add(customer)
        db.session.commit()
        imported = len(good)
    return {
        "imported": imported,
        "rejected": len(errors),
        "errors": errors,
        "complete": not errors,
    }


def _taken(identities: list[tuple[str, str]]) -> list[str]:
    owners = [(kind, value, find_by_identity(kind, value)) for kind, value in identities]
    return [
        f"{kind} {value} belongs to customer {owner.id}"
        for kind, value, owner in owners
        if owner is not None
    ]
