"""The configuration pages: supervisors and admins only; agents get 403."""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD


def _sign_in(client, username: str) -> None:
    page = client.get("/login").get_data(as_text=True)
    csrf = page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    response = client.post(
        "/login", data={"username": username, "password": PASSWORD, "csrf_token": csrf}
    )
    assert response.status_code == 302


@pytest.mark.parametrize("path", ["/admin/users", "/admin/queues"])
def test_anonymous_goes_to_login_and_agents_get_403(client, create_user, path):
    anonymous = client.get(path)
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]
    create_user("alice")
    _sign_in(client, "alice")
    assert client.get(path).status_code == 403


def test_supervisors_see_the_pages_without_admin_forms(client, create_user):
    create_user("sam", "supervisor")
    _sign_in(client, "sam")
    users = client.get("/admin/users").get_data(as_text=True)
    assert 'id="users-rows"' in users and 'src="/static/js/admin.js"' in users
    assert 'id="create-form"' not in users and 'id="password-form"' not in users
    assert 'id="edit-form-role"' not in users  # a supervisor edits team, skills, capacity
    assert 'id="edit-form-skills"' in users
    queues = client.get("/admin/queues").get_data(as_text=True)
    assert 'id="queue-form"' in queues
    console = client.get("/agent").get_data(as_text=True)
    assert 'href="/admin/users"' in console and 'href="/admin/queues"' in console


def test_admins_get_the_forms_with_errors_wired_to_inputs(client, create_user):
    create_user("ada", "admin")
    _sign_in(client, "ada")
    users = client.get("/admin/users").get_data(as_text=True)
    assert 'id="create-form"' in users and 'id="password-form"' in users
    assert 'aria-describedby="create-form-password-error create-form-password-hint"' in users
    assert 'id="create-form-password-error" data-error-for="password"' in users
    assert "<script>" not in users  # CSP: scripts come from static files only


def test_agents_console_has_no_configuration_links(client, create_user):
    create_user("alice")
    _sign_in(client, "alice")
    console = client.get("/agent").get_data(as_text=True)
    assert "/admin/users" not in console
