"""The public portal in a real browser: file a complaint with an attachment, land on its
status page with the regulatory deadline, add information."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect

from contact_center.complaints.models import Complaint
from contact_center.extensions import db
from contact_center.tickets.models import MailAttachment, Ticket, TicketMessage

pytestmark = pytest.mark.e2e


def test_customer_files_a_complaint_and_follows_it(
    app, live_server, page: Page, page_errors, tmp_path
):
    db.session.remove()  # nothing of ours stays open while the server thread writes
    evidence = tmp_path / "statement.pdf"
    evidence.write_bytes(b"%PDF-1.4 the statement")

    page.goto("/support")
    expect(page.get_by_role("heading", name="Contact us")).to_be_visible()
    page.get_by_label("A complaint").check()
    page.get_by_label("Your name").fill("Mei Chen")
    page.get_by_label("Email").fill("mei@example.org")
    page.get_by_label("Topic").select_option("fees")
    page.get_by_label("Subject").fill("Charged twice")
    page.get_by_label("Tell us what happened").fill("The annual fee was taken twice in May.")
    page.set_input_files("#attachments", str(evidence))
    page.click("#send")

    expect(page.locator("#portal-message")).to_contain_text("We have sent an email")
    # The customer follows the link from the acknowledgement mail.
    db.session.expire_all()
    ack = db.session.scalars(
        sa.select(TicketMessage).where(TicketMessage.kind == "auto_reply")
    ).one()
    page.goto(re.search(r"http://cc\.test(/support/status/\S+)", ack.body)[1])
    number = page.locator("#case-number").inner_text()
    expect(page.locator("#case-status")).to_have_text("Received: waiting for one of our team")
    expect(page.locator("#final-response-due")).to_have_text(re.compile(r"^\d{1,2} \w+ 20\d\d$"))
    expect(page.locator(".case-message").first).to_contain_text("taken twice in May")

    page.get_by_label("Add information").fill("It happened again in June.")
    page.click("#add-info")
    expect(page).to_have_url(re.compile(r"\?added=1$"))
    expect(page.locator(".case-message-you")).to_have_count(2)
    expect(page.locator(".case-message-you").last).to_contain_text("again in June")

    complaint = db.session.scalars(sa.select(Complaint)).one()
    ticket = db.session.get(Ticket, complaint.ticket_id)
    assert ticket.number == number and complaint.category == "fees"
    assert db.session.scalars(sa.select(MailAttachment.filename)).all() == ["statement.pdf"]
    assert page_errors.messages == []


def test_bad_submission_shows_what_to_fix(app, live_server, page: Page, page_errors):
    db.session.remove()
    page.goto("/support")
    page.get_by_label("Your name").fill("Mei Chen")
    page.get_by_label("Email").fill("not an address")
    page.get_by_label("Subject").fill("Hello")
    page.get_by_label("Tell us what happened").fill("Something")
    page.click("#send")
    expect(page.locator("#portal-error")).to_have_text("Not a valid email address.")
    expect(page.get_by_label("Your name")).to_have_value("Mei Chen")  # what was typed stays
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Ticket)) == 0
    # The refused form comes back with status 400, which Chromium logs; nothing else may.
    assert [m for m in page_errors.messages if "status of 400" not in m] == []
