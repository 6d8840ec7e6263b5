"""Business calendars over the API: admin writes, validation, due-time arithmetic."""

from __future__ import annotations

import sqlalchemy as sa

from contact_center.extensions import db
from contact_center.sla.models import BusinessCalendar

ENGLAND = {
    "name": "England office",
    "timezone": "Europe/London",
    "windows": {day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")},
    "country": "GB",
    "subdivision": "ENG",
    "closed_dates": ["2026-12-24"],
}


def test_admins_define_calendars_and_anyone_can_ask_when_work_is_due(
    app, client, auth_header, create_user
):
    admin = auth_header(create_user("ada", role="admin"))
    agent = auth_header(create_user("alice"))
    assert client.post("/api/v1/calendars", json=ENGLAND, headers=agent).status_code == 403
    created = client.post("/api/v1/calendars", json=ENGLAND, headers=admin)
    assert created.status_code == 201, created.get_json()
    calendar_id = created.get_json()["id"]
    assert client.post("/api/v1/calendars", json=ENGLAND, headers=admin).status_code == 409

    # Wednesday 23 Dec 16:00: one hour left that day; 24 Dec is closed by the company,
    # 25-28 are a weekend and bank holidays, so the second hour is 29 Dec 09:00-10:00.
    due = client.post(
        f"/api/v1/calendars/{calendar_id}/add-minutes",
        json={"start": "2026-12-23T16:00:00Z", "minutes": 120},
        headers=agent,
    ).get_json()
    assert due["due_at"] == "2026-12-29T10:00:00Z"

    changed = {**ENGLAND, "closed_dates": []}
    assert (
        client.put(f"/api/v1/calendars/{calendar_id}", json=changed, headers=admin).status_code
        == 200
    )
    due = client.post(
        f"/api/v1/calendars/{calendar_id}/add-minutes",
        json={"start": "2026-12-23T16:00:00Z", "minutes": 120},
        headers=agent,
    ).get_json()
    assert due["due_at"] == "2026-12-24T10:00:00Z"
    listed = client.get("/api/v1/calendars", headers=agent).get_json()
    assert [c["name"] for c in listed] == ["England office"]


def test_bad_calendars_are_refused_and_change_nothing(app, client, auth_header, create_user):
    admin = auth_header(create_user("ada", role="admin"))
    for bad in (
        {**ENGLAND, "timezone": "Mars/Olympus"},
        {**ENGLAND, "country": "XX"},
        {**ENGLAND, "windows": {"mon": [["9am", "5pm"]]}},
        {**ENGLAND, "windows": {"funday": [["09:00", "17:00"]]}},
        {**ENGLAND, "closed_dates": ["tomorrow"]},
    ):
        assert client.post("/api/v1/calendars", json=bad, headers=admin).status_code == 422, bad
    never = {**ENGLAND, "name": "never", "windows": {}, "country": None, "subdivision": None}
    created = client.post("/api/v1/calendars", json=never, headers=admin).get_json()
    refused = client.post(
        f"/api/v1/calendars/{created['id']}/add-minutes",
        json={"start": "2026-12-23T16:00:00Z", "minutes": 1},
        headers=admin,
    )
    assert refused.status_code == 409
    assert db.session.scalar(sa.select(sa.func.count()).select_from(BusinessCalendar)) == 1


def test_each_error_names_its_field(app, client, auth_header, create_user):
    """The configuration page puts each message next to the input it names."""
    admin = auth_header(create_user("ada", role="admin"))

    def fields_of(body: dict) -> dict:
        refused = client.post("/api/v1/calendars", json=body, headers=admin)
        assert refused.status_code == 422
        return refused.get_json()["error"]["fields"]

    assert fields_of({**ENGLAND, "timezone": "Mars/Olympus"}) == {"timezone": "Unknown time zone."}
    assert fields_of({**ENGLAND, "country": "XX"}) == {"country": "Unknown country."}
    assert fields_of({**ENGLAND, "subdivision": "ZZZ"}) == {
        "subdivision": "Unknown subdivision of GB."
    }
    windows = fields_of({**ENGLAND, "windows": {"mon": [["09:00", "5pm"]]}})
    assert windows == {"windows": {"mon": {"value": {"0": {"1": ["Times are HH:MM."]}}}}}
