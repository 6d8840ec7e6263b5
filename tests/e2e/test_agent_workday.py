"""An agent's working day in a real browser (issue #8's acceptance), step by step, with a
screenshot of each step among the test artefacts:

- a signed voice webhook rings with the right screen pop; the agent accepts, writes a note,
  logs a complaint, ends the call and finishes wrap-up from the keyboard;
- a second agent declines an offer with a reason and it moves on to the next agent;
- an email is answered from the console (thread shown, canned response, a draft that
  survives a reload) and the reply reaches the local SMTP server; a colleague viewing the
  same ticket shows up live.
"""

from __future__ import annotations

import re
from email import message_from_bytes

import pytest
import socketio
import sqlalchemy as sa
from playwright.sync_api import Page, expect

from contact_center.agents.models import User
from contact_center.agents.services import issue_token
from contact_center.complaints.models import Complaint
from contact_center.customers.models import Customer, CustomerNote
from contact_center.customers.services import create_customer
from contact_center.extensions import db
from contact_center.routing.models import Interaction, Reservation
from contact_center.routing.services import create_queue
from contact_center.tickets.models import CannedResponse, Ticket, TicketMessage
from tests.conftest import ACCOUNT_SID, INBOUND_SECRET, call_sid
from tests.e2e.conftest import (
    WAIT_MS,
    PageErrors,
    incoming_call,
    new_page,
    open_console,
    save_screenshot,
)

pytestmark = pytest.mark.e2e


def _go_available(page: Page) -> None:
    page.click("#go-available")
    expect(page.locator("#agent-status")).to_have_text("available")


def _unlabelled_controls(page: Page) -> list[str]:
    """Visible form controls and buttons a screen reader could not name."""
    return page.evaluate(
        """() => [...document.querySelectorAll("input, select, textarea, button")]
            .filter((el) => el.offsetParent !== null && el.type !== "hidden")
            .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute("aria-label")
                            && !el.getAttribute("aria-labelledby")
                            && !(el.tagName === "BUTTON" && el.textContent.trim()))
            .map((el) => el.id || el.outerHTML.slice(0, 80))"""
    )


