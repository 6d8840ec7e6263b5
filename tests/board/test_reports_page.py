"""`/supervisor/reports`: supervisors and admins see it; agents get 403; others sign in."""

from __future__ import annotations

from contact_center.extensions import db
from contact_center.routing import services as routing
from tests.conftest import PASSWORD


def _sign_in(client, username: str) -> None:
    page = client.get("/login")
    token = page.get_data(as_text=True).split('name="csrf_token" type="hidden" value="')[1]
    response = client.post(
        "/login",
        data={"username": username, "password": PASSWORD, "csrf_token": token.split('"')[0]},
    )
    assert response.status_code == 302


def test_signed_out_goes_to_login(client):
    response = client.get("/supervisor/reports")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_agents_are_refused(client, create_user):
    create_user("ann")
    _sign_in(client, "ann")
    assert client.get("/supervisor/reports").status_code == 403


def test_supervisor_sees_the_page_with_its_script_and_definitions(client, create_user):
    routing.create_queue(name="Sales <east>")
    db.session.commit()
    create_user("sam", role="supervisor")
    _sign_in(client, "sam")
    response = client.get("/supervisor/reports")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "/static/js/reports.js" in html and "<script>" not in html
    assert "Sales &lt;east&gt;" in html
    assert "(offered - abandoned within the threshold)" in html
