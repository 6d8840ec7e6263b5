"""API tokens: issue, use, revoke, expire; roles enforced."""

from __future__ import annotations

import time
from datetime import timedelta

import sqlalchemy as sa
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from contact_center.agents.models import ApiToken
from contact_center.db_types import utcnow
from contact_center.extensions import db
from tests.conftest import PASSWORD


def test_token_is_issued_stored_hashed_and_revocable(client, create_user):
    create_user("alice")
    response = client.post("/api/v1/auth/tokens", json={"username": "alice", "password": PASSWORD})
    assert response.status_code == 201
    body = response.get_json()
    token = body["token"]
    assert body["expires_at"].endswith("Z")
    stored = db.session.scalars(sa.select(ApiToken.token_hash)).all()
    assert len(stored) == 1
    assert token not in stored[0]
    assert len(stored[0]) == 64

    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/customers", headers=headers).status_code == 200
    assert client.delete("/api/v1/auth/tokens/current", headers=headers).status_code == 204
    refused = client.get("/api/v1/customers", headers=headers)
    assert refused.status_code == 401
    assert refused.get_json()["error"]["code"] == "unauthorized"


def test_wrong_password_and_unknown_user_get_the_same_401(client, create_user):
    create_user("alice")
    wrong = client.post("/api/v1/auth/tokens", json={"username": "alice", "password": "nope-nope"})
    unknown = client.post("/api/v1/auth/tokens", json={"username": "zed", "password": PASSWORD})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.get_json() == unknown.get_json()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ApiToken)) == 0


def test_bad_token_requests_are_validated(client):
    missing = client.post("/api/v1/auth/tokens", json={"username": "alice"})
    assert missing.status_code == 422
    fields = missing.get_json()["error"]["fields"]
    assert fields == {"password": ["Missing data for required field."]}
    malformed = client.post(
        "/api/v1/auth/tokens", data="{not json", content_type="application/json"
    )
    assert malformed.status_code == 400
    assert malformed.get_json()["error"]["code"] == "bad_request"
    extra = client.post(
        "/api/v1/auth/tokens", json={"username": "a", "password": "b", "admin": True}
    )
    assert extra.status_code == 422
    assert "admin" in extra.get_json()["error"]["fields"]


def test_expired_token_is_refused(client, create_user, auth_header):
    user = create_user("alice")
    headers = auth_header(user)
    record = db.session.scalar(sa.select(ApiToken))
    record.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert client.get("/api/v1/customers", headers=headers).status_code == 401


def test_inactive_user_token_is_refused(client, create_user, auth_header):
    user = create_user("alice")
    headers = auth_header(user)
    user.is_active_user = False
    db.session.commit()
    assert client.get("/api/v1/customers", headers=headers).status_code == 401


def test_no_credentials_and_garbage_schemes_get_401(client):
    assert client.get("/api/v1/customers").status_code == 401
    basic = client.get("/api/v1/customers", headers={"Authorization": "Basic abc"})
    assert basic.status_code == 401
    assert client.get("/api/v1/customers", headers={"Authorization": "Bearer "}).status_code == 401


def test_session_login_reads_but_cannot_write_without_token(client, create_user):
    create_user("alice")
    page = client.get("/login")
    token = page.get_data(as_text=True).split('name="csrf_token" type="hidden" value="')[1]
    csrf = token.split('"')[0]
    login = client.post(
        "/login", data={"username": "alice", "password": PASSWORD, "csrf_token": csrf}
    )
    assert login.status_code == 302
    assert client.get("/api/v1/customers").status_code == 200
    write = client.post("/api/v1/customers", json={"name": "Someone"})
    assert write.status_code == 401


def test_session_writes_with_the_pages_csrf_token_and_not_with_a_forged_one(client, create_user):
    create_user("alice")
    page = client.get("/login")
    token = page.get_data(as_text=True).split('name="csrf_token" type="hidden" value="')[1]
    csrf = token.split('"')[0]
    client.post("/login", data={"username": "alice", "password": PASSWORD, "csrf_token": csrf})
    console = client.get("/agent").get_data(as_text=True)
    page_token = console.split('<meta name="csrf-token" content="')[1].split('"')[0]

    forged = client.post(
        "/api/v1/customers", json={"name": "Forged"}, headers={"X-CSRFToken": "x" + page_token}
    )
    assert forged.status_code == 403
    assert forged.get_json()["error"]["code"] == "csrf_failed"
    assert client.get("/api/v1/customers?q=Forged").get_json() == []

    made = client.post(
        "/api/v1/customers", json={"name": "Real"}, headers={"X-CSRFToken": page_token}
    )
    assert made.status_code == 201
    assert made.get_json()["name"] == "Real"


def test_a_console_pages_csrf_token_lasts_the_whole_shift(app, client, create_user):
    """A token signed two hours ago (Flask-WTF's default limit is one) still authorises."""
    create_user("alice")
    page = client.get("/login").get_data(as_text=True)
    csrf = page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    client.post("/login", data={"username": "alice", "password": PASSWORD, "csrf_token": csrf})
    client.get("/agent")
    with client.session_transaction() as session:
        raw = session["csrf_token"]

    class TwoHoursAgo(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - 7200

    signing = URLSafeTimedSerializer(app.secret_key, salt="wtf-csrf-token", signer=TwoHoursAgo)
    old_token = signing.dumps(raw)
    made = client.post(
        "/api/v1/customers", json={"name": "Late Shift"}, headers={"X-CSRFToken": old_token}
    )
    assert made.status_code == 201
