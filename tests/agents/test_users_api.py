"""User administration: `/api/v1/users` for supervisors and admins; roles, validation, audit."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from werkzeug.security import check_password_hash

from contact_center import audit
from contact_center.agents.models import ApiToken, User
from contact_center.extensions import db
from contact_center.routing import services as routing
from tests.conftest import PASSWORD

NEW_PASSWORD = "a-long-enough-passphrase"  # noqa: S105


@pytest.fixture
def people(create_user, auth_header):
    """An admin, a supervisor and two agents, with bearer headers for the first three."""
    admin = create_user("ada", "admin", display_name="Ada Admin")
    supervisor = create_user("sam", "supervisor", display_name="Sam Super", team="Cards")
    alice = create_user("alice", team="Cards", skills={"lang:en": 5})
    bob = create_user("bob", team="Loans")
    return {
        "admin": admin,
        "supervisor": supervisor,
        "alice": alice,
        "bob": bob,
        "as_admin": auth_header(admin),
        "as_supervisor": auth_header(supervisor),
        "as_agent": auth_header(alice),
    }


def _users() -> list[tuple]:
    db.session.expire_all()
    return db.session.execute(
        sa.select(User.username, User.role, User.team, User.is_active_user).order_by(User.id)
    ).all()


def _no_secrets(body) -> None:
    text = str(body)
    assert "password" not in text and "hash" not in text and "token" not in text


# ---------------------------------------------------------------- roles on every route

ROUTES = [
    ("get", "/api/v1/users", None),
    ("post", "/api/v1/users", {"username": "zoe", "password": NEW_PASSWORD}),
    ("get", "/api/v1/users/{alice}", None),
    ("patch", "/api/v1/users/{alice}", {"team": "Loans"}),
    ("post", "/api/v1/users/{alice}/deactivate", None),
    ("post", "/api/v1/users/{alice}/reactivate", None),
    ("post", "/api/v1/users/{alice}/password", {"password": NEW_PASSWORD}),
]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
def test_anonymous_gets_401_and_agents_403(client, people, method, path, body):
    url = path.format(alice=people["alice"].id)
    before = _users()
    anonymous = getattr(client, method)(url, json=body)
    assert anonymous.status_code == 401
    assert anonymous.get_json()["error"]["code"] == "unauthorized"
    agent = getattr(client, method)(url, json=body, headers=people["as_agent"])
    assert agent.status_code == 403
    assert agent.get_json()["error"]["code"] == "forbidden"
    assert _users() == before
    assert audit.trail("user", people["alice"].id) == []


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [route for route in ROUTES if route[0] == "post" and route[1] != "/api/v1/users/{alice}"],
)
def test_supervisors_cannot_create_deactivate_or_reset(client, people, method, path, body):
    url = path.format(alice=people["alice"].id)
    before = _users()
    response = getattr(client, method)(url, json=body, headers=people["as_supervisor"])
    assert response.status_code == 403
    assert _users() == before


def test_list_filters_by_role_team_and_active(client, people):
    headers = people["as_supervisor"]
    everyone = client.get("/api/v1/users", headers=headers)
    assert everyone.status_code == 200
    assert {u["username"] for u in everyone.get_json()} == {"ada", "sam", "alice", "bob"}
    _no_secrets(everyone.get_json())
    agents = client.get("/api/v1/users?role=agent", headers=headers).get_json()
    assert {u["username"] for u in agents} == {"alice", "bob"}
    cards = client.get("/api/v1/users?team=Cards&role=agent", headers=headers).get_json()
    assert [u["username"] for u in cards] == ["alice"]
    assert cards[0]["skills"] == {"lang:en": 5}
    assert cards[0]["voice_endpoint"] == {"kind": "browser", "address": None}
    people["bob"].is_active_user = False
    db.session.commit()
    inactive = client.get("/api/v1/users?active=false", headers=headers).get_json()
    assert [u["username"] for u in inactive] == ["bob"]
    bad = client.get("/api/v1/users?role=king", headers=headers)
    assert bad.status_code == 422
    assert "role" in bad.get_json()["error"]["fields"]


# ---------------------------------------------------------------- create


def test_admin_creates_a_user_hashed_and_audited(client, people):
    body = {
        "username": "zoe",
        "display_name": "Zoe Zhang",
        "password": NEW_PASSWORD,
        "role": "agent",
        "team": "Cards",
        "skills": {"lang:zh": 4, "product:cards": 2},
        "capacity": {"email": 2},
        "voice_endpoint": {"kind": "phone", "address": "07911 123456"},
    }
    response = client.post("/api/v1/users", json=body, headers=people["as_admin"])
    assert response.status_code == 201, response.get_json()
    made = response.get_json()
    _no_secrets(made)
    assert made["skills"] == {"lang:zh": 4, "product:cards": 2}
    assert made["capacity"] == {"voice": 1, "email": 2, "callback": 1}
    assert made["voice_endpoint"] == {"kind": "phone", "address": "+447911123456"}
    assert made["active"] is True
    user = db.session.get(User, made["id"])
    assert check_password_hash(user.password_hash, NEW_PASSWORD)
    assert NEW_PASSWORD not in user.password_hash
    (event,) = audit.trail("user", user.id)
    assert event.action == "user.created" and event.actor_id == people["admin"].id
    assert event.after["skills"] == {"lang:zh": 4, "product:cards": 2}
    assert NEW_PASSWORD not in str(event.after) and "password" not in str(event.after)
    token = client.post("/api/v1/auth/tokens", json={"username": "zoe", "password": NEW_PASSWORD})
    assert token.status_code == 201


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"password": "short-1"}, "password"),
        ({"password": "zoe-the-agent", "username": "zoe-the-agent"}, "password"),
        ({"password": "aaaaaaaaaaaa"}, "password"),
        ({"password": None}, "password"),
        ({"username": "has space"}, "username"),
        ({"username": "alice"}, "username"),
        ({"role": "king"}, "role"),
        ({"skills": {"lang:en": 9}}, "skills"),
        ({"skills": {"bad name!": 2}}, "skills"),
        ({"capacity": {"fax": 1}}, "capacity"),
        ({"capacity": {"voice": -1}}, "capacity"),
        ({"voice_endpoint": {"kind": "phone", "address": "not a number"}}, "voice_endpoint"),
        ({"voice_endpoint": {"kind": "sip", "address": "sip:nohost"}}, "voice_endpoint"),
        ({"voice_endpoint": {"kind": "pigeon"}}, "voice_endpoint"),
    ],
)
def test_bad_input_names_the_field_and_creates_nothing(client, people, change, field):
    body = {"username": "zoe", "password": NEW_PASSWORD, **change}
    before = _users()
    response = client.post("/api/v1/users", json=body, headers=people["as_admin"])
    assert response.status_code in (409, 422)
    error = response.get_json()["error"]
    assert field in error["fields"], error
    assert _users() == before
    assert db.session.scalar(sa.select(sa.func.count()).select_from(audit.AuditEvent)) == 0


def test_malformed_body_is_400(client, people):
    response = client.post(
        "/api/v1/users", data="{", content_type="application/json", headers=people["as_admin"]
    )
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "bad_request"


# ---------------------------------------------------------------- update


def test_admin_updates_anything_audited(client, people):
    alice = people["alice"]
    response = client.patch(
        f"/api/v1/users/{alice.id}",
        json={
            "display_name": "Alice A.",
            "role": "supervisor",
            "voice_endpoint": {"kind": "sip", "address": "sip:alice@pbx.example.com"},
        },
        headers=people["as_admin"],
    )
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["role"] == "supervisor" and body["display_name"] == "Alice A."
    assert body["voice_endpoint"] == {"kind": "sip", "address": "sip:alice@pbx.example.com"}
    (event,) = audit.trail("user", alice.id)
    assert event.action == "user.updated" and event.actor_id == people["admin"].id
    assert event.before == {"display_name": "alice", "role": "agent", "voice_endpoint": None}
    assert event.after["role"] == "supervisor"


def test_supervisor_tunes_agents_only(client, people):
    alice = people["alice"]
    headers = people["as_supervisor"]
    ok = client.patch(
        f"/api/v1/users/{alice.id}",
        json={"team": "Loans", "skills": {"lang:de": 3}, "capacity": {"email": 1}},
        headers=headers,
    )
    assert ok.status_code == 200, ok.get_json()
    assert ok.get_json()["skills"] == {"lang:de": 3}  # the full set: lang:en was removed
    assert ok.get_json()["capacity"]["email"] == 1
    assert audit.trail("user", alice.id)[0].actor_id == people["supervisor"].id

    before = _users()
    role = client.patch(f"/api/v1/users/{alice.id}", json={"role": "admin"}, headers=headers)
    assert role.status_code == 403
    assert "role" in role.get_json()["error"]["fields"]
    name = client.patch(f"/api/v1/users/{alice.id}", json={"display_name": "X"}, headers=headers)
    assert name.status_code == 403
    admin = client.patch(
        f"/api/v1/users/{people['admin'].id}", json={"team": "Cards"}, headers=headers
    )
    assert admin.status_code == 403
    own = client.patch(
        f"/api/v1/users/{people['supervisor'].id}", json={"team": "Loans"}, headers=headers
    )
    assert own.status_code == 403
    assert _users() == before
    assert len(audit.trail("user", alice.id)) == 1


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"skills": {"lang:en": 0}},
        {"skills": ["lang:en"]},
        {"capacity": {"voice": "one"}},
        {"team": ""},
        {"voice_endpoint": {"kind": "phone"}},
        {"role": "agent", "unknown": 1},
    ],
)
def test_bad_update_is_422_and_changes_nothing(client, people, body):
    alice = people["alice"]
    before = (_users(), alice.skill_levels(), dict(alice.capacity))
    response = client.patch(f"/api/v1/users/{alice.id}", json=body, headers=people["as_admin"])
    assert response.status_code == 422, response.get_json()
    db.session.expire_all()
    assert (_users(), alice.skill_levels(), dict(alice.capacity)) == before
    assert audit.trail("user", alice.id) == []


def test_admin_cannot_change_their_own_role_and_unknown_users_are_404(client, people):
    admin = people["admin"]
    response = client.patch(
        f"/api/v1/users/{admin.id}", json={"role": "agent"}, headers=people["as_admin"]
    )
    assert response.status_code == 409
    db.session.refresh(admin)
    assert admin.role == "admin"
    missing = client.patch("/api/v1/users/999999", json={"team": "X"}, headers=people["as_admin"])
    assert missing.status_code == 404


# ---------------------------------------------------------------- deactivate and reactivate


def test_deactivation_revokes_tokens_at_once_and_blocks_login(client, people, auth_header):
    alice = people["alice"]
    routing.set_agent_status(alice, "available")
    second = auth_header(alice)
    assert client.get("/api/v1/customers", headers=people["as_agent"]).status_code == 200

    response = client.post(f"/api/v1/users/{alice.id}/deactivate", headers=people["as_admin"])
    assert response.status_code == 200
    assert response.get_json()["active"] is False
    for headers in (people["as_agent"], second):
        assert client.get("/api/v1/customers", headers=headers).status_code == 401
    db.session.expire_all()
    tokens = db.session.scalars(sa.select(ApiToken).where(ApiToken.user_id == alice.id)).all()
    assert tokens and all(record.revoked_at is not None for record in tokens)
    assert alice.session_epoch == 1
    assert alice.presence == "offline"
    assert routing.get_store().presence(alice.id) == "offline"
    refused = client.post("/api/v1/auth/tokens", json={"username": "alice", "password": PASSWORD})
    assert refused.status_code == 401
    # The deactivation, then the refused sign-in (as every attempt is audited).
    actions = [e.action for e in audit.trail("user", alice.id)]
    assert actions == ["user.deactivated", "user.sign_in_failed"]

    back = client.post(f"/api/v1/users/{alice.id}/reactivate", headers=people["as_admin"])
    assert back.status_code == 200 and back.get_json()["active"] is True
    again = client.post("/api/v1/auth/tokens", json={"username": "alice", "password": PASSWORD})
    assert again.status_code == 201
    assert [e.action for e in audit.trail("user", alice.id)] == [
        "user.deactivated",
        "user.sign_in_failed",
        "user.reactivated",
        "user.signed_in",
    ]


def test_deactivation_ends_login_sessions(client, people):
    page = client.get("/login").get_data(as_text=True)
    csrf = page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    client.post("/login", data={"username": "alice", "password": PASSWORD, "csrf_token": csrf})
    assert client.get("/agent").status_code == 200
    client.application.test_client().post(
        f"/api/v1/users/{people['alice'].id}/deactivate", headers=people["as_admin"]
    )
    assert client.get("/agent").status_code == 302  # back to the login page


def test_admin_cannot_deactivate_themselves(client, people):
    admin = people["admin"]
    response = client.post(f"/api/v1/users/{admin.id}/deactivate", headers=people["as_admin"])
    assert response.status_code == 409
    db.session.refresh(admin)
    assert admin.is_active_user
    assert client.get("/api/v1/users", headers=people["as_admin"]).status_code == 200
    assert audit.trail("user", admin.id) == []


# ---------------------------------------------------------------- password reset


def test_admin_resets_a_password_audited_without_it(client, people):
    alice = people["alice"]
    response = client.post(
        f"/api/v1/users/{alice.id}/password",
        json={"password": NEW_PASSWORD},
        headers=people["as_admin"],
    )
    assert response.status_code == 204
    assert client.get("/api/v1/customers", headers=people["as_agent"]).status_code == 401
    old = client.post("/api/v1/auth/tokens", json={"username": "alice", "password": PASSWORD})
    assert old.status_code == 401
    new = client.post("/api/v1/auth/tokens", json={"username": "alice", "password": NEW_PASSWORD})
    assert new.status_code == 201
    event, failed, signed_in = audit.trail("user", alice.id)
    assert event.action == "user.password_reset"
    assert event.before is None and event.after is None
    assert (failed.action, failed.after["reason"]) == ("user.sign_in_failed", "wrong_credentials")
    assert (signed_in.action, signed_in.after) == ("user.signed_in", {"via": "api"})
    assert NEW_PASSWORD not in str([failed.after, signed_in.after])


@pytest.mark.parametrize("password", ["short", "alice", "ALICE", "", "x" * 201])
def test_reset_refuses_weak_passwords_and_changes_nothing(client, people, password):
    alice = people["alice"]
    hashed = alice.password_hash
    response = client.post(
        f"/api/v1/users/{alice.id}/password",
        json={"password": password},
        headers=people["as_admin"],
    )
    assert response.status_code == 422
    assert "password" in response.get_json()["error"]["fields"]
    db.session.refresh(alice)
    assert alice.password_hash == hashed
    assert client.get("/api/v1/customers", headers=people["as_agent"]).status_code == 200
    assert audit.trail("user", alice.id) == []
