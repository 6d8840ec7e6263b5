"""The agent console in a real browser: sign in, go available, a call rings, accept it.

The call comes in as a signed Twilio webhook over real HTTP to the live server; the offer
and its screen pop reach the browser over Socket.IO; accepting it makes the app redirect the
call through the Twilio REST stub.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from contact_center.customers.services import create_customer
from contact_center.extensions import db
from contact_center.routing.models import Interaction, Queue
from contact_center.routing.services import create_interaction, create_queue
from contact_center.sla.models import SlaPolicy
from contact_center.tickets.services import change_status, create_ticket
from tests.conftest import ACCOUNT_SID, PUBLIC_BASE_URL, call_sid
from tests.e2e.conftest import WAIT_MS, incoming_call, open_console, save_screenshot

pytestmark = pytest.mark.e2e

CONNECT_URL = re.compile(
    re.escape(f"{PUBLIC_BASE_URL}/webhooks/twilio/voice/connect/") + r"[0-9a-f-]{36}\?leg=caller"
)


def _sign_in_and_go_available(page: Page, username: str) -> None:
    open_console(page, username)
    expect(page.locator("#agent-status")).to_have_text("offline")
    page.click("#go-available")
    expect(page.locator("#agent-status")).to_have_text("available")


def test_call_rings_with_screen_pop_and_is_accepted(
    app, create_user, live_server, page, twilio_stub, page_errors
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

    _sign_in_and_go_available(page, "alice")
    expect(page.locator("#user-name")).to_have_text("Alice Archer")
    expect(page.locator("#offer")).to_be_hidden()

    sid = call_sid(1)
    status, body = live_server.twilio_post(
        "/webhooks/twilio/voice", incoming_call(sid, "020 7946 0018")
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
    save_screenshot(page, "agent-console")

    page.click("#accept-offer")
    current = page.locator("#current-interaction")
    expect(current).to_be_visible(timeout=WAIT_MS)
    expect(offer).to_be_hidden()
    expect(page.locator("#current-caller-name")).to_have_text("Margaret Holloway")
    # Until the caller's leg joins the conference (the connect webhook) it is connecting.
    expect(page.locator("#call-state")).to_have_text("Connecting…")
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
    expect(page.locator("#call-state")).to_have_text("Wrap-up")
    expect(page.locator("#complete-interaction")).to_be_hidden()
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


def test_unknown_caller_hangs_up_while_ringing(app, create_user, live_server, page, page_errors):
    # A customer whose number ends like the caller's, with markup in the name: shown as text.
    create_customer(
        {"name": '<img src=x onerror="window.__xss=1">Mallory', "phones": ["+44 113 496 0011"]}
    )
    create_user("bob", display_name="Bob Baker")
    db.session.remove()

    _sign_in_and_go_available(page, "bob")
    sid = call_sid(2)
    status, _ = live_server.twilio_post(
        "/webhooks/twilio/voice", incoming_call(sid, "+44 20 7496 0011")
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


# ---------------------------------------------------------------- held work, call states, clocks


def _screenshot(page: Page, name: str) -> None:
    """A state of the console for a person to look at (not compared by the tests)."""
    save_screenshot(page, name)


def _margaret(**extra) -> int:
    customer = create_customer(
        {
            "name": "Margaret Holloway",
            "phones": ["+44 20 7946 0018"],
            "tier": "A",
            "region": "UK South",
            **extra,
        }
    )
    return customer.id


def _accept_call(page: Page, live_server, twilio_stub, sid: str, from_number: str) -> str:
    """Ring the console with a call and accept it; the connect path the call was sent to."""
    status, body = live_server.twilio_post(
        "/webhooks/twilio/voice", incoming_call(sid, from_number)
    )
    assert status == 200, body
    expect(page.locator("#offer")).to_be_visible()
    page.click("#accept-offer")
    expect(page.locator("#current-interaction")).to_be_visible()
    redirects = twilio_stub.wait_for(
        lambda r: r.call_sid == sid and "Url" in r.form, timeout=WAIT_MS / 1000
    )
    assert redirects, "the call was not redirected through the Twilio REST API"
    url = redirects[0].form["Url"]
    assert CONNECT_URL.fullmatch(url), url
    return url.removeprefix(PUBLIC_BASE_URL)


def _interaction(sid: str) -> Interaction:
    db.session.remove()
    return db.session.scalar(db.select(Interaction).where(Interaction.external_id == sid))


def test_reload_during_a_call_and_in_wrap_up_shows_the_call_again(
    app, create_user, live_server, page, twilio_stub, page_errors
):
    _margaret()
    create_user("dave", display_name="Dave Dent")
    create_queue(name="General", channels=["voice", "email"], is_default=True, wrapup_s=120)
    db.session.commit()
    db.session.remove()

    _sign_in_and_go_available(page, "dave")
    sid = call_sid(3)
    _accept_call(page, live_server, twilio_stub, sid, "020 7946 0018")
    expect(page.locator("#current-caller-name")).to_have_text("Margaret Holloway")

    # A reload mid-call: the console asks for nothing, the server says what the agent holds.
    page.reload()
    expect(page.locator("#connection-state")).to_have_text("Connected")
    current = page.locator("#current-interaction")
    expect(current).to_be_visible()
    expect(page.locator("#current-caller-name")).to_have_text("Margaret Holloway")
    expect(current).to_contain_text("Tier A")  # the screen pop came back too
    expect(current).to_contain_text("UK South")
    expect(page.locator("#call-state")).to_have_text("Connecting…")
    expect(page.locator("#complete-interaction")).to_be_visible()
    expect(page.locator("#finish-wrapup")).to_be_hidden()
    expect(page.locator("#work-items")).to_be_hidden()  # one item: no tabs
    expect(page.locator("#agent-status")).to_have_text("busy")
    expect(page.locator("#offer")).to_be_hidden()
    expect(page.locator("#idle")).to_be_hidden()
    expect(page.locator("#call-timer")).to_have_text(re.compile(r"^\d+:\d\d$"))
    _screenshot(page, "agent-console-reloaded")

    page.select_option("#disposition", "information_given")
    page.fill("#notes", "Explained the new card's activation.")
    page.click("#complete-interaction")
    expect(page.locator("#call-state")).to_have_text("Wrap-up")
    expect(page.locator("#agent-status")).to_have_text("wrapup")
    expect(page.locator("#finish-wrapup")).to_be_visible()
    expect(page.locator("#wrapup-remaining")).to_have_text(re.compile(r"^Wrap-up \d+:\d\d left$"))
    assert twilio_stub.wait_for(
        lambda r: r.call_sid == sid and r.form.get("Status") == "completed", timeout=WAIT_MS / 1000
    ), "completing a live call did not hang it up"

    # A reload in wrap-up: still there, with what was saved, and wrap-up can be finished.
    page.reload()
    expect(current).to_be_visible()
    expect(page.locator("#current-caller-name")).to_have_text("Margaret Holloway")
    expect(page.locator("#call-state")).to_have_text("Wrap-up")
    expect(page.locator("#disposition")).to_have_value("information_given")
    expect(page.locator("#finish-wrapup")).to_be_visible()
    expect(page.locator("#complete-interaction")).to_be_hidden()
    page.click("#finish-wrapup")
    expect(page.locator("#agent-status")).to_have_text("available")
    expect(current).to_be_hidden()
    expect(page.locator("#idle")).to_be_visible()

    interaction = _interaction(sid)
    assert interaction.status == "ended"
    assert interaction.disposition == "information_given"
    assert interaction.notes == "Explained the new card's activation."
    db.session.remove()
    assert page_errors.messages == []


def test_console_shows_connected_when_the_caller_joins_then_wrap_up_when_they_hang_up(
    app, create_user, live_server, page, twilio_stub, page_errors
):
    _margaret()
    create_user("erin", display_name="Erin Evans")
    create_queue(name="General", channels=["voice"], is_default=True, wrapup_s=120)
    db.session.commit()
    db.session.remove()

    _sign_in_and_go_available(page, "erin")
    sid = call_sid(4)
    connect_path = _accept_call(page, live_server, twilio_stub, sid, "+44 20 7946 0018")
    current = page.locator("#current-interaction")
    expect(page.locator("#call-state")).to_have_text("Connecting…")
    expect(current).to_have_attribute("data-state", "connecting")

    # Twilio fetches the connect TwiML for the caller's leg: the caller is in the conference.
    connect_form = {"CallSid": sid, "AccountSid": ACCOUNT_SID}
    status, body = live_server.twilio_post(connect_path, connect_form)
    assert status == 200, body
    assert b"<Conference" in body, body
    expect(page.locator("#call-state")).to_have_text("Connected")
    expect(current).to_have_attribute("data-state", "connected")
    expect(page.locator("#activity")).to_contain_text("Connected to Margaret Holloway")
    _screenshot(page, "agent-console-connected")

    # The caller hangs up: wrap-up starts; the outcome is saved when wrap-up is finished.
    hang_up = {
        "CallSid": sid,
        "CallStatus": "completed",
        "CallDuration": "42",
        "SequenceNumber": "3",
    }
    status, _ = live_server.twilio_post("/webhooks/twilio/voice/status", hang_up)
    assert status == 200
    expect(page.locator("#call-state")).to_have_text("Wrap-up")
    expect(page.locator("#call-timer")).to_have_text("0:42")
    expect(page.locator("#wrapup-hint")).to_contain_text("The call has ended")
    expect(page.locator("#activity")).to_contain_text("Call ended by the caller")
    _screenshot(page, "agent-console-wrapup")
    page.select_option("#disposition", "follow_up")
    page.click("#finish-wrapup")
    expect(page.locator("#agent-status")).to_have_text("available")
    expect(current).to_be_hidden()

    interaction = _interaction(sid)
    assert interaction.status == "ended"
    assert interaction.disposition == "follow_up"
    assert interaction.duration_s == 42
    db.session.remove()
    assert page_errors.messages == []


def test_several_emails_in_hand_each_with_its_own_state_and_outcome(
    app, create_user, live_server, page, page_errors
):
    customer_id = _margaret(emails=["margaret@example.com"])
    create_user("fay", display_name="Fay Fisher")
    queue_id = create_queue(name="Email", channels=["email"], is_default=True, wrapup_s=60).id
    db.session.commit()
    db.session.remove()

    _sign_in_and_go_available(page, "fay")
    offer = page.locator("#offer")
    tabs = page.locator("#work-items .work-tab")

    first = create_interaction(
        channel="email",
        queue=db.session.get(Queue, queue_id),
        external_id="<m1@example.com>",
        from_address="margaret@example.com",
        customer_id=customer_id,
    ).id
    db.session.remove()
    expect(offer).to_be_visible()
    expect(page.locator("#offer-eyebrow")).to_have_text("Incoming email")
    expect(page.locator("#caller-name")).to_have_text("Margaret Holloway")
    page.click("#accept-offer")
    expect(offer).to_be_hidden()
    expect(page.locator("#current-caller-name")).to_have_text("Margaret Holloway")
    expect(page.locator("#current-kind")).to_have_text("Email")
    expect(page.locator("#call-state")).to_have_text("In progress")

    second = create_interaction(
        channel="email",
        queue=db.session.get(Queue, queue_id),
        external_id="<m2@example.net>",
        from_address="someone@example.net",
    ).id
    db.session.remove()
    expect(offer).to_be_visible()
    expect(page.locator("#caller-name")).to_have_text("Unknown sender")
    expect(offer).to_contain_text("someone@example.net")
    expect(page.locator("#current-interaction")).to_be_visible()  # the first stays in view
    _screenshot(page, "agent-console-email-offer")
    page.click("#accept-offer")
    expect(tabs).to_have_count(2)
    expect(page.locator(f"#work-tab-{second}")).to_have_attribute("aria-selected", "true")
    expect(page.locator("#current-ref")).to_have_text(f"#{second}")

    # A reload brings both back, in the order they were taken.
    page.reload()
    expect(tabs).to_have_count(2)
    expect(tabs.locator(".work-tab-name")).to_have_text(["Margaret Holloway", "Unknown sender"])
    expect(page.locator("#agent-status")).to_have_text("busy")

    # Each item keeps its own draft while the agent switches between them.
    page.click(f"#work-tab-{second}")
    expect(page.locator("#current-ref")).to_have_text(f"#{second}")
    page.fill("#notes", "Asked the sender which account they mean.")
    page.click(f"#work-tab-{first}")
    expect(page.locator("#current-caller-name")).to_have_text("Margaret Holloway")
    expect(page.locator("#notes")).to_have_value("")
    page.select_option("#disposition", "information_given")
    page.fill("#notes", "Sent the card delivery date.")
    page.click(f"#work-tab-{second}")
    expect(page.locator("#notes")).to_have_value("Asked the sender which account they mean.")
    expect(page.locator("#disposition")).to_have_value("")
    _screenshot(page, "agent-console-tabs")

    # Complete the second: it goes to wrap-up on its own; the first is still in progress.
    page.select_option("#disposition", "follow_up")
    page.click("#complete-interaction")
    expect(page.locator(f"#work-tab-{second}")).to_have_attribute("data-state", "wrapup")
    expect(page.locator(f"#work-tab-{first}")).to_have_attribute("data-state", "connected")
    expect(page.locator("#call-state")).to_have_text("Wrap-up")
    expect(page.locator("#agent-status")).to_have_text("busy")
    _screenshot(page, "agent-console-tabs-wrapup")
    page.click("#finish-wrapup")
    expect(tabs).to_have_count(0)
    expect(page.locator("#work-items")).to_be_hidden()
    expect(page.locator("#current-ref")).to_have_text(f"#{first}")
    expect(page.locator("#notes")).to_have_value("Sent the card delivery date.")
    expect(page.locator("#disposition")).to_have_value("information_given")

    page.click("#complete-interaction")
    expect(page.locator("#call-state")).to_have_text("Wrap-up")
    expect(page.locator("#agent-status")).to_have_text("wrapup")
    page.click("#finish-wrapup")
    expect(page.locator("#agent-status")).to_have_text("available")
    expect(page.locator("#current-interaction")).to_be_hidden()

    db.session.remove()
    one = db.session.get(Interaction, first)
    two = db.session.get(Interaction, second)
    assert (one.status, one.disposition, one.notes) == (
        "ended",
        "information_given",
        "Sent the card delivery date.",
    )
    assert (two.status, two.disposition, two.notes) == (
        "ended",
        "follow_up",
        "Asked the sender which account they mean.",
    )
    db.session.remove()
    assert page_errors.messages == []


@pytest.mark.parametrize("skew_minutes", [10, -10])
def test_countdown_and_call_timer_follow_the_server_clock(
    app, create_user, live_server, page, twilio_stub, page_errors, skew_minutes
):
    # The browser's clock is ten minutes off: the offer must neither expire at once nor
    # count down from ten minutes, and the call timer must start near zero.
    page.add_init_script(
        "(() => { const real = Date.now.bind(Date);"
        f" Date.now = () => real() + {skew_minutes} * 60 * 1000; }})();"
    )
    _margaret()
    create_user("gus", display_name="Gus Grant")
    create_queue(name="General", channels=["voice"], is_default=True, offer_timeout_s=30)
    db.session.commit()
    db.session.remove()

    _sign_in_and_go_available(page, "gus")
    sid = call_sid(5)
    status, _ = live_server.twilio_post(
        "/webhooks/twilio/voice", incoming_call(sid, "020 7946 0018")
    )
    assert status == 200
    expect(page.locator("#offer")).to_be_visible()
    countdown = page.locator("#offer-countdown")
    expect(countdown).to_have_text(re.compile(r"^\d+$"))
    assert 1 <= int(countdown.text_content()) <= 30
    page.wait_for_timeout(1200)
    expect(page.locator("#offer")).to_be_visible()  # not expired by a fast clock
    assert 1 <= int(countdown.text_content()) <= 30

    page.click("#accept-offer")
    expect(page.locator("#current-interaction")).to_be_visible()
    expect(page.locator("#call-timer")).to_have_text(re.compile(r"^0:\d\d$"))
    assert page_errors.messages == []


def test_call_ended_without_wrap_up_keeps_the_outcome_form_until_saved(
    app, create_user, live_server, page, twilio_stub, page_errors
):
    _margaret()
    create_user("hal", display_name="Hal Hughes")
    create_queue(name="General", channels=["voice"], is_default=True, wrapup_s=0)
    db.session.commit()
    db.session.remove()

    _sign_in_and_go_available(page, "hal")
    sid = call_sid(6)
    connect_path = _accept_call(page, live_server, twilio_stub, sid, "020 7946 0018")
    status, _ = live_server.twilio_post(connect_path, {"CallSid": sid})
    assert status == 200
    expect(page.locator("#call-state")).to_have_text("Connected")
    page.fill("#notes", "Caller <b>cut off</b> mid-sentence.")

    hang_up = {"CallSid": sid, "CallStatus": "completed", "CallDuration": "65"}
    status, _ = live_server.twilio_post("/webhooks/twilio/voice/status", hang_up)
    assert status == 200
    # No wrap-up in this queue: the agent is free at once, the form stays to save the outcome.
    expect(page.locator("#call-state")).to_have_text("Completed")
    expect(page.locator("#agent-status")).to_have_text("available")
    expect(page.locator("#call-timer")).to_have_text("1:05")
    expect(page.locator("#complete-interaction")).to_have_text("Save outcome")
    expect(page.locator("#dismiss-interaction")).to_be_visible()
    expect(page.locator("#finish-wrapup")).to_be_hidden()
    expect(page.locator("#notes")).to_have_value("Caller <b>cut off</b> mid-sentence.")
    _screenshot(page, "agent-console-completed")
    page.select_option("#disposition", "callback_requested")
    page.click("#complete-interaction")
    expect(page.locator("#current-interaction")).to_be_hidden()
    expect(page.locator("#idle")).to_be_visible()

    interaction = _interaction(sid)
    assert (interaction.status, interaction.disposition, interaction.notes) == (
        "ended",
        "callback_requested",
        "Caller <b>cut off</b> mid-sentence.",
    )
    db.session.remove()
    assert page_errors.messages == []


def test_screen_pop_shows_every_sla_clock_of_an_open_ticket(
    app, create_user, live_server, page, page_errors
):
    customer = create_customer({"name": "Mei Chen", "phones": ["+44 20 7946 0044"]})
    db.session.add(
        SlaPolicy(
            name="Standard",
            position=0,
            conditions={},
            targets={
                "normal": {
                    "first_response": {"minutes": 60, "business": False},
                    "resolution": {"minutes": 600, "business": False},
                }
            },
            pauses={"resolution": ["pending"]},
            escalations=[],
        )
    )
    db.session.commit()
    ticket = create_ticket("Card not arrived", "email", customer_id=customer.id)
    change_status(ticket, "pending")
    db.session.commit()  # the SLA clocks are computed as this commits
    create_user("alice", display_name="Alice Archer", skills={"lang:en": 5})
    create_queue(name="General", channels=["voice", "email"], is_default=True)
    db.session.commit()
    db.session.remove()

    _sign_in_and_go_available(page, "alice")
    status, body = live_server.twilio_post(
        "/webhooks/twilio/voice", incoming_call(call_sid(40), "020 7946 0044")
    )
    assert status == 200, body
    offer = page.locator("#offer")
    expect(offer).to_be_visible(timeout=WAIT_MS)
    ticket_row = offer.locator(".record", has_text="Card not arrived")
    expect(ticket_row).to_contain_text("due")  # the nearest deadline, before asking for more
    ticket_row.locator(".sla-toggle").click()
    clocks = ticket_row.locator(".sla-clock")
    expect(clocks).to_have_count(2)
    expect(clocks.nth(0)).to_contain_text(re.compile(r"First response · Running · due .* left"))
    expect(clocks.nth(1)).to_contain_text("Resolution · Paused · ")
    expect(clocks.nth(1)).to_contain_text("left when resumed")
    expect(clocks.nth(1)).to_have_attribute("data-state", "paused")
    ticket_row.locator(".sla-toggle").click()
    expect(ticket_row.locator(".sla-clocks")).to_be_hidden()
    assert page_errors.messages == []
