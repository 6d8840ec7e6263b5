"""The calendar, SLA policy and IVR flow pages: supervisors and admins only (agents get 403,
signed-out users go to login); each lists what is stored, admins also get the forms."""

from __future__ import annotations

import json

import pytest

from contact_center.extensions import db
from contact_center.ivr import flows
from contact_center.routing import services as routing
from contact_center.sla.models import BusinessCalendar, SlaPolicy
from tests.web.test_config_pages import _sign_in

PAGES = ["/admin/calendars", "/admin/sla-policies", "/admin/ivr-flows"]


@pytest.fixture
def records(app):
    """A calendar, a policy on it for a queue, and two versions of the default flow."""
    calendar = BusinessCalendar(
        name="London office",
        timezone="Europe/London",
        windows={"mon": [["09:00", "17:00"]], "sat": [["10:00", "14:00"], ["15:00", "24:00"]]},
        country="GB",
        subdivision="ENG",
        closed_dates=["2026-12-24"],
        open_dates=["2026-12-28"],
    )
    db.session.add(calendar)
    db.session.flush()
    queue = routing.create_queue(name="Cards", channels=["voice"])
    db.session.add(
        SlaPolicy(
            name="Card disputes",
            position=3,
            active=False,
            conditions={"priority": ["urgent"], "queue_id": [queue.id]},
            calendar_id=calendar.id,
            targets={"urgent": {"first_response": {"minutes": 45, "business": False}}},
            escalations=[{"metric": "*", "percent": 75, "actions": [{"kind": "notify"}]}],
        )
    )
    db.session.commit()
    definition = json.loads(flows.DEFAULT_FLOW_PATH.read_text(encoding="utf-8"))
    flows.save_flow(definition, activate=True)
    flows.save_flow({**definition, "start": definition["start"]}, activate=False)
    return calendar


@pytest.mark.parametrize("path", PAGES)
def test_anonymous_goes_to_login_and_agents_get_403(client, create_user, path):
    anonymous = client.get(path)
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]
    create_user("alice")
    _sign_in(client, "alice")
    assert client.get(path).status_code == 403


def test_the_pages_list_what_is_stored(client, create_user, records):
    create_user("ada", "admin")
    _sign_in(client, "ada")
    calendars = client.get("/admin/calendars").get_data(as_text=True)
    assert 'data-calendar="London office"' in calendars
    assert "Mon 09:00–17:00; Sat 10:00–14:00, 15:00–24:00" in calendars
    assert "GB-ENG" in calendars and "2026-12-24" in calendars and "2026-12-28" in calendars
    assert '<option value="Europe/London">' in calendars  # the time-zone suggestions
    assert f'data-edit-calendar="{records.id}"' in calendars

    policies = client.get("/admin/sla-policies").get_data(as_text=True)
    assert 'data-policy="Card disputes"' in policies and "Inactive" in policies
    assert "priority: urgent; queue: Cards" in policies
    assert "first response 45 min (wall clock)" in policies
    assert f'<option value="{records.id}">London office</option>' in policies

    ivr = client.get("/admin/ivr-flows").get_data(as_text=True)
    assert ivr.count('data-flow="main"') == 2
    assert 'data-version="1"' in ivr and 'data-version="2"' in ivr
    assert ivr.count('data-activate-flow="') == 1  # only the inactive version
    assert 'id="flow-form-file"' in ivr and "data-error-catchall" in ivr


def test_supervisors_read_without_the_forms(client, create_user, records):
    create_user("sam", "supervisor")
    _sign_in(client, "sam")
    calendars = client.get("/admin/calendars").get_data(as_text=True)
    assert 'data-calendar="London office"' in calendars
    assert 'id="calendar-form"' not in calendars and "data-edit-calendar" not in calendars
    assert 'id="due-form"' in calendars  # anyone may ask when work is due
    policies = client.get("/admin/sla-policies").get_data(as_text=True)
    assert 'data-policy="Card disputes"' in policies
    assert 'id="policy-form"' not in policies and "data-delete-policy" not in policies
    ivr = client.get("/admin/ivr-flows").get_data(as_text=True)
    assert 'data-flow="main"' in ivr and 'id="flow-form"' not in ivr
    assert "data-activate-flow" not in ivr and 'id="flow-view"' in ivr


def test_forms_wire_errors_to_inputs_and_the_nav_links_every_page(client, create_user):
    create_user("ada", "admin")
    _sign_in(client, "ada")
    calendars = client.get("/admin/calendars").get_data(as_text=True)
    assert 'id="calendar-form-timezone-error" data-error-for="timezone"' in calendars
    assert 'id="calendar-form-windows-mon-error" data-error-for="windows.mon"' in calendars
    assert "No calendars yet." in calendars
    policies = client.get("/admin/sla-policies").get_data(as_text=True)
    assert 'data-error-for="targets.urgent.first_response"' in policies
    assert 'aria-describedby="policy-form-targets-urgent-first_response-error"' in policies
    assert 'data-error-for="escalations"' in policies
    for html in (calendars, policies, client.get("/admin/ivr-flows").get_data(as_text=True)):
        assert "<script>" not in html  # CSP: scripts come from static files only
        assert 'src="/static/js/config_docs.js"' in html
        for link in ("/admin/users", "/admin/queues", *PAGES):
            assert f'href="{link}"' in html
