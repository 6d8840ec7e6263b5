"""Who is calling: bearer tokens for the API, the login session for pages and sockets."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from flask import g, request
from flask_login import current_user
from flask_wtf.csrf import validate_csrf
from wtforms import ValidationError as CSRFError

from contact_center.agents.models import User
from contact_center.agents.services import token_record
from contact_center.errors import APIError

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def bearer_token() -> str | None:
    """The token of an `Authorization: Bearer` header, if any."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def request_user() -> User | None:
    """The user behind this API request: a bearer token, or the login session.

    A session is trusted for reads; for a change it must come with the page's CSRF token
    in `X-CSRFToken` (the console's scripts send it), which a cross-site form cannot send.
    """
    token = bearer_token()
    if token is not None:
        record = token_record(token)
        if record is None:
            return None
        g.api_token = record
        return record.user
    if not current_user.is_authenticated:
        return None
    if request.method not in SAFE_METHODS:
        csrf_token = request.headers.get("X-CSRFToken")
        if csrf_token is None:
            return None
        try:
            validate_csrf(csrf_token)
        except CSRFError as exc:
            raise APIError(
                403, "The page's security token has expired: reload the page.", "csrf_failed"
            ) from exc
    return current_user._get_current_object()


def require_role(role: str) -> Callable:
    """Decorate an API view: 401 without valid credentials, 403 below `role`."""

    def decorator(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            user = request_user()
            if user is None:
                raise APIError(401, "A valid bearer token is required.")
            if not user.has_role(role):
                raise APIError(403, f"This needs the {role} role or above.")
            g.user = user
            return view(*args, **kwargs)

        return wrapper

    return decorator
