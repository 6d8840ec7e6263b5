"""Customers API: create, search by any phone format, update, history, bad input."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from contact_center.customers.models import Customer, CustomerNote
from contact_center.customers.services import mask, normalise_phone
from contact_center.extensions import db
from contact_center.routing.models import Interaction


@pytest.fixture
def headers(create_user, auth_header):
    return auth_header(create_user("alice", display_name="Alice Archer"))


def _count_customers() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(Customer))


def test_phone_formats_find_one_person(client, headers):
    created = client.post(
        "/api/v1/customers",
        headers=headers,
        json={
            "name": "Margaret Holloway",
            "phones": ["+44 20 7946 0018"],
            "emails": ["M.Holloway@Example.co.uk"],
            "tier": "A",
            "tags": ["vip"],
        },
    )
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert {"kind": "phone", "value": "+442079460018"} in body["identities"]
    assert {"kind": "email", "value": "m.holloway@example.co.uk"} in body["identities"]
    client.post(
        "/api/v1/customers",
        headers=headers,
        json={"name": "Someone Else", "phones": ["+44 161 496 0321"]},
    )
    for query in (
        "+44 20 7946 0018",
        "020 7946 0018",
        "00442079460018",
        "Holloway",
        "m.holloway@EXAMPLE.co.uk",
    ):
        found = client.get("/api/v1/customers", headers=headers, query_string={"q": query})
        assert found.status_code == 200
        assert [c["id"] for c in found.get_json()] == [body["id"]], query


def test_region_default_applies_to_national_numbers(app):
    assert normalise_phone("020 7946 0018") == "+442079460018"
    assert normalise_phone("020 7946 0018", "DE") != "+442079460018"
    assert normalise_phone("not a number") is None


def test_logs_never_see_full_numbers_or_addresses():
    assert "7946" not in mask("+442079460018")
    assert mask("someone@example.com") == "s***@example.com"


def test_get_and_patch(client, headers):
    customer_id = client.post(
        "/api/v1/customers", headers=headers, json={"name": "Wei Zhang"}
    ).get_json()["id"]
    patched = client.patch(
        f"/api/v1/customers/{customer_id}",
        headers=headers,
        json={"tier": "B", "phones": ["0161 496 0321"], "region": "Manchester"},
    )
    assert patched.status_code == 200
    got = client.get(f"/api/v1/customers/{customer_id}", headers=headers).get_json()
    assert got["tier"] == "B"
    assert got["region"] == "Manchester"
    assert got["identities"] == [{"kind": "phone", "value": "+441614960321"}]
    assert client.get("/api/v1/customers/99999", headers=headers).status_code == 404


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "X", "tier": "Z"}, "tier"),
        ({"name": "X", "phones": ["not a phone"]}, "phones"),
        ({"name": "X", "emails": ["nope"]}, "emails"),
        ({"name": "X", "owner_id": 424242}, "owner_id"),
        ({"name": "X", "owner_id": "1"}, "owner_id"),
        ({"name": "X", "unknown": 1}, "unknown"),
        ({"name": "X", "lifetime_value": "-5"}, "lifetime_value"),
    ],
)
def test_invalid_create_is_422_and_writes_nothing(client, headers, payload, field):
    response = client.post("/api/v1/customers", headers=headers, json=payload)
    assert response.status_code == 422, response.get_json()
    error = response.get_json()["error"]
    assert error["code"] == "validation_error"
    assert field in error["fields"]
    assert _count_customers() == 0


def test_malformed_json_is_400(client, headers):
    response = client.post(
        "/api/v1/customers", headers=headers, data="{", content_type="application/json"
    )
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "bad_request"
    assert _count_customers() == 0


def test_identity_of_another_customer_is_a_conflict(client, headers):
    client.post("/api/v1/customers", headers=headers, json={"name": "A", "phones": ["02079460018"]})
    second = client.post(
        "/api/v1/customers", headers=headers, json={"name": "B", "phones": ["+44 20 7946 0018"]}
    )
    assert second.status_code == 409
    assert second.get_json()["error"]["code"] == "conflict"
    assert _count_customers() == 1


def test_history_is_the_screen_pop(client, headers, create_user):
    bob = create_user("bob", display_name="Bob Chen")
    customer_id = client.post(
        "/api/v1/customers",
        headers=headers,
        json={"name": "Wei Zhang", "phones": ["+441614960321"]},
    ).get_json()["id"]
    db.session.add(CustomerNote(customer_id=customer_id, author_id=bob.id, text="Prefers zh."))
    db.session.add(
        Interaction(
            channel="voice",
            external_id="x1",
            customer_id=customer_id,
            status="ended",
            outcome="answered",
            duration_s=61,
            disposition="resolved",
            agent_id=bob.id,
            satisfaction=4,
        )
    )
    db.session.add(
        Interaction(
            channel="email",
            external_id="x2",
            customer_id=customer_id,
            status="ended",
            outcome="answered",
            satisfaction=2,
        )
    )
    db.session.commit()
    history = client.get(f"/api/v1/customers/{customer_id}/history", headers=headers).get_json()
    assert set(history) >= {
        "customer",
        "open_tickets",
        "complaints",
        "recent_interactions",
        "notes",
        "satisfaction",
    }
    assert history["customer"]["name"] == "Wei Zhang"
    assert history["notes"][0] == {
        "at": history["notes"][0]["at"],
        "author": "Bob Chen",
        "text": "Prefers zh.",
    }
    assert history["notes"][0]["at"].endswith("Z")
    voice = next(i for i in history["recent_interactions"] if i["channel"] == "voice")
    assert voice["agent"] == "Bob Chen"
    assert voice["duration_s"] == 61
    assert history["satisfaction"]["average"] == 3.0


def test_search_validates_query_arguments(client, headers):
    response = client.get("/api/v1/customers", headers=headers, query_string={"limit": "0"})
    assert response.status_code == 422
    assert "limit" in response.get_json()["error"]["fields"]


def test_openapi_document_lists_the_api(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    assert "/api/v1/customers" in spec["paths"]
    assert "/api/v1/customers/{customer_id}/history" in spec["paths"]
    assert "/api/v1/auth/tokens" in spec["paths"]


def test_openapi_documents_the_error_format(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    error = spec["components"]["schemas"]["Error"]
    assert "error" in error["properties"]