def test_a_call_from_ring_to_wrap_up_with_a_note_and_a_complaint(
    app, create_user, live_server, page, twilio_stub, page_errors
):
    customer = create_customer(
        {"name": "Margaret Holloway", "phones": ["+44 20 7946 0018"], "tier": "A"}
    )
    create_user("alice", display_name="Alice Archer")
    create_queue(name="General", channels=["voice"], is_default=True, wrapup_s=120)
    db.session.commit()
    customer_id = customer.id
    db.session.remove()
    page.set_viewport_size({"width": 1366, "height": 768})  # the smallest screen we support

    open_console(page, "alice")
    page.select_option("#away-reason", "training")
    page.click("#go-away")
    expect(page.locator("#agent-status")).to_have_text("away")
    expect(page.locator("#agent-status-reason")).to_have_text("Reason: training")
    _go_available(page)
    save_screenshot(page, "workday-call-1-available")

    sid = call_sid(81)
    status, _ = live_server.twilio_post(
        "/webhooks/twilio/voice", incoming_call(sid, "020 7946 0018")
    )
    assert status == 200
    offer = page.locator("#offer")
    expect(page.locator("#caller-name")).to_have_text("Margaret Holloway")
    expect(offer).to_contain_text("Tier A")
    expect(page.locator("#offer-countdown")).to_have_text(re.compile(r"^\d+$"))
    save_screenshot(page, "workday-call-2-ringing")

    page.keyboard.press("Alt+A")  # accept from the keyboard
    expect(page.locator("#current-caller-name")).to_have_text("Margaret Holloway")
    interaction_id = int(page.locator("#current-ref").inner_text().lstrip("#"))
    reservation = db.session.scalar(
        sa.select(Reservation).where(Reservation.interaction_id == interaction_id)
    )
    live_server.twilio_post(
        f"/webhooks/twilio/voice/connect/{reservation.id}?leg=caller",
        {"CallSid": sid, "AccountSid": ACCOUNT_SID},
    )
    db.session.remove()
    expect(page.locator("#call-state")).to_have_text("Connected")
    expect(page.locator("#call-controls")).to_be_visible()
    save_screenshot(page, "workday-call-3-connected")
    assert _unlabelled_controls(page) == []

    # A note on the customer's record shows in the screen pop at once.
    page.fill("#customer-note", "Called about a double charge on her card.")
    page.click("#add-customer-note")
    expect(page.locator("#current-pop .note-text")).to_have_text(
        ["Called about a double charge on her card."]
    )
    expect(page.locator("#customer-note")).to_have_value("")

    # Log a complaint for this call: a complaint ticket, with the call attached.
    page.fill("#new-ticket-subject", "Charged twice for one purchase")
    page.select_option("#new-ticket-type", "complaint")
    page.select_option("#new-ticket-category", "Billing")
    page.click("#create-ticket")
    expect(page.locator("#ticket-work-title")).to_contain_text("Charged twice for one purchase")
    expect(page.locator("#ticket-work .badge")).to_have_text("Complaint")
    expect(page.locator("#ticket-work .message[data-kind='call_summary']")).to_have_count(1)
    save_screenshot(page, "workday-call-4-complaint")

    # Hold and resume, then end the call: the call is hung up, wrap-up starts.
    page.click("#hold-call")
    expect(page.locator("#hold-call")).to_have_text("Resume")
    page.click("#hold-call")
    expect(page.locator("#hold-call")).to_have_text("Hold")
    page.select_option("#disposition", "complaint_logged")
    page.fill("#notes", "Complaint logged; refund to be checked by billing.")
    page.click("#end-call")
    expect(page.locator("#call-state")).to_have_text("Wrap-up")
    expect(page.locator("#call-controls")).to_be_hidden()
    assert twilio_stub.wait_for(
        lambda r: r.call_sid == sid and r.form.get("Status") == "completed",
        timeout=WAIT_MS / 1000,
    ), "ending the call did not hang it up"
    save_screenshot(page, "workday-call-5-wrapup")
    page.keyboard.press("Alt+W")  # finish wrap-up from the keyboard
    expect(page.locator("#agent-status")).to_have_text("available")
    expect(page.locator("#current-interaction")).to_be_hidden()
    save_screenshot(page, "workday-call-6-done")

    interaction = db.session.get(Interaction, interaction_id)
    assert (interaction.status, interaction.disposition) == ("ended", "complaint_logged")
    ticket = db.session.get(Ticket, interaction.ticket_id)
    assert (ticket.type, ticket.customer_id, ticket.subject) == (
        "complaint",
        customer_id,
        "Charged twice for one purchase",
    )
    complaint = db.session.scalar(sa.select(Complaint).where(Complaint.ticket_id == ticket.id))
    assert complaint.category == "Billing" and complaint.channel_received == "phone"
    note = db.session.scalar(sa.select(CustomerNote).where(CustomerNote.customer_id == customer_id))
    assert note.text == "Called about a double charge on her card."
    assert interaction.hold_s is not None
    # The call's summary on the ticket, written when it was attached, has the outcome now.
    summary = db.session.scalar(
        sa.select(TicketMessage.body).where(
            TicketMessage.interaction_id == interaction_id, TicketMessage.kind == "call_summary"
        )
    )
    assert "Disposition: complaint_logged." in summary
    assert "refund to be checked by billing" in summary
    db.session.remove()
    assert page_errors.messages == []


