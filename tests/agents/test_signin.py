"""Password sign-ins: lockout after repeated failures, a per-address rate limit, an audit line
for every attempt, on the login form and the token API alike."""

from __future__ import annotations

import time

import pytest

from contact_center import audit
from tests.conftest import PASSWORD

NEW_PASSWORD = "a-brand-new-passphrase"  # noqa: S105


@pytest.fixture
def app_config(app_config):
    return {**app_config, "LOGIN_MAX_FAILURES": 3, "LOGIN_LOCKOUT_S": 600}


def token(client, username: str, password: str):
    return client.post("/api/v1/auth/tokens", json={"username": username, "password": password})


def form_login(client, username: str, password: str):
    page = client.get("/login").get_data(as_text=True)
    csrf = page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    return client.post(
        "/login", data={"username": username, "password": password, "csrf_token": csrf}
    )


def test_repeated_failures_lock_the_account_even_for_the_right_password(client, create_user):
    alice = create_user("alice")
    for _ in range(3):
        assert token(client, "alice", "wrong-password").status_code == 401
    locked = token(client, "alice", PASSWORD)
    assert locked.status_code == 429
    assert locked.get_json()["error"]["code"] == "rate_limited"
    assert 590 <= int(locked.headers["Retry-After"]) <= 600
    page = form_login(client, "alice", PASSWORD)  # the form is locked out too
    assert page.status_code == 429 and "locked for 10 more minutes" in page.get_data(as_text=True)
    assert token(client, "ALICE ", PASSWORD).status_code in (401, 429)  # same account key
    reasons = [e.after["reason"] for e in audit.trail("user", alice.id)]
    assert reasons[:4] == ["wrong_credentials", "wrong_credentials", "locked_now", "locked"]
    assert all(PASSWORD not in str(e.after) for e in audit.trail("user", alice.id))


def test_an_admin_setting_a_new_password_unlocks(client, create_user, auth_header):
    alice = create_user("alice")
    admin = auth_header(create_user("ada", "admin"))
    for _ in range(3):
        token(client, "alice", "wrong-password")
    assert token(client, "alice", PASSWORD).status_code == 429
    reset = client.post(
        f"/api/v1/users/{alice.id}/password", json={"password": NEW_PASSWORD}, headers=admin
    )
    assert reset.status_code == 204
    assert token(client, "alice", NEW_PASSWORD).status_code == 201


def test_a_success_clears_earlier_failures(client, create_user):
    create_user("alice")
    for _ in range(2):
        token(client, "alice", "wrong-password")
    assert token(client, "alice", PASSWORD).status_code == 201
    for _ in range(2):
        token(client, "alice", "wrong-password")
    assert token(client, "alice", PASSWORD).status_code == 201  # 2 + 2 failures: no lock


def test_a_lock_ends_by_itself(client, create_user, app):
    app.config["LOGIN_LOCKOUT_S"] = 1
    create_user("alice")
    for _ in range(3):
        token(client, "alice", "wrong-password")
    assert token(client, "alice", PASSWORD).status_code == 429
    time.sleep(2.1)  # waiting for the lock to expire; nothing is timed
    assert token(client, "alice", PASSWORD).status_code == 201


def test_unknown_usernames_are_audited_and_counted_like_known_ones(client):
    for _ in range(3):
        assert token(client, "mallory", "guess-guess").status_code == 401
    assert token(client, "mallory", "guess-guess").status_code == 429
    failures = audit.trail("user", 0)
    assert [e.after["username"] for e in failures] == ["mallory"] * 4
    assert {e.after["via"] for e in failures} == {"api"}


def test_each_address_may_try_only_so_often(client, create_user, app):
    app.config["LOGIN_RATE_LIMIT"] = "4 per minute"
    create_user("alice")
    create_user("bob")
    assert token(client, "alice", PASSWORD).status_code == 201
    assert token(client, "bob", PASSWORD).status_code == 201
    assert form_login(client, "alice", PASSWORD).status_code == 302
    assert token(client, "bob", "wrong-password").status_code == 401
    refused = token(client, "alice", PASSWORD)  # the fifth POST from this address
    assert refused.status_code == 429
    assert refused.get_json()["error"]["code"] == "rate_limited"
    assert "Retry-After" in refused.headers
    page = form_login(client, "bob", PASSWORD)
    assert page.status_code == 429
    assert "Too many sign-in attempts" in page.get_data(as_text=True)
    assert int(page.headers["Retry-After"]) > 0
    assert client.get("/login").status_code == 200  # reading the page is not limited


def test_a_successful_form_sign_in_is_audited(client, create_user):
    alice = create_user("alice")
    assert form_login(client, "alice", PASSWORD).status_code == 302
    (event,) = audit.trail("user", alice.id)
    assert (event.action, event.actor_id) == ("user.signed_in", alice.id)
    assert event.after == {"via": "web"}
    assert event.source == "127.0.0.1"
