"""A supervisor watches a ticket breach its SLA on the live board: the escalation arrives on
the board's socket, and the SLA section refreshes to list the breach."""

from __future__ import annotations

import re
from datetime import timedelta

from playwright.sync_api import Page, expect

from contact_center.sla import services as sla
from tests.e2e.conftest import save_screenshot, sign_in
from tests.sla.test_policies import add_policy, backdate, open_ticket, wall


def test_a_breach_reaches_the_escalations_feed_and_the_sla_board(
    app, client, live_server, page: Page, page_errors, create_user, auth_header, run_jobs
):
    admin = auth_header(create_user("ada", role="admin"))
    agent = auth_header(create_user("alex", display_name="Alex Agent"))
    create_user("sue", role="supervisor", display_name="Sue Supervisor")
    add_policy(
        client,
        admin,
        targets={"normal": {"first_response": wall(60), "resolution": wall(480)}},
        escalations=[{"after_breach_minutes": 0, "actions": [{"kind": "notify"}]}],
    )
    ticket_id = open_ticket(client, agent, subject="Card blocked abroad")
    other_id = open_ticket(client, agent, subject="Statement question")
    backdate(other_id, timedelta(minutes=30))  # due in 30 minutes: first in line for now

    sign_in(page, "sue")
    page.goto("/supervisor")
    expect(page.locator("body")).to_have_attribute("data-board-ready", "1")
    expect(page.locator("#sla-board")).to_have_attribute("data-sla-ready", "1")
    rows = page.locator("#sla-next tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_have_attribute("data-ticket-id", str(other_id))
    expect(rows.nth(1)).to_have_attribute("data-ticket-id", str(ticket_id))
    mine = page.locator(f'#sla-next tr[data-ticket-id="{ticket_id}"]')
    expect(mine.locator(".sla-clock")).to_have_count(2)  # every target is shown
    first = mine.locator('.sla-clock[data-metric="first_response"]')
    expect(first).to_have_text(re.compile(r"^first response 59:\d\d left$"))
    shown = first.text_content()
    expect(first).not_to_have_text(shown)  # it counts down in the browser
    expect(page.locator("#sla-breached-count")).to_have_text("0")
    expect(page.locator("#sla-breached-empty")).to_be_visible()
    save_screenshot(page, "sla-board-1-open")

    backdate(ticket_id, timedelta(minutes=75))  # its first response was due 15 minutes ago
    assert sla.poll_due() >= 1
    run_jobs()  # the escalation step notifies the supervisors' boards

    feed = page.locator("#escalations li")
    expect(feed).to_have_count(1)
    expect(feed.first).to_contain_text("Breached")
    expect(feed.first).to_contain_text("first_response")
    # The board asks again at once and once more when the server's 5-second cache is stale.
    expect(page.locator("#sla-breached-count")).to_have_text("1")
    breached = page.locator(f'#sla-breached li[data-ticket-id="{ticket_id}"]')
    expect(breached).to_contain_text("Card blocked abroad")
    expect(breached.locator(".sla-clock")).to_have_text(
        re.compile(r"^first response breached 15:\d\d ago$")
    )
    expect(page.locator("#sla-breached-empty")).to_be_hidden()
    expect(rows.nth(0)).to_have_attribute("data-ticket-id", str(ticket_id))
    expect(rows.nth(0)).to_have_class(re.compile(r"\bsla-row-breached\b"))
    expect(rows.nth(1)).not_to_have_class(re.compile(r"\bsla-row-breached\b"))
    compliance = page.locator("#sla-compliance tbody tr")
    expect(compliance).to_have_count(1)
    expect(compliance.first.locator(".c-breached")).to_have_text("1")
    expect(compliance.first.locator(".c-pct")).to_have_text("0.0 %")
    save_screenshot(page, "sla-board-2-breached")
    assert page_errors.messages == []
