"""Complaints: regulatory clocks on the business calendar, the process, the letter, the register."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from email import message_from_bytes, policy

import pytest

from contact_center.complaints import services
from contact_center.complaints.profiles import PROFILES
from contact_center.customers.services import create_customer, find_by_identity
from contact_center.errors import APIError
from contact_center.extensions import db
from contact_center.tickets.models import Ticket

RECEIVED = "2026-12-24T11:00:00+00:00"  # Thursday before Christmas (London is on UTC)


def utc(*parts) -> datetime:
    return datetime(*parts, tzinfo=UTC)


@pytest.fixture
def api(client, auth_header, create_user):
    headers = auth_header(create_user("alice", display_name="Alice Smith"))

    def call(method: str, url: str, **kwargs):
        response = getattr(client, method)(url, headers=headers, **kwargs)
        return response

    return call


def _register(api, **data):
    customer = find_by_identity("email", "mei@example.org") or create_customer(
        {"name": "Mei Chen", "emails": ["mei@example.org"]}
    )
    body = {
        "customer_id": customer.id,
        "category": "card_delivery",
        "channel_received": "phone",
        "received_at": RECEIVED,
        **data,
    }
    response = api("post", "/api/v1/complaints", json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def _due(complaint: dict) -> dict[str, str]:
    return {d["name"]: d["due_at"] for d in complaint["deadlines"]}


def test_fca_clock_counts_business_days_past_weekend_and_bank_holidays(app, api):
    complaint = _register(api)
    due = _due(complaint)
    # 25 Dec (Fri) and 28 Dec (Boxing Day observed, Mon) are bank holidays; 26-27 a weekend.
    assert due["acknowledgement"] == "2026-12-29T17:00:00Z"
    assert due["summary_resolution"] == "2026-12-31T17:00:00Z"  # third business day after
    assert due["final_response"] == "2027-02-18T11:00:00Z"  # eight weeks, calendar time
    assert "ombudsman_referral" not in due  # starts with the final response


def test_payment_services_clock_and_exceptional_circumstances(app, api):
    complaint = _register(api, profile="uk_fca_psd")
    # 15 business days after 24 Dec: 29, 30, 31 Dec, then Jan 4-8, 11-15, 18, 19 (1 Jan off).
    assert _due(complaint)["final_response"] == "2027-01-19T17:00:00Z"
    moved = api("patch", f"/api/v1/complaints/{complaint['id']}", json={"exceptional": True})
    assert _due(moved.get_json())["final_response"] == "2027-02-16T17:00:00Z"  # 35 days

    disp = _register(api)
    refused = api("patch", f"/api/v1/complaints/{disp['id']}", json={"exceptional": True})
    assert refused.status_code == 409


def test_profiles_in_summer_use_british_summer_time(app):
    profile = PROFILES["uk_fca_disp"]
    received = utc(2026, 7, 2, 15, 0)  # Thursday 16:00 in London
    deadlines = profile.deadlines(received)
    assert deadlines["acknowledge_due"] == utc(2026, 7, 3, 16, 0)  # Friday 17:00 BST
    assert deadlines["summary_resolution_due"] == utc(2026, 7, 7, 16, 0)  # Tuesday


def test_the_process_from_receipt_to_follow_up(app, api, smtp_server, run_jobs):
    complaint = _register(api)
    url = f"/api/v1/complaints/{complaint['id']}"
    ticket = db.session.get(Ticket, complaint["ticket_id"])
    assert ticket.type == "complaint" and ticket.priority == "high"

    acknowledged = api("patch", url, json={"stage": "acknowledged"}).get_json()
    assert acknowledged["acknowledged_at"] is not None
    met = {d["name"]: d["met_at"] for d in acknowledged["deadlines"]}
    assert met["acknowledgement"] is not None
    assert api("post", f"{url}/final-response").status_code == 409  # no outcome yet
    api("patch", url, json={"stage": "investigating"})
    assert api("patch", url, json={"stage": "received"}).status_code == 409  # no going back
    handled = api(
        "patch",
        url,
        json={
            "root_cause": "Courier lost the card.",
            "remedy": "We sent a new card by tracked post.",
            "compensation_amount": "50.00",
            "outcome": "upheld",
        },
    ).get_json()
    assert handled["compensation_amount"] == "50.00"

    letter = api("get", f"{url}/final-response").get_json()["body"]
    assert "your complaint is upheld" in letter and "£50.00" in letter
    assert "Financial Ombudsman Service" in letter and "Alice Smith" in letter
    sent = api("post", f"{url}/final-response").get_json()
    assert sent["stage"] == "responded"
    referral = _due(sent)["ombudsman_referral"]
    assert referral > sent["final_response_at"]
    run_jobs()
    assert len(smtp_server.messages) == 1
    mailed = message_from_bytes(smtp_server.messages[0].content, policy=policy.default)
    assert "Financial Ombudsman Service" in mailed.get_content()
    assert api("post", f"{url}/final-response").status_code == 409  # once

    closed = api("post", f"{url}/close").get_json()
    assert closed["stage"] == "closed" and closed["follow_up_due"] > closed["closed_at"]
    db.session.expire_all()
    assert ticket.status == "solved"
    followed = api("post", f"{url}/follow-up", json={"satisfaction": 4}).get_json()
    assert followed["follow_up_satisfaction"] == 4
    assert api("post", f"{url}/follow-up", json={"satisfaction": 9}).status_code == 422
    trail = api("get", f"/api/v1/tickets/{ticket.id}/audit").get_json()
    assert trail[0]["action"] == "ticket.created"


def test_final_response_template_refuses_to_render_without_the_ombudsman_wording(
    app, api, client, auth_header, create_user
):
    admin = auth_header(create_user("ada", role="admin"))
    without = "Dear {customer_name}, your complaint is {outcome}. Regards, {agent_name}"
    refused = client.put(
        "/api/v1/complaints/settings",
        json={"profile": "uk_fca_disp", "final_response_template": without},
        headers=admin,
    )
    assert refused.status_code == 422
    reasons = refused.get_json()["error"]["fields"]["final_response_template"]
    assert any("ombudsman" in reason for reason in reasons)
    assert len(reasons) == 3  # the date, the name and the website are all missing

    complaint = _register(api)
    api("patch", f"/api/v1/complaints/{complaint['id']}", json={"outcome": "rejected"})
    with pytest.raises(APIError) as error:
        services.render_final_response(
            services.get_complaint(complaint["id"]), "Alice", template=without
        )
    assert error.value.status == 422
    letter = services.render_final_response(services.get_complaint(complaint["id"]), "Alice")
    assert "not upheld" in letter


def test_register_filters_and_exports_csv(app, api):
    first = _register(api, category="fees")
    _register(api, category="card_delivery", received_at="2026-09-01T09:00:00+00:00")
    api("patch", f"/api/v1/complaints/{first['id']}", json={"outcome": "partly_upheld"})
    fees = api("get", "/api/v1/complaints?category=fees").get_json()
    assert [c["id"] for c in fees] == [first["id"]]
    overdue = api("get", "/api/v1/complaints?overdue=true").get_json()
    assert [c["category"] for c in overdue] == ["card_delivery"]  # received in September
    export = api("get", "/api/v1/complaints?format=csv")
    assert export.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(export.get_data(as_text=True))))
    assert [r["category"] for r in rows] == ["card_delivery", "fees"]  # oldest first
    assert rows[1]["outcome"] == "partly_upheld" and rows[1]["final_response_due"].endswith("Z")
    assert api("get", "/api/v1/complaints?stage=lost").status_code == 422


def test_screen_pop_shows_complaints_with_their_clocks(app, api):
    complaint = _register(api)
    ticket = db.session.get(Ticket, complaint["ticket_id"])
    history = api("get", f"/api/v1/customers/{ticket.customer_id}/history").get_json()
    [shown] = history["complaints"]
    assert shown["number"] == ticket.number and shown["status"] == "received"
    assert {d["name"] for d in shown["deadlines"]} >= {"acknowledgement", "final_response"}
    assert [t["number"] for t in history["open_tickets"]] == [ticket.number]


def test_bad_registrations_change_nothing(app, api):
    assert api("post", "/api/v1/complaints", json={"category": "x"}).status_code == 422
    bad_ticket = {"ticket_id": 999, "category": "x", "channel_received": "phone"}
    assert api("post", "/api/v1/complaints", json=bad_ticket).status_code == 422
    assert db.session.query(Ticket).count() == 0


def test_calendar_periods_keep_the_local_hour_across_dst(app):
    profile = PROFILES["uk_fca_disp"]
    received = utc(2026, 10, 1, 9, 0)  # 10:00 in London (BST)
    final = profile.deadlines(received)["final_response_due"]
    assert final == utc(2026, 11, 26, 10, 0)  # 10:00 in London (GMT), eight weeks on
    # Sent 23:30 on 30 November (GMT): six months on the London clock is 30 May, 23:30 BST
    # (22:30 UTC); counting in UTC would have made it the 31st in London.
    ombudsman = profile.ombudsman_deadline(utc(2026, 11, 30, 23, 30))
    assert ombudsman == utc(2027, 5, 30, 22, 30)
    assert profile.local_date(ombudsman) == "30 May 2027"
    assert profile.local_date(utc(2026, 10, 20, 23, 30)) == "21 October 2026"


def test_templates_with_unknown_placeholders_or_format_specs_are_refused(
    app, client, auth_header, create_user
):
    admin = auth_header(create_user("ada", role="admin"))
    base = services.DEFAULT_FINAL_RESPONSE
    for template in (base + " {secret}", base + " {remedy:>999999999}", base + " {remedy!r}"):
        refused = client.put(
            "/api/v1/complaints/settings",
            json={"profile": "uk_fca_disp", "final_response_template": template},
            headers=admin,
        )
        assert refused.status_code == 422, template