def test_a_declined_offer_moves_on_to_the_next_agent(
    app, browser, create_user, live_server, page, page_errors
):
    create_user("bob", display_name="Bob Baker")
    create_user("alice", display_name="Alice Archer")
    create_queue(name="General", channels=["voice"], is_default=True)
    db.session.commit()
    db.session.remove()

    open_console(page, "bob")
    _go_available(page)  # bob has waited longest: he is offered the call first
    alice_errors = PageErrors()
    alice = new_page(browser, live_server.url, alice_errors, {"width": 1366, "height": 768})
    try:
        open_console(alice, "alice")
        _go_available(alice)

        status, _ = live_server.twilio_post(
            "/webhooks/twilio/voice", incoming_call(call_sid(82), "+447700900555")
        )
        assert status == 200
        expect(page.locator("#offer")).to_be_visible()
        expect(page.locator("#caller-name")).to_have_text("Unknown caller")
        expect(alice.locator("#offer")).to_be_hidden()

        page.keyboard.press("Alt+D")
        expect(page.locator("#reject-form")).to_be_visible()
        expect(page.locator("#reject-reason")).to_be_focused()
        page.select_option("#reject-reason", "wrong_skill")
        save_screenshot(page, "workday-decline-1-reason")
        page.click("#confirm-reject")
        expect(page.locator("#offer")).to_be_hidden()
        expect(alice.locator("#offer")).to_be_visible()
        expect(alice.locator("#caller-name")).to_have_text("Unknown caller")
        save_screenshot(alice, "workday-decline-2-next-agent")

        # Alice takes it and makes the caller a customer on the spot.
        alice.click("#accept-offer")
        expect(alice.locator("#current-pop .pop-unknown")).to_be_visible()
        expect(alice.locator("#new-customer-contact")).to_have_value("+447700900555")
        alice.fill("#new-customer-name", "Priya Patel")
        alice.click("#create-customer")
        expect(alice.locator("#current-caller-name")).to_have_text("Priya Patel")
        expect(alice.locator("#current-pop .identity-value")).to_have_text(["+447700900555"])
        save_screenshot(alice, "workday-decline-3-new-customer")
    finally:
        alice.context.close()

    bob_id = db.session.scalar(sa.select(User.id).where(User.username == "bob"))
    declined = db.session.scalar(sa.select(Reservation).where(Reservation.agent_id == bob_id))
    assert (declined.status, declined.reason) == ("rejected", "wrong_skill")
    interaction = db.session.get(Interaction, declined.interaction_id)
    customer = db.session.get(Customer, interaction.customer_id)
    assert customer.name == "Priya Patel"
    assert [i.value for i in customer.identities] == ["+447700900555"]
    db.session.remove()
    assert page_errors.messages == [] and alice_errors.messages == []


def _mail(message_id: str, body: str) -> bytes:
    return (
        "From: Margaret Holloway <margaret@example.com>\r\n"
        "To: support@desk.test\r\n"
        "Subject: Where is my new card?\r\n"
        f"Message-ID: {message_id}\r\n"
        "Date: Thu, 26 Nov 2026 09:00:00 +0000\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "\r\n"
        f"{body}\r\n"
    ).encode()


