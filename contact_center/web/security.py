"""Security headers on every response."""

from __future__ import annotations

from flask import Flask, Response, request

HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    # The softphone needs the microphone of our own pages only; nothing needs the rest.
    "Permissions-Policy": "microphone=(self), camera=(), geolocation=(), payment=()",
    # Pages set their script and style sources in a <meta> policy (templates/base.html);
    # framing can only be refused by a header. Policies combine: both apply.
    "Content-Security-Policy": "frame-ancestors 'none'; base-uri 'self'; form-action 'self'",
    "X-Frame-Options": "DENY",
}
HSTS = "max-age=31536000; includeSubDomains"


def register_security_headers(app: Flask) -> None:
    """Add the headers to every response (HSTS only to requests that came over HTTPS)."""

    @app.after_request
    def _secure(response: Response) -> Response:
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        if request.is_secure:
            response.headers.setdefault("Strict-Transport-Security", HSTS)
        return response
