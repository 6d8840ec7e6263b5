"""The one JSON error format of the API, webhooks and socket acks."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, jsonify, request
from marshmallow import ValidationError
from sqlalchemy.exc import (
    DBAPIError,
    InterfaceError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from werkzeug.exceptions import HTTPException

CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}


class APIError(Exception):
    """A refusal a service or view raises; rendered in the error format."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str | None = None,
        fields: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code or CODES.get(status, "error")
        self.message = message
        self.fields = fields or {}
        self.headers = headers or {}  # e.g. Retry-After with a 429

    def to_dict(self) -> dict[str, Any]:
        """The error body: {"error": {code, message, fields}}."""
        return {"error": {"code": self.code, "message": self.message, "fields": self.fields}}


class Conflict(APIError):
    def __init__(self, message: str, fields: dict[str, Any] | None = None) -> None:
        super().__init__(409, message, fields=fields)


class NotFound(APIError):
    def __init__(self, message: str = "Not found.") -> None:
        super().__init__(404, message)


log = logging.getLogger(__name__)

# How long a client is asked to wait before trying again when the database is out of reach.
UNAVAILABLE_RETRY_AFTER_S = 5


def database_unavailable(error: BaseException) -> bool:
    """Whether `error` means the database could not be reached (down, or no pooled
    connection free in time under load), not a bad statement."""
    if isinstance(error, OperationalError | InterfaceError | PoolTimeoutError):
        return True
    return isinstance(error, DBAPIError) and bool(error.connection_invalidated)


def discard_session() -> None:
    """Drop the request's session after the database failed it: roll back if the connection
    still allows, then start afresh next time."""
    from contact_center.extensions import db

    try:
        db.session.rollback()
    except Exception:  # the connection is gone: rolling back may fail the same way
        log.debug("rollback after a database failure failed", exc_info=True)
    db.session.remove()


def unavailable() -> APIError:
    """The refusal for a request the database could not serve: try again shortly."""
    return APIError(
        503,
        "The service is briefly unavailable; try again shortly.",
        headers={"Retry-After": str(UNAVAILABLE_RETRY_AFTER_S)},
    )


def error_response(error: APIError):
    """A Flask response for an APIError."""
    response = jsonify(error.to_dict())
    response.status_code = error.status
    response.headers.update(error.headers)
    return response


def _from_http_exception(exc: HTTPException) -> APIError:
    status = exc.code or 500
    message = exc.description or exc.name
    fields: dict[str, Any] = {}
    data = getattr(exc, "data", None) or {}
    messages = data.get("messages") if isinstance(data, dict) else None
    if isinstance(messages, dict):
        # webargs groups messages by location (json, query, form...): merge them.
        for location_messages in messages.values():
            if isinstance(location_messages, dict):
                fields.update(location_messages)
            elif isinstance(location_messages, list) and location_messages:
                message = " ".join(str(m) for m in location_messages)
    if status == 422:
        message = "The request is well-formed but some fields are invalid."
    if status == 500:
        message = "Internal server error."
    return APIError(status, message, fields=fields)


def register_error_handlers(app: Flask) -> None:
    """Render every error in the contract's JSON format."""

    from contact_center.extensions import db

    @app.errorhandler(APIError)
    def handle_api_error(error: APIError):
        db.session.rollback()  # nothing a refused request staged may be committed later
        return error_response(error)

    @app.errorhandler(ValidationError)
    def handle_validation_error(error: ValidationError):
        db.session.rollback()
        fields = error.messages if isinstance(error.messages, dict) else {"_schema": error.messages}
        return error_response(
            APIError(422, "The request is well-formed but some fields are invalid.", fields=fields)
        )

    @app.errorhandler(SQLAlchemyError)
    def handle_database_error(error: SQLAlchemyError):
        if not database_unavailable(error):
            raise error
        # The type only: the error's text holds the statement's parameters (numbers, emails).
        log.warning(
            "database unavailable for %s %s: %s", request.method, request.path, type(error).__name__
        )
        discard_session()
        return error_response(unavailable())

    @app.errorhandler(HTTPException)
    def handle_http_exception(exc: HTTPException):
        response = error_response(_from_http_exception(exc))
        for name, value in ((getattr(exc, "data", None) or {}).get("headers") or {}).items():
            response.headers[name] = value
        return response