def test_an_email_is_answered_from_the_console_and_the_reply_is_sent(
    app, create_user, live_server, page, page_errors, smtp_server, run_jobs
):
    create_customer({"name": "Margaret Holloway", "emails": ["margaret@example.com"]})
    create_user("fay", display_name="Fay Fisher")
    gus_id = create_user("gus", display_name="Gus Green").id
    create_queue(name="Email", channels=["email"], is_default=True, wrapup_s=30)
    db.session.add(
        CannedResponse(
            name="Card on its way", body="Dear {customer_name}, your card is on its way."
        )
    )
    db.session.commit()
    db.session.remove()

    open_console(page, "fay")
    _go_available(page)
    status, body = live_server.post(
        "/webhooks/email/inbound",
        _mail("<card-1@example.com>", "I ordered a new card two weeks ago."),
        {"Content-Type": "message/rfc822", "X-Inbound-Secret": INBOUND_SECRET},
    )
    assert status in (200, 201, 202), body
    expect(page.locator("#offer-eyebrow")).to_have_text("Incoming email")
    expect(page.locator("#caller-name")).to_have_text("Margaret Holloway")
    page.click("#accept-offer")
    expect(page.locator("#ticket-work-title")).to_contain_text("Where is my new card?")
    thread = page.locator("#ticket-work .message[data-kind='inbound']")
    expect(thread).to_contain_text("I ordered a new card two weeks ago.")
    save_screenshot(page, "workday-email-1-thread")
    assert _unlabelled_controls(page) == []

    # A colleague opens the same ticket: it shows here, live.
    # (A real Socket.IO client over HTTP: the in-process test client only reaches test clients.)
    ticket_id = db.session.scalar(sa.select(Ticket.id))
    token, _ = issue_token(db.session.get(User, gus_id))
    db.session.remove()
    with socketio.SimpleClient() as colleague:
        colleague.connect(
            live_server.url, namespace="/agent", auth={"token": token}, transports=["polling"]
        )
        assert colleague.call("view_ticket", {"ticket_id": ticket_id}, timeout=10)["ok"]
        expect(page.locator("#ticket-presence")).to_have_text("Gus Green is viewing")
        colleague.call("view_ticket", {"ticket_id": ticket_id, "replying": True}, timeout=10)
        expect(page.locator("#ticket-presence")).to_have_text("Gus Green is replying")
        save_screenshot(page, "workday-email-2-colleague-replying")
    expect(page.locator("#ticket-presence")).to_be_hidden()  # gone when their console goes

    # A canned response, then a line of our own; a reload mid-draft keeps it.
    page.select_option("#canned-response", label="Card on its way")
    expect(page.locator("#reply-body")).to_have_value(
        "Dear Margaret Holloway, your card is on its way."
    )
    page.locator("#reply-body").press("End")
    page.locator("#reply-body").type(" It was posted yesterday.")
    page.fill("#notes", "Card posted yesterday.")
    page.reload()
    expect(page.locator("#reply-body")).to_have_value(
        "Dear Margaret Holloway, your card is on its way. It was posted yesterday."
    )
    expect(page.locator("#notes")).to_have_value("Card posted yesterday.")
    save_screenshot(page, "workday-email-3-draft-after-reload")

    page.click("#send-reply")
    expect(page.locator("#ticket-work .message[data-kind='outbound']")).to_contain_text(
        "It was posted yesterday."
    )
    expect(page.locator("#reply-body")).to_have_value("")
    page.fill("#ticket-note", "Checked the dispatch log.")
    page.click("#add-ticket-note")
    expect(page.locator("#ticket-work .message[data-kind='note']")).to_contain_text(
        "Checked the dispatch log."
    )
    page.select_option("#ticket-status", "pending")
    page.click("#complete-interaction")
    expect(page.locator("#call-state")).to_have_text("Wrap-up")
    page.click("#finish-wrapup")
    expect(page.locator("#agent-status")).to_have_text("available")
    save_screenshot(page, "workday-email-4-done")

    def replies() -> list:
        mails = [message_from_bytes(e.content) for e in smtp_server.messages]
        return [m for m in mails if "posted yesterday" in m.get_payload(decode=True).decode()]

    for _ in range(100):
        run_jobs()
        if replies():
            break
        page.wait_for_timeout(100)
    [sent] = replies()
    assert sent["To"] == "margaret@example.com"
    assert "Where is my new card?" in sent["Subject"]
    assert (
        "Dear Margaret Holloway, your card is on its way." in sent.get_payload(decode=True).decode()
    )

    ticket = db.session.get(Ticket, ticket_id)
    assert ticket.status == "pending"
    kinds = db.session.scalars(
        sa.select(TicketMessage.kind)
        .where(TicketMessage.ticket_id == ticket_id)
        .order_by(TicketMessage.id)
    ).all()
    assert kinds == ["inbound", "auto_reply", "outbound", "note"]
    db.session.remove()
    # Sent drafts are gone from the browser.
    assert page.evaluate("Object.keys(localStorage).filter(k => k.includes(':reply'))") == []
    assert page_errors.messages == []


def test_search_finds_a_customer_by_any_phone_format_and_opens_their_record(
    app, create_user, live_server, page, page_errors
):
    create_customer({"name": "Ravi Shah", "phones": ["+44 7700 900777"]})
    create_user("alice", display_name="Alice Archer")
    db.session.commit()
    db.session.remove()
    open_console(page, "alice")
    page.keyboard.press("/")
    expect(page.locator("#search-q")).to_be_focused()
    page.fill("#search-q", "07700 900777")
    page.keyboard.press("Enter")
    expect(page.locator("#found-customers .record-main")).to_have_text(["Ravi Shah"])
    page.click("#found-customers .record-main")
    expect(page.locator("#lookup-title")).to_have_text("Ravi Shah")
    expect(page.locator("#lookup-call")).to_be_visible()
    expect(page.locator("#lookup-pop")).to_contain_text("+447700900777")
    save_screenshot(page, "workday-search")
    assert page_errors.messages == []
