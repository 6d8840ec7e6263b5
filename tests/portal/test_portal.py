"""The public portal over HTTP: submissions, CSRF, limits, the status page, the CSAT survey."""

from __future__ import annotations

import io
import re

import pytest
import sqlalchemy as sa
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.test import encode_multipart

from contact_center.complaints.models import Complaint
from contact_center.complaints.profiles import PROFILES
from contact_center.customers.models import Customer
from contact_center.extensions import db
from contact_center.portal import services as portal
from contact_center.routing.models import Interaction
from contact_center.tickets.models import MailAttachment, Ticket, TicketMessage

FORM = {
    "kind": "enquiry",
    "name": "Mei Chen",
    "email": "Mei@Example.org",
    "phone": "07700 900123",
    "category": "cards",
    "subject": "Card not arrived",
    "description": "I ordered a card two weeks ago.",
}


def _csrf(client, url: str) -> str:
    page = client.get(url)
    assert page.status_code == 200
    return re.search(
        r'name="csrf_token" type="hidden" value="([^"]+)"', page.get_data(as_text=True)
    )[1]


def _post(client, url: str, data: dict, files=()):
    fields = MultiDict({**data, "csrf_token": _csrf(client, url)})
    for name, content in files:
        fields.add("attachments", FileStorage(io.BytesIO(content), filename=name))
    # Encoded here, in memory: the test client's own encoder leaves a temporary file open.
    boundary, body = encode_multipart(fields)
    return client.post(url, data=body, content_type=f"multipart/form-data; boundary={boundary}")


def _status_url(ticket: Ticket) -> str:
    """The status link from the acknowledgement mail, as the customer gets it."""
    ack = next(m for m in ticket.messages if m.kind == "auto_reply")
    return re.search(r"http://cc\.test(/support/status/\S+)", ack.body)[1]


def _submitted(response) -> Ticket:
    assert response.status_code == 200, response.get_data(as_text=True)
    page = response.get_data(as_text=True)
    ticket = db.session.scalars(sa.select(Ticket).order_by(Ticket.id.desc()).limit(1)).one()
    assert f"case {ticket.number}" in page and "/support/status/" not in page
    return ticket


def _count(model) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def test_an_enquiry_becomes_a_routed_ticket_with_a_status_link(app, client):
    response = _post(client, "/support", FORM, files=[("receipt.pdf", b"%PDF-1.4 receipt")])
    ticket = _submitted(response)
    status_url = _status_url(ticket)
    assert ticket.channel == "web" and ticket.status == "new" and ticket.tags == ["category:cards"]
    customer = db.session.get(Customer, ticket.customer_id)
    assert customer.identity_values("email") == ["mei@example.org"]
    assert customer.identity_values("phone") == ["+447700900123"]
    assert db.session.scalars(sa.select(MailAttachment.filename)).all() == ["receipt.pdf"]
    interaction = db.session.scalars(sa.select(Interaction)).one()
    assert interaction.channel == "email" and interaction.status == "queued"
    ack = next(m for m in ticket.messages if m.kind == "auto_reply")
    assert ack.to_address == "mei@example.org"
    assert "http://cc.test/support/status/" in ack.body

    page = client.get(status_url).get_data(as_text=True)
    assert ticket.number in page and "Received: waiting for one of our team" in page
    assert "I ordered a card two weeks ago." in page


def test_a_complaint_starts_its_clocks_and_shows_the_deadline(app, client):
    response = _post(client, "/support", {**FORM, "kind": "complaint", "category": "fees"})
    ticket = _submitted(response)
    complaint = db.session.scalars(sa.select(Complaint)).one()
    assert complaint.channel_received == "web" and complaint.category == "fees"
    assert complaint.ticket.type == "complaint"
    assert db.session.scalar(sa.select(Interaction.is_complaint)) is True
    page = client.get(_status_url(ticket)).get_data(as_text=True)
    assert PROFILES[complaint.profile].local_date(complaint.final_response_due) in page


