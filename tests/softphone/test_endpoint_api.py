"""`/api/v1/agents/me/endpoint` and `/api/v1/agents/<id>/endpoint`: where an agent's calls ring."""

from __future__ import annotations

import logging

import pytest
import sqlalchemy as sa

from contact_center.agents.models import User
from contact_center.audit import AuditEvent, trail
from contact_center.extensions import db
from tests.conftest import PASSWORD
from tests.softphone.conftest import session_client

ME = "/api/v1/agents/me/endpoint"


def _stored(user: User) -> str | None:
    db.session.expire_all()
    return db.session.get(User, user.id).voice_endpoint


def _audit_count() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent))


def test_by_default_calls_ring_in_the_browser(client, create_user, auth_header):
    alice = create_user("alice")
    response = client.get(ME, headers=auth_header(alice))
    assert response.status_code == 200
    assert response.get_json() == {
        "agent_id": alice.id,
        "kind": "browser",
        "address": "client:alice",
        "masked_address": "client:alice",
        "identity": "alice",
        "softphone_configured": True,
    }


def test_a_phone_number_is_stored_in_e164_audited_and_masked_in_logs(
    client, create_user, auth_header, caplog
):
    alice = create_user("alice")
    caplog.set_level(logging.DEBUG)
    response = client.patch(
        ME, json={"kind": "phone", "address": "07911 123456"}, headers=auth_header(alice)
    )
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["kind"] == "phone" and body["address"] == "+447911123456"
    assert body["identity"] is None
    assert body["masked_address"] == "+44***56"
    assert _stored(alice) == "+447911123456"
    (event,) = trail("user", alice.id)
    assert event.action == "agent.voice_endpoint" and event.actor_id == alice.id
    assert event.before == {"voice_endpoint": None}
    assert event.after == {"voice_endpoint": "+447911123456"}
    assert "+447911123456" not in caplog.text and "7911123456" not in caplog.text
    assert "+44***56" in caplog.text
    # Back to the browser: the default again (client:<username>).
    back = client.patch(ME, json={"kind": "browser"}, headers=auth_header(alice))
    assert back.status_code == 200 and back.get_json()["identity"] == "alice"
    assert _stored(alice) is None
    assert len(trail("user", alice.id)) == 2
    # Saving the same choice again changes nothing and audits nothing.
    client.patch(ME, json={"kind": "browser", "address": None}, headers=auth_header(alice))
    assert len(trail("user", alice.id)) == 2


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("sip:alice@pbx.example.com", "sip:alice@pbx.example.com"),
        ("SIP:Alice.Smith@PBX.Example.com:5061;transport=tls", None),
        ("sip:1001@203.0.113.7", "sip:1001@203.0.113.7"),
    ],
)
def test_a_sip_address(client, create_user, auth_header, given, stored):
    alice = create_user("alice")
    response = client.patch(ME, json={"kind": "sip", "address": given}, headers=auth_header(alice))
    assert response.status_code == 200, response.get_json()
    expected = stored or "sip:Alice.Smith@pbx.example.com:5061;transport=tls"
    assert response.get_json()["address"] == expected and _stored(alice) == expected
    assert response.get_json()["masked_address"].startswith("sip:")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "phone", "address": "12345"}, "address"),
        ({"kind": "phone", "address": "not a number"}, "address"),
        ({"kind": "phone", "address": "+44 20 7946 001"}, "address"),  # one digit short
        ({"kind": "phone"}, "address"),
        ({"kind": "phone", "address": ""}, "address"),
        ({"kind": "sip", "address": "alice@pbx.example.com"}, "address"),
        ({"kind": "sip", "address": "sip:alice@"}, "address"),
        ({"kind": "sip", "address": "sip:@pbx.example.com"}, "address"),
        ({"kind": "sip", "address": "sip:alice@localhost"}, "address"),
        ({"kind": "sip", "address": "sip:alice@pbx.example.com:70000"}, "address"),
        ({"kind": "sip", "address": "sip:alice@pbx.example.com?X-Evil=1"}, "address"),
        ({"kind": "sip", "address": "sip:al ice@pbx.example.com"}, "address"),
        ({"kind": "sip", "address": "sip:alice@-pbx.example.com"}, "address"),
        ({"kind": "sip", "address": "+447911123456"}, "address"),
        ({"kind": "sip", "address": "sip:" + "a" * 200 + "@pbx.example.com"}, "address"),
        ({"kind": "browser", "address": "client:bob"}, "address"),
        ({"kind": "fax", "address": "+447911123456"}, "kind"),
        ({"address": "+447911123456"}, "kind"),
        ({"kind": "phone", "address": "+447911123456", "agent_id": 99}, "agent_id"),
    ],
)
def test_bad_input_is_422_and_changes_nothing(client, create_user, auth_header, body, field):
    alice = create_user("alice")
    alice.voice_endpoint = "+447700900999"
    db.session.commit()
    response = client.patch(ME, json=body, headers=auth_header(alice))
    assert response.status_code == 422, response.get_json()
    error = response.get_json()["error"]
    assert error["code"] == "validation_error" and field in error["fields"]
    assert _stored(alice) == "+447700900999"
    assert _audit_count() == 0


def test_an_agent_sets_only_their_own(client, create_user, auth_header):
    alice = create_user("alice")
    bob = create_user("bob")
    path = f"/api/v1/agents/{bob.id}/endpoint"
    assert client.get(path, headers=auth_header(alice)).status_code == 403
    refused = client.patch(
        path, json={"kind": "phone", "address": "+447911123456"}, headers=auth_header(alice)
    )
    assert refused.status_code == 403
    assert _stored(bob) is None
    assert client.get(ME).status_code == 401
    assert client.patch(ME, json={"kind": "browser"}).status_code == 401


def test_a_supervisor_sets_an_agents_endpoint(client, create_user, auth_header):
    bob = create_user("bob")
    sam = create_user("sam", role="supervisor")
    path = f"/api/v1/agents/{bob.id}/endpoint"
    response = client.patch(
        path, json={"kind": "sip", "address": "sip:bob@pbx.example.com"}, headers=auth_header(sam)
    )
    assert response.status_code == 200
    assert response.get_json()["agent_id"] == bob.id
    assert _stored(bob) == "sip:bob@pbx.example.com"
    (event,) = trail("user", bob.id)
    assert event.actor_id == sam.id
    assert client.get(path, headers=auth_header(sam)).get_json()["kind"] == "sip"
    missing = client.get("/api/v1/agents/999999/endpoint", headers=auth_header(sam))
    assert missing.status_code == 404
    # Not an admin's, though: that would redirect a more powerful user's calls.
    ada = create_user("ada", role="admin")
    refused = client.patch(
        f"/api/v1/agents/{ada.id}/endpoint",
        json={"kind": "phone", "address": "+447911123456"},
        headers=auth_header(sam),
    )
    assert refused.status_code == 403
    assert _stored(ada) is None
    allowed = client.patch(path, json={"kind": "browser"}, headers=auth_header(ada))
    assert allowed.status_code == 200 and _stored(bob) is None


def test_the_console_changes_it_with_the_session_and_csrf_token(client, create_user):
    alice = create_user("alice")
    csrf = session_client(client, "alice", PASSWORD)
    assert client.get(ME).get_json()["kind"] == "browser"
    body = {"kind": "phone", "address": "+447911123456"}
    assert client.patch(ME, json=body).status_code == 401
    assert _stored(alice) is None
    changed = client.patch(ME, json=body, headers={"X-CSRFToken": csrf})
    assert changed.status_code == 200
    assert _stored(alice) == "+447911123456"
