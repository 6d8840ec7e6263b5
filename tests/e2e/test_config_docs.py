"""Calendars, SLA policies and IVR flows in a real browser: an admin sets up a Paris office."""

from __future__ import annotations

import json
import re

import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect

from contact_center.extensions import db
from contact_center.ivr import flows
from contact_center.ivr.models import IvrFlow
from contact_center.sla.models import BusinessCalendar, SlaPolicy
from tests.e2e.conftest import PageErrors, save_screenshot, sign_in

pytestmark = pytest.mark.e2e


def _ready(page: Page) -> None:
    """Wait until the page's script has set up its forms (typing earlier could be undone)."""
    expect(page.locator("body")).to_have_attribute("data-config-ready", "true")


def _flow(enqueue_to: str) -> bytes:
    """A small flow: the Paris calendar's hours decide between the queue and a goodbye."""
    return json.dumps(
        {
            "name": "paris",
            "start": "welcome",
            "nodes": {
                "welcome": {"type": "say", "text": "Bonjour.", "next": "hours"},
                "hours": {
                    "type": "hours",
                    "calendar": "Paris office",
                    "open": enqueue_to,
                    "closed": "bye",
                },
                "queue": {"type": "enqueue", "queue": "General"},
                "bye": {"type": "hangup", "text": "Au revoir."},
            },
        }
    ).encode()


