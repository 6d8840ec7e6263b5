"""Softphone fixtures: an API key to sign Voice SDK tokens, and helpers to read them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import pytest

API_KEY_SID = "SK" + "0" * 30 + "02"
API_KEY_SECRET = "test-api-key-secret-not-a-secret"  # noqa: S105
TWIML_APP_SID = "AP" + "0" * 30 + "03"


@pytest.fixture
def softphone_app_config(app_config):
    """The test app with the softphone configured (a fake API key and TwiML app)."""
    return {
        **app_config,
        "TWILIO_API_KEY_SID": API_KEY_SID,
        "TWILIO_API_KEY_SECRET": API_KEY_SECRET,
        "TWILIO_TWIML_APP_SID": TWIML_APP_SID,
        "VOICE_TOKEN_TTL_S": 900,
    }


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def decode_jwt(token: str, secret: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(header, payload) of an HS256 JWT whose signature `secret` made; AssertionError if not."""
    header, payload, signature = token.split(".")
    expected = hmac.new(secret.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    assert hmac.compare_digest(_b64decode(signature), expected), "bad signature"
    return json.loads(_b64decode(header)), json.loads(_b64decode(payload))


def session_client(client, username: str, password: str) -> str:
    """Sign `client` in through the login form; the console page's CSRF token."""
    page = client.get("/login").get_data(as_text=True)
    csrf = page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    signed_in = client.post(
        "/login", data={"username": username, "password": password, "csrf_token": csrf}
    )
    assert signed_in.status_code == 302
    console = client.get("/agent").get_data(as_text=True)
    return console.split('<meta name="csrf-token" content="')[1].split('"')[0]


app_config = softphone_app_config  # every test here has the softphone configured
