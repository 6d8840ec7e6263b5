"""`POST /api/v1/agents/me/voice-token`: a Voice SDK access token for the agent's own identity.

Twilio only ever sees the token, so the token is the boundary: its signature (HS256 with
the API key secret), issuer, subject, identity, voice grant and lifetime.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

import pytest

from contact_center import config as settings
from contact_center.extensions import db
from tests.conftest import ACCOUNT_SID, PASSWORD
from tests.softphone.conftest import (
    API_KEY_SECRET,
    API_KEY_SID,
    TWIML_APP_SID,
    decode_jwt,
    session_client,
)

TOKEN_URL = "/api/v1/agents/me/voice-token"


def test_the_token_is_the_agents_own_and_short_lived(client, create_user, auth_header, caplog):
    alice = create_user("alice")
    caplog.set_level(logging.DEBUG)
    before = int(time.time())
    response = client.post(TOKEN_URL, headers=auth_header(alice))
    after = int(time.time())
    assert response.status_code == 200, response.get_json()
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body["identity"] == "alice" and body["ttl_s"] == 900

    header, payload = decode_jwt(body["token"], API_KEY_SECRET)
    assert header == {"alg": "HS256", "typ": "JWT", "cty": "twilio-fpa;v=1"}
    assert payload["iss"] == API_KEY_SID
    assert payload["sub"] == ACCOUNT_SID
    assert payload["grants"] == {
        "identity": "alice",
        "voice": {"incoming": {"allow": True}, "outgoing": {"application_sid": TWIML_APP_SID}},
    }
    assert before <= payload["nbf"] <= after
    assert payload["exp"] - payload["nbf"] == 900
    assert body["expires_at"] == (
        datetime.fromtimestamp(payload["exp"], UTC).isoformat().replace("+00:00", "Z")
    )
    with pytest.raises(AssertionError, match="bad signature"):
        decode_jwt(body["token"], "another secret")
    # The token is a credential: it is never written to the logs.
    assert body["token"] not in caplog.text
    assert body["token"].split(".")[2] not in caplog.text


def test_the_identity_is_the_one_the_agent_leg_dials(client, create_user, auth_header):
    alice = create_user("alice")
    alice.voice_endpoint = "client:alice_desk"
    db.session.commit()
    body = client.post(TOKEN_URL, headers=auth_header(alice)).get_json()
    assert body["identity"] == "alice_desk"
    assert alice.call_address() == "client:" + body["identity"]
    _, payload = decode_jwt(body["token"], API_KEY_SECRET)
    assert payload["grants"]["identity"] == "alice_desk"


def test_a_supervisor_gets_their_own_identity(client, create_user, auth_header):
    create_user("alice")
    sam = create_user("sam", role="supervisor")
    body = client.post(TOKEN_URL, headers=auth_header(sam)).get_json()
    assert body["identity"] == "sam"


def test_nobody_gets_another_agents_identity(client, create_user, auth_header):
    alice = create_user("alice")
    bob = create_user("bob")
    asked = client.post(TOKEN_URL, json={"identity": "bob"}, headers=auth_header(alice))
    assert asked.status_code == 422
    assert "identity" in asked.get_json()["error"]["fields"]
    assert "token" not in asked.get_json()
    for path in (f"/api/v1/agents/{bob.id}/voice-token", "/api/v1/agents/bob/voice-token"):
        assert client.post(path, headers=auth_header(alice)).status_code in (404, 405)


def test_anonymous_and_bad_credentials_get_401(client, create_user):
    create_user("alice")
    anonymous = client.post(TOKEN_URL)
    assert anonymous.status_code == 401
    assert anonymous.get_json()["error"]["code"] == "unauthorized"
    forged = client.post(TOKEN_URL, headers={"Authorization": "Bearer not-a-token"})
    assert forged.status_code == 401


def test_the_console_gets_it_with_the_session_and_the_pages_csrf_token(client, create_user):
    create_user("alice")
    csrf = session_client(client, "alice", PASSWORD)
    # A cross-site form can send the cookie but not the header: no token for it.
    assert client.post(TOKEN_URL).status_code == 401
    forged = client.post(TOKEN_URL, headers={"X-CSRFToken": "x" + csrf})
    assert forged.status_code == 403
    made = client.post(TOKEN_URL, headers={"X-CSRFToken": csrf})
    assert made.status_code == 200
    assert made.get_json()["identity"] == "alice"


@pytest.mark.parametrize("missing", ["TWILIO_API_KEY_SID", "TWILIO_API_KEY_SECRET"])
def test_not_configured_is_a_clear_503(app, client, create_user, auth_header, missing):
    alice = create_user("alice")
    app.config[missing] = None
    response = client.post(TOKEN_URL, headers=auth_header(alice))
    assert response.status_code == 503
    error = response.get_json()["error"]
    assert error["code"] == "softphone_not_configured"
    assert "not configured" in error["message"]
    endpoint = client.get("/api/v1/agents/me/endpoint", headers=auth_header(alice)).get_json()
    assert endpoint["softphone_configured"] is False


def test_without_a_twiml_app_the_token_only_receives_calls(app, client, create_user, auth_header):
    alice = create_user("alice")
    app.config["TWILIO_TWIML_APP_SID"] = None
    body = client.post(TOKEN_URL, headers=auth_header(alice)).get_json()
    _, payload = decode_jwt(body["token"], API_KEY_SECRET)
    assert payload["grants"]["voice"] == {"incoming": {"allow": True}}


@pytest.mark.parametrize("endpoint", ["+447700900123", "sip:alice@pbx.example.com"])
def test_an_agent_whose_calls_ring_elsewhere_gets_409(
    client, create_user, auth_header, endpoint, caplog
):
    alice = create_user("alice")
    alice.voice_endpoint = endpoint
    db.session.commit()
    caplog.set_level(logging.DEBUG)
    response = client.post(TOKEN_URL, headers=auth_header(alice))
    assert response.status_code == 409
    error = response.get_json()["error"]
    assert "choose the browser" in error["message"]
    assert endpoint not in error["message"]  # masked, as on screen
    assert endpoint not in caplog.text


def test_the_routes_are_in_the_openapi_document(client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    assert "post" in paths["/api/v1/agents/me/voice-token"]
    assert {"get", "patch"} <= set(paths["/api/v1/agents/me/endpoint"])
    assert {"get", "patch"} <= set(paths["/api/v1/agents/{agent_id}/endpoint"])


def test_the_token_lifetime_is_read_and_bounded(tmp_path):
    assert settings.from_environment({"VOICE_TOKEN_TTL_S": "600"}) == {"VOICE_TOKEN_TTL_S": 600}
    values = settings.default_config(str(tmp_path))
    assert values["VOICE_TOKEN_TTL_S"] == 3600
    for bad in (30, 86401):
        values = settings.default_config(str(tmp_path))
        values["VOICE_TOKEN_TTL_S"] = bad
        with pytest.raises(RuntimeError, match="VOICE_TOKEN_TTL_S"):
            settings.finalise(values)