def test_admin_sets_up_a_calendar_a_policy_and_an_ivr_flow(
    app, create_user, live_server, page: Page, page_errors: PageErrors
):
    create_user("ada", "admin", display_name="Ada Admin")
    main = flows.load_default_flow(activate=True)
    sign_in(page, "ada")
    expect(page).to_have_url(re.compile(r"/agent$"))

    # ------------------------------------------------ a calendar, after two refusals
    page.click("#nav-calendars")
    expect(page).to_have_url(re.compile(r"/admin/calendars$"))
    _ready(page)
    expect(page.locator("#calendars-rows")).to_contain_text("No calendars yet.")
    page.fill("#calendar-form-name", "Paris office")
    page.fill("#calendar-form-timezone", "Europe/Pariss")
    page.fill("#calendar-form-country", "fr")
    page.get_by_label("Tuesday opens").fill("")  # a window without its opening time
    page.click("[data-add-date=closed_dates]")
    page.get_by_label("Closed dates 1", exact=True).fill("2026-12-24")
    page.click("#calendar-save")
    tuesday = page.locator("#calendar-form-windows-tue-error")
    expect(tuesday).to_have_text("Tuesday opens: Times are HH:MM.")
    expect(page.get_by_label("Tuesday opens")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#calendar-form-status")).to_contain_text("Please correct")

    page.get_by_label("Tuesday opens").fill("09:00")
    page.click("[aria-label='Add hours on Saturday']")
    page.get_by_label("Saturday closes").fill("13:00")
    page.click("#calendar-save")
    zone_error = page.locator("#calendar-form-timezone-error")
    expect(zone_error).to_have_text("Unknown time zone.")
    expect(tuesday).to_be_hidden()
    expect(page.locator("#calendar-form-timezone")).to_have_attribute("aria-invalid", "true")
    save_screenshot(page, "config-calendar-timezone-error")
    assert db.session.scalar(sa.select(sa.func.count()).select_from(BusinessCalendar)) == 0

    page.fill("#calendar-form-timezone", "Europe/Paris")
    page.click("#calendar-save")
    expect(page.locator("#page-status")).to_have_text("Saved calendar Paris office.")
    _ready(page)
    row = page.locator("#calendars-rows tr[data-calendar='Paris office']")
    expect(row).to_contain_text("Mon 09:00–17:00")
    expect(row).to_contain_text("Sat 09:00–13:00")
    expect(row).to_contain_text("FR")
    expect(row).to_contain_text("2026-12-24")

    # Friday 16:30 in Paris plus an hour of working time: Saturday 09:30 (08:30 UTC in March).
    page.select_option("#due-form-calendar", label="Paris office")
    page.fill("#due-form-start", "2026-03-06T16:30")
    page.fill("#due-form-minutes", "60")
    page.click("#due-check")
    result = page.locator("#due-result")
    expect(result).to_have_attribute("data-due-at", "2026-03-07T08:30:00Z")
    expect(result).to_contain_text("09:30")
    expect(result).to_contain_text("(Europe/Paris)")
    save_screenshot(page, "config-calendar-saved")

    # ------------------------------------------------ an SLA policy on that calendar
    page.click("#nav-sla-policies")
    expect(page).to_have_url(re.compile(r"/admin/sla-policies$"))
    _ready(page)
    page.fill("#policy-form-name", "Paris urgent")
    page.select_option("#policy-form-calendar_id", label="Paris office")
    page.get_by_label("Urgent", exact=True).check()
    page.get_by_label("Urgent: first response minutes").fill("30")
    page.get_by_label("Urgent: resolution minutes").fill("480")
    page.get_by_label("Urgent: resolution counted in").select_option("false")
    page.get_by_label("pending", exact=True).first.check()  # pauses first response
    ladder = page.locator("#policy-form-escalations")
    ladder.fill('[{"metric": "*", "percent": 75, "actions": [{"kind": "shout"}]}]')
    page.click("#policy-save")
    ladder_error = page.locator("#policy-form-escalations-error")
    expect(ladder_error).to_contain_text("escalations[0].actions[0].kind: Must be one of")
    expect(ladder).to_have_attribute("aria-invalid", "true")
    save_screenshot(page, "config-policy-ladder-error")

    ladder.fill('[{"metric": "*", "percent": 75, "actions": [{"kind": "notify"}]}]')
    page.click("#policy-save")
    expect(page.locator("#page-status")).to_have_text("Saved SLA policy Paris urgent.")
    _ready(page)
    policy_row = page.locator("#policies-rows tr[data-policy='Paris urgent']")
    expect(policy_row).to_contain_text("priority: urgent")
    expect(policy_row).to_contain_text("Paris office")
    expect(policy_row).to_contain_text("first response 30 min, resolution 480 min (wall clock)")

    # ------------------------------------ an IVR flow: refused, then saved and activated
    page.click("#nav-ivr-flows")
    expect(page).to_have_url(re.compile(r"/admin/ivr-flows$"))
    _ready(page)
    expect(page.locator("#flows-rows tr[data-flow=main]")).to_contain_text("Active")
    page.set_input_files(
        "#flow-form-file",
        {"name": "paris.json", "mimeType": "application/json", "buffer": _flow("queu")},
    )
    expect(page.locator("#flow-form-definition")).to_have_value(re.compile('"open": "queu"'))
    page.click("#flow-save")
    flow_errors = page.locator("#flow-form-definition-error")
    expect(flow_errors).to_contain_text("nodes.hours.links: Unknown nodes: queu.")
    expect(page.locator("#flow-form-definition")).to_have_attribute("aria-invalid", "true")
    save_screenshot(page, "config-ivr-flow-error")

    page.set_input_files(
        "#flow-form-file",
        {"name": "paris.json", "mimeType": "application/json", "buffer": _flow("queue")},
    )
    expect(page.locator("#flow-form-definition")).to_have_value(re.compile('"open": "queue"'))
    expect(flow_errors).to_be_hidden()
    page.click("#flow-save")
    expect(page.locator("#page-status")).to_contain_text("Saved version 1 of paris (not active).")
    _ready(page)
    page.click("[aria-label='Activate paris version 1']")
    expect(page.locator("#page-status")).to_have_text("Version 1 of paris is now the active flow.")
    expect(page.locator("#flows-rows tr[data-flow=paris]")).to_contain_text("Active")
    expect(page.locator("[aria-label='Activate main version 1']")).to_be_visible()
    save_screenshot(page, "config-ivr-flow-active")

    # ------------------------------------------------ what the server now has
    db.session.rollback()  # a fresh transaction sees what the browser's requests committed
    calendar = db.session.scalar(sa.select(BusinessCalendar))
    assert (calendar.name, calendar.timezone, calendar.country) == (
        "Paris office",
        "Europe/Paris",
        "FR",
    )
    assert calendar.windows["sat"] == [["09:00", "13:00"]] and "sun" not in calendar.windows
    assert calendar.closed_dates == ["2026-12-24"]
    policy = db.session.scalar(sa.select(SlaPolicy))
    assert policy.calendar_id == calendar.id and policy.conditions == {"priority": ["urgent"]}
    assert policy.targets == {
        "urgent": {
            "first_response": {"minutes": 30, "business": True},
            "resolution": {"minutes": 480, "business": False},
        }
    }
    assert policy.pauses == {"first_response": ["pending"]}
    assert flows.active_flow().name == "paris"
    assert db.session.get(IvrFlow, main.id).is_active is False
    # Chromium logs each refused request itself: the four 422s are the only messages allowed.
    assert [m for m in page_errors.messages if "status of 422" not in m] == []
    assert len(page_errors.messages) == 4
