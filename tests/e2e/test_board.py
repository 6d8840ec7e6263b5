"""A supervisor watches a call arrive and be answered on the live board."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from contact_center.routing import services as routing
from tests.conftest import call_sid
from tests.e2e.conftest import incoming_call, save_screenshot, sign_in
from tests.routing.conftest import pending


def test_a_call_arrives_and_is_answered_on_the_live_board(
    app, live_server, page: Page, page_errors, create_user
):
    create_user("sue", role="supervisor", display_name="Sue Supervisor")
    alex = create_user("alex", display_name="Alex Agent", capacity={"voice": 1})
    sign_in(page, "sue")
    page.goto("/supervisor")
    expect(page.locator("body")).to_have_attribute("data-board-ready", "1")
    expect(page.locator("#board-connection")).to_have_text("Live")
    save_screenshot(page, "board-1-open")

    status, _ = live_server.twilio_post(
        "/webhooks/twilio/voice", incoming_call(call_sid(91), "+447700900123")
    )
    assert status == 200
    row = page.locator("#queue-board tbody tr").first
    expect(row.locator(".q-waiting")).to_have_text("1")
    save_screenshot(page, "board-2-waiting")

    routing.set_agent_status(alex, "available")  # offered the call at once
    agent_row = page.locator(f'#agent-board tr[data-agent-id="{alex.id}"]')
    expect(agent_row.locator(".a-status")).to_have_text("reserved")
    routing.accept(alex, pending(alex).id)
    expect(row.locator(".q-waiting")).to_have_text("0")
    expect(row.locator(".q-answered")).to_have_text("1")
    expect(row.locator(".q-offered")).to_have_text("1")
    expect(row.locator(".q-sl")).to_have_text("100.0 %")
    # Erlang needs the last full quarter hour's arrivals, which a new queue has not got.
    expect(row.locator(".q-advice")).to_have_text("Needs a full interval of calls")
    expect(row.locator(".q-estimate")).to_have_text("–")  # no handle time yet today
    expect(agent_row.locator(".a-status")).to_have_text("busy")
    expect(agent_row.locator(".a-work")).to_contain_text("voice #")
    expect(agent_row.locator("button.monitor")).to_have_count(3)  # listen, whisper, barge
    save_screenshot(page, "board-3-answered")

    # The supervisor sends an idle agent away from the board.
    bo = create_user("bo", display_name="Bo Agent")
    routing.set_agent_status(bo, "available")
    bo_row = page.locator(f'#agent-board tr[data-agent-id="{bo.id}"]')
    expect(bo_row.locator(".a-status")).to_have_text("available")
    bo_row.locator("select.force-status").select_option("away")
    expect(page.locator("#board-notice")).to_have_text("Status set to away.")
    expect(bo_row.locator(".a-status")).to_have_text("away (set by supervisor)")
    save_screenshot(page, "board-4-forced-away")
    assert page_errors.messages == []
