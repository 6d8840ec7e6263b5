"""Security headers and cookie flags."""

from __future__ import annotations

from contact_center import create_app
from contact_center.web.security import HEADERS, HSTS


def test_every_response_carries_the_security_headers(client):
    for path in ("/login", "/healthz", "/api/v1/customers", "/no-such-page"):
        response = client.get(path)
        for name, value in HEADERS.items():
            assert response.headers[name] == value, (path, name)
        assert "Strict-Transport-Security" not in response.headers  # plain HTTP here


def test_https_requests_get_hsts(client):
    response = client.get("/login", base_url="https://desk.example")
    assert response.headers["Strict-Transport-Security"] == HSTS


def test_the_session_cookie_is_httponly_samesite_and_secure_behind_https(app_config):
    plain = create_app(app_config)
    assert plain.config["SESSION_COOKIE_HTTPONLY"] is True
    assert plain.config["SESSION_COOKIE_SAMESITE"] == "Lax"
    assert plain.config["SESSION_COOKIE_SECURE"] is False
    secure = create_app({**app_config, "PUBLIC_BASE_URL": "https://desk.example"})
    assert secure.config["SESSION_COOKIE_SECURE"] is True
    with secure.test_client() as browser:
        browser.get("/login", base_url="https://desk.example")
        cookie = browser.get_cookie("session", domain="desk.example")
        assert cookie is not None and cookie.secure and cookie.http_only