def test_refusals_write_nothing(app, client):
    no_csrf = client.post("/support", data=FORM, content_type="multipart/form-data")
    assert no_csrf.status_code == 400
    bad_email = _post(client, "/support", {**FORM, "email": "not-an-address"})
    assert bad_email.status_code == 400 and "Not a valid email address." in bad_email.get_data(
        as_text=True
    )
    missing = _post(client, "/support", {**FORM, "description": ""})
    assert missing.status_code == 400
    big = _post(client, "/support", FORM, files=[("huge.bin", b"x" * (5 * 1024 * 1024 + 1))])
    assert big.status_code == 400 and "huge.bin is over 5 MB" in big.get_data(as_text=True)
    many = _post(client, "/support", FORM, files=[(f"f{n}.txt", b"x") for n in range(4)])
    assert many.status_code == 400
    assert _count(Ticket) == 0 and _count(Customer) == 0 and _count(Interaction) == 0


def test_submissions_are_rate_limited_per_address(app, client):
    for _ in range(portal.SUBMISSIONS_PER_WINDOW):
        assert _post(client, "/support", FORM).status_code == 200
    limited = _post(client, "/support", FORM)
    assert limited.status_code == 429
    assert _count(Ticket) == portal.SUBMISSIONS_PER_WINDOW


def test_status_page_needs_a_valid_link_and_takes_more_information(app, client, api_agent):
    url = _status_url(_submitted(_post(client, "/support", FORM)))
    assert client.get("/support/status/forged-token").status_code == 404
    assert client.get(url[:-3] + "abc").status_code == 404
    ticket = db.session.scalars(sa.select(Ticket)).one()
    api_agent("post", f"/api/v1/tickets/{ticket.id}/notes", json={"body": "INTERNAL: VIP"})
    assert "INTERNAL" not in client.get(url).get_data(as_text=True)

    added = _post(client, url, {"text": "My address changed last month."})
    assert added.status_code == 302 and added.headers["Location"].endswith("?added=1")
    db.session.expire_all()
    texts = [m.body for m in ticket.messages if m.kind == "inbound"]
    assert texts[-1] == "My address changed last month."
    assert _count(Interaction) == 2  # the new information goes to an agent too

    token = _csrf(client, url)
    api_agent("patch", f"/api/v1/tickets/{ticket.id}", json={"status": "solved"})
    api_agent("patch", f"/api/v1/tickets/{ticket.id}", json={"status": "closed"})
    assert 'id="info-form"' not in client.get(url).get_data(as_text=True)
    closed = client.post(url, data={"text": "One more thing", "csrf_token": token})
    assert closed.status_code == 400 and "closed" in closed.get_data(as_text=True)


@pytest.fixture
def api_agent(client, auth_header, create_user):
    headers = auth_header(create_user("alice"))
    return lambda method, url, **kw: getattr(client, method)(url, headers=headers, **kw)


def test_solving_a_ticket_sends_a_survey_whose_answer_is_kept(app, client, api_agent):
    _post(client, "/support", FORM)
    ticket = db.session.scalars(sa.select(Ticket)).one()
    assert (
        api_agent("patch", f"/api/v1/tickets/{ticket.id}", json={"status": "solved"}).status_code
        == 200
    )
    survey = db.session.scalars(
        sa.select(TicketMessage).where(TicketMessage.subject.like("How did we do?%"))
    ).one()
    link = re.search(r"http://cc\.test(/survey/\S+)", survey.body)[1]
    assert client.get("/survey/forged").status_code == 404
    assert _post(client, link, {"score": "9"}).status_code == 400
    done = _post(client, link, {"score": "4", "comment": "Quick and kind."})
    assert done.status_code == 200 and "Thank you" in done.get_data(as_text=True)
    interaction = db.session.scalars(sa.select(Interaction)).one()
    db.session.refresh(interaction)
    assert (interaction.satisfaction, interaction.satisfaction_comment) == (4, "Quick and kind.")
    history = api_agent("get", f"/api/v1/customers/{ticket.customer_id}/history").get_json()
    assert history["satisfaction"] == {"last": 4, "average": 4.0}
