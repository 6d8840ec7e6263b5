"""The agent console in a real browser: sign in, go available, a call rings, accept it.

The call comes in as a signed Twilio webhook over real HTTP to the live server; the offer
and its screen pop reach the browser over Socket.IO; accepting it makes the app redirect the
call through the Twilio REST stub.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from contact_center.customers.services import create_customer
from contact_center.extensions import db
from contact_center.routing.models import Interaction
from contact_center.routing.services import create_queue
from tests.conftest import ACCOUNT_SID, PASSWORD, PUBLIC_BASE_URL, call_sid
from tests.e2e.conftest import WAIT_MS

pytestmark = pytest.mark.e2e

# The console with an offer ringing, for a person to look at (not compared by the test).
SCREENSHOT = Path(tempfile.gettempdir()) / "agent-console.png"
CONNECT_URL = re.compile(
    re.escape(f"{PUBLIC_BASE_URL}/webhooks/twilio/voice/connect/") + r"[0-9a-f-]{36}\?leg=caller"
)


def _incoming_call(sid: str, from_number: str) -> dict[str, str]:
    return {
        "CallSid": sid,
        "AccountSid": ACCOUNT_SID,
        "From": from_number,
        "To": "+441234567890",
        "CallStatus": "ringing",
    }


def _sign_in_and_go_available(page: Page, login, username: str) -> None:
    login(username, PASSWORD)
    expect(page).to_have_url(re.compile(r"/agent$"))
    expect(page.locator("#connection-state")).to_have_text("Connected")
    expect(page.locator("#agent-status")).to_have_text("offline")
    page.click("#go-available")
    expect(page.locator("#agent-status")).to_have_text("available")


def test_call_rings_with_screen_pop_and_is_accepted(
    app, create_user, live_server, page, login, twilio_stub, page_errors
):
    create_customer(
        {
            "name": "Margaret Holloway",
            "phones": ["+44 20 7946 0018"],
            "tier": "A",
            "region": "UK South",
            "lifetime_value": 48250,
            "tags": ["vip", "cards"],
        }
    )
    create_user("alice", display_name="Alice Archer", skills={"lang:en": 5})
    # Calls land on the default queue; give it wrap-up time so completing starts wrap-up.
    create_queue(name="General", channels=["voice", "email"], is_default=True, wrapup_s=120)
    db.session.commit()
    db.session.remove()  # nothing of ours stays open while the server thread writes

    _sign_in_and_go_available(page, login, "alice")
    expect(page.locator("#user-name")).to_have_text("Alice Archer")
    expect(page.locator("#offer")).to_be_hidden()

    sid = call_sid(1)
    status, body = live_server.twilio_post(
        "/webhooks/twilio/voice", _incoming_call(sid, "020 7946 0018")
    )
    assert status == 200, body
    assert b"<Enqueue" in body

    offer = page.locator("#offer")
    expect(offer).to_be_visible(timeout=WAIT_MS)
    expect(page.locator("#caller-name")).to_contain_text("Margaret Holloway", timeout=WAIT_MS)
    expect(offer).to_contain_text("Tier A")
    expect(offer).to_contain_text("UK South")
    expect(offer).to_contain_text("+442079460018")
    expect(offer.locator(".tag")).to_have_text(["vip", "cards"])
    expect(page.locator("#offer-countdown")).to_have_text(re.compile(r"^\d+$"))
    expect(page.locator("#agent-status")).to_have_text("reserved")
    page.screenshot(path=SCREENSHOT, full_page=True)

    page.click("#accept-offer")
    current = page.locator("#current-interaction")
    expect(current).to_be_visible(timeout=WAIT_MS)
    expect(offer).to_be_hidden()
    expect(page.locator("#current-caller-name")).to_have_text("Margaret Holloway")
    expect(page.locator("#call-state")).to_have_text("Connected")
    expect(page.locator("#agent-status")).to_have_text("busy")

    redirects = twilio_stub.wait_for(
        lambda r: r.call_sid == sid and "Url" in r.form, timeout=WAIT_MS / 1000
    )
    assert redirects, "the call was not redirected through the Twilio REST API"
    assert CONNECT_URL.fullmatch(redirects[0].form["Url"]), redirects[0].form

    # Complete with a disposition: the call is hung up and wrap-up starts; then finish it.
    page.select_option("#disposition", "resolved")
    page.fill("#notes", "Card replaced; new PIN by post.")
    page.click("#complete-interaction")
    expect(page.locator("#agent-status")).to_have_text("wrapup")
    expect(page.locator("#call-state")).to_have_text("Completed")
    hang_ups = twilio_stub.wait_for(
        lambda r: r.call_sid == sid and r.form.get("Status") == "completed", timeout=WAIT_MS / 1000
    )
    assert hang_ups, "completing a live call did not hang it up"
    page.click("#finish-wrapup")
    expect(page.locator("#agent-status")).to_have_text("available")
    expect(current).to_be_hidden()
    expect(page.locator("#idle")).to_be_visible()

    interaction = db.session.scalar(db.select(Interaction).where(Interaction.external_id == sid))
    assert interaction.status == "ended"
    assert interaction.disposition == "resolved"
    assert interaction.notes == "Card replaced; new PIN by post."
    db.session.remove()
    assert page_errors.messages == []


def test_unknown_caller_hangs_up_while_ringing(
    app, create_user, live_server, page, login, page_errors
):
    # A customer whose number ends like the caller's, with markup in the name: shown as text.
    create_customer(
        {"name": '<img src=x onerror="window.__xss=1">Mallory', "phones": ["+44 113 496 0011"]}
    )
    create_user("bob", display_name="Bob Baker")
    db.session.remove()

    _sign_in_and_go_available(page, login, "bob")
    sid = call_sid(2)
    status, _ = live_server.twilio_post(
        "/webhooks/twilio/voice", _incoming_call(sid, "+44 20 7496 0011")
    )
    assert status == 200

    expect(page.locator("#offer")).to_be_visible(timeout=WAIT_MS)
    expect(page.locator("#caller-name")).to_have_text("Unknown caller")
    expect(page.locator("#offer-meta")).to_contain_text("+44 20 7496 0011")
    suggestion = page.locator("#offer .suggestion-name")
    expect(suggestion).to_have_text('<img src=x onerror="window.__xss=1">Mallory')
    assert page.evaluate("window.__xss") is None
    assert page.locator("#offer img").count() == 0

    hang_up = {"CallSid": sid, "CallStatus": "completed", "SequenceNumber": "1"}
    status, _ = live_server.twilio_post("/webhooks/twilio/voice/status", hang_up)
    assert status == 200
    expect(page.locator("#offer")).to_be_hidden(timeout=WAIT_MS)
    expect(page.locator("#toast")).to_contain_text("caller hung up")
    expect(page.locator("#agent-status")).to_have_text("available")
    assert page_errors.messages == []

    page.click("#sign-out")
    expect(page).to_have_url(re.compile(r"/login$"))
    page.goto("/agent")
    expect(page).to_have_url(re.compile(r"/login\?next=%2Fagent$"))


def test_wrong_password_shows_error_and_stays_on_login(app, create_user, live_server, page, login):
    create_user("carol")
    db.session.remove()

    login("carol", "not-the-password")
    expect(page.locator("#login-error")).to_be_visible()
    expect(page.locator("#login-error")).to_contain_text("wrong password")
    expect(page).to_have_url(re.compile(r"/login(\?.*)?$"))
    expect(page.locator("#username")).to_have_value("carol")
    expect(page.locator("#password")).to_have_value("")


def test_console_needs_sign_in(app, live_server, page):
    page.goto("/agent")
    expect(page).to_have_url(re.compile(r"/login\?next=%2Fagent$"))
    expect(page.locator("#username")).to_be_visible()
    expect(page.locator("#login-error")).to_be_hidden()
