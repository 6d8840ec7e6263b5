"""`GET /api/v1/reports/<kind>`: supervisors only, validated, JSON or a CSV download."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest

from contact_center.complaints import services as complaints
from contact_center.extensions import db
from contact_center.routing import services as routing
from contact_center.routing.models import Interaction

URL = "/api/v1/reports"
DAY = {"from": "2024-03-05", "to": "2024-03-05"}


@pytest.fixture
def supervisor(auth_header, create_user):
    return auth_header(create_user("sam", role="supervisor"))


@pytest.fixture
def calls(app, create_user):
    """A queue whose name a spreadsheet would run as a formula; two calls in it."""
    queue = routing.create_queue(name='=HYPERLINK("http://evil.test","Sales, east")')
    agent = create_user("alice", display_name="Alice")
    start = datetime(2024, 3, 5, 9, 0, tzinfo=UTC)
    db.session.add_all(
        [
            Interaction(
                channel="voice",
                queue_id=queue.id,
                agent_id=agent.id,
                status="ended",
                outcome="answered",
                enqueued_at=start,
                answered_at=start + timedelta(seconds=10),
                ended_at=start + timedelta(seconds=70),
                duration_s=60,
                satisfaction=4,
            ),
            Interaction(
                channel="voice",
                queue_id=queue.id,
                status="ended",
                outcome="abandoned",
                enqueued_at=start,
                ended_at=start + timedelta(seconds=30),
            ),
        ]
    )
    db.session.commit()
    return queue


def _error_fields(response) -> dict:
    assert response.status_code == 422, response.get_json()
    body = response.get_json()["error"]
    assert body["code"] == "validation_error"
    return body["fields"]


def test_roles(client, create_user, auth_header, supervisor):
    assert client.get(f"{URL}/daily", query_string=DAY).status_code == 401
    agent = auth_header(create_user("ann"))
    refused = client.get(f"{URL}/daily", query_string=DAY, headers=agent)
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "forbidden"
    admin = auth_header(create_user("ada", role="admin"))
    assert client.get(f"{URL}/daily", query_string=DAY, headers=admin).status_code == 200
    assert client.get(f"{URL}/daily", query_string=DAY, headers=supervisor).status_code == 200


def test_every_kind_answers(client, supervisor, calls):
    for kind in ("interval", "daily", "agents", "sla", "complaints"):
        response = client.get(f"{URL}/{kind}", query_string=DAY, headers=supervisor)
        assert response.status_code == 200, (kind, response.get_json())
        body = response.get_json()
        assert body["kind"] == kind and body["columns"] and "service_level" in body["definitions"]
        assert (body["start"], body["end"]) == ("2024-03-05T00:00:00Z", "2024-03-06T00:00:00Z")
    assert client.get(f"{URL}/weekly", query_string=DAY, headers=supervisor).status_code == 404


def test_daily_json(client, supervisor, calls):
    response = client.get(
        f"{URL}/daily", query_string={**DAY, "queue_id": calls.id}, headers=supervisor
    )
    body = response.get_json()
    assert body["queue_id"] == calls.id and body["tz"] == "UTC"
    total = body["totals"][-1]
    assert (total["offered"], total["answered"], total["abandoned"]) == (2, 1, 1)
    assert total["service_level"] == 0.5  # 1 answered in 20 s / (2 - 0 abandoned in 20 s)
    assert (total["asa_s"], total["aht_s"], total["csat"]) == (10.0, 60.0, 4.0)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"from": "2024-02-30", "to": "2024-03-01"}, "from"),
        ({"from": "yesterday", "to": "2024-03-01"}, "from"),
        ({"from": "2024-03-01"}, "to"),
        ({"from": "2024-03-05", "to": "2024-03-04"}, "to"),
        ({"from": "2024-01-01", "to": "2024-04-02"}, "to"),  # 93 days
        ({**DAY, "tz": "Mars/Olympus_Mons"}, "tz"),
        ({**DAY, "tz": "../../etc/passwd"}, "tz"),
        ({**DAY, "queue_id": "x"}, "queue_id"),
        ({**DAY, "format": "xlsx"}, "format"),
    ],
)
def test_validation(client, supervisor, query, field):
    fields = _error_fields(client.get(f"{URL}/interval", query_string=query, headers=supervisor))
    assert field in fields


def test_ninety_two_days_are_allowed(client, supervisor):
    query = {"from": "2024-01-01", "to": "2024-04-01", "tz": "Europe/London"}
    response = client.get(f"{URL}/daily", query_string=query, headers=supervisor)
    assert response.status_code == 200
    assert len([r for r in response.get_json()["rows"] if r["queue_id"] is None]) == 92


def _csv(response) -> list[list[str]]:
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    return list(csv.reader(io.StringIO(response.get_data(as_text=True))))


def test_csv_download_quotes_and_guards_formulas(client, supervisor, calls):
    response = client.get(f"{URL}/daily", query_string={**DAY, "format": "csv"}, headers=supervisor)
    assert response.headers["Content-Disposition"] == (
        'attachment; filename="report-daily-2024-03-05-2024-03-05.csv"'
    )
    text = response.get_data(as_text=True)
    assert '"\'=HYPERLINK(""http://evil.test"",""Sales, east"")"' in text
    header, *rows = _csv(response)
    assert header[:5] == ["period", "period_start", "queue_id", "queue", "sl_threshold_s"]
    queue_rows = [dict(zip(header, r, strict=True)) for r in rows if r[2] == str(calls.id)]
    day, total = queue_rows
    assert day["queue"] == '\'=HYPERLINK("http://evil.test","Sales, east")'
    assert (day["period"], day["offered"], day["service_level"]) == ("2024-03-05", "2", "0.5")
    assert total["period"] == "total" and total["period_start"] == ""
    assert not [cell for row in rows for cell in row if cell[:1] in ("=", "+", "@")]


def test_accept_text_csv_downloads_too(client, supervisor, calls):
    headers = {**supervisor, "Accept": "text/csv"}
    header, *rows = _csv(client.get(f"{URL}/agents", query_string=DAY, headers=headers))
    assert header[:2] == ["agent_id", "agent"]
    assert [r[1] for r in rows] == ["Alice", "All agents"]
    # format=json wins over the Accept header; a browser's */* gets JSON.
    as_json = client.get(f"{URL}/agents", query_string={**DAY, "format": "json"}, headers=headers)
    assert as_json.is_json and as_json.get_json()["rows"][0]["agent"] == "Alice"
    browser = {**supervisor, "Accept": "text/html,*/*;q=0.8"}
    assert client.get(f"{URL}/agents", query_string=DAY, headers=browser).is_json


def test_complaints_register_in_the_range(client, supervisor, calls):
    received = datetime(2024, 3, 5, 12, 0, tzinfo=UTC)
    complaint = complaints.register(
        {"category": "+billing", "channel_received": "phone", "received_at": received}, None
    )
    complaints.register(
        {
            "category": "late",
            "channel_received": "email",
            "received_at": received + timedelta(days=1),
        },
        None,
    )
    body = client.get(f"{URL}/complaints", query_string=DAY, headers=supervisor).get_json()
    (row,) = body["rows"]
    assert row["id"] == complaint.id and row["stage"] == "received"
    assert row["received_at"] == "2024-03-05T12:00:00Z"
    assert row["acknowledge_due"] and row["final_response_due"]
    # Long past and never met: both deadlines are overdue now.
    assert (row["acknowledgement"], row["final_response"]) == ("overdue", "overdue")
    assert body["totals"][0]["count"] == 1 and body["totals"][0]["final_response_overdue"] == 1
    header, *rows = _csv(
        client.get(f"{URL}/complaints", query_string={**DAY, "format": "csv"}, headers=supervisor)
    )
    assert len(rows) == 1 and dict(zip(header, rows[0], strict=True))["category"] == "'+billing"
