"""`/webhooks/email/...`: inbound mail from a relay, SendGrid Inbound Parse or Mailgun routes.

Each request is authenticated first (403 otherwise), parsed (400 for what is not a mail,
413 when too large), then stored once: a repeated delivery gets 200 and changes nothing.
The answer is 2xx only after the message is committed; a storage failure is 503 so the
provider retries later.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time

from flask import Blueprint, current_app, jsonify, request
from sqlalchemy.exc import SQLAlchemyError

from contact_center.errors import APIError
from contact_center.extensions import db
from contact_center.tickets import inbound, mail

log = logging.getLogger(__name__)
bp = Blueprint("email_webhooks", __name__, url_prefix="/webhooks/email")

MAX_MESSAGE_BYTES = 30 * 1024 * 1024
MAILGUN_MAX_AGE_S = 300


def _refuse(message: str) -> APIError:
    return APIError(403, message, code="forbidden")


def _check_size() -> None:
    if (request.content_length or 0) > MAX_MESSAGE_BYTES:
        raise APIError(413, f"Messages over {MAX_MESSAGE_BYTES // (1024 * 1024)} MB are refused.")
    # The message travels in a form field for SendGrid and Mailgun: allow it the same size.
    request.max_content_length = MAX_MESSAGE_BYTES
    request.max_form_memory_size = MAX_MESSAGE_BYTES


def _secret_matches(given: str | None) -> bool:
    secret = current_app.config["EMAIL_INBOUND_SECRET"]
    if not secret:
        raise _refuse("Inbound mail is disabled: EMAIL_INBOUND_SECRET is not set.")
    return given is not None and hmac.compare_digest(given.encode(), secret.encode())


def _store(raw: bytes):
    try:
        result = inbound.ingest(raw)
    except mail.MalformedMail as exc:
        db.session.rollback()
        raise APIError(400, str(exc)) from None
    except SQLAlchemyError:
        db.session.rollback()
        log.exception("inbound mail not stored")
        raise APIError(503, "The message could not be stored; please retry.") from None
    return jsonify(
        {
            "ticket_id": result.ticket_id,
            "message_id": result.message_id,
            "duplicate": result.duplicate,
            "new_ticket": result.new_ticket,
            "bounce": result.bounce,
        }
    ), 200


@bp.post("/inbound")
def inbound_raw():
    """A raw message: `message/rfc822` with X-Inbound-Secret, or SendGrid's raw `email` field."""
    _check_size()
    if request.mimetype == "message/rfc822":
        if not _secret_matches(request.headers.get("X-Inbound-Secret")):
            raise _refuse("Missing or wrong X-Inbound-Secret.")
        return _store(request.get_data())
    if request.mimetype == "multipart/form-data":
        auth = request.authorization
        if not _secret_matches(auth.password if auth is not None else None):
            raise _refuse("Missing or wrong HTTP basic auth password.")
        raw = request.form.get("email")
        if not raw:
            raise APIError(400, "SendGrid raw mode sends the message in the field `email`.")
        return _store(raw.encode())
    # Whoever cannot authenticate learns nothing more (403, as for any unsigned webhook).
    auth = request.authorization
    given = request.headers.get("X-Inbound-Secret") or (auth.password if auth else None)
    if not _secret_matches(given):
        raise _refuse("Missing or wrong X-Inbound-Secret or HTTP basic auth password.")
    raise APIError(415, "Send message/rfc822, or multipart/form-data with the field `email`.")


@bp.post("/inbound/mime")
def inbound_mailgun():
    """Mailgun routes (`body-mime`), signed with HMAC-SHA256 of timestamp + token."""
    _check_size()
    key = current_app.config["MAILGUN_SIGNING_KEY"]
    if not key:
        raise _refuse("Mailgun mail is disabled: MAILGUN_SIGNING_KEY is not set.")
    timestamp = request.form.get("timestamp", "")
    token = request.form.get("token", "")
    signature = request.form.get("signature", "")
    expected = hmac.new(key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
    if not (timestamp and token and hmac.compare_digest(signature.encode(), expected.encode())):
        raise _refuse("Missing or invalid Mailgun signature.")
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > MAILGUN_MAX_AGE_S:
        raise _refuse("The Mailgun signature is stale (over 5 minutes old).")
    raw = request.form.get("body-mime")
    if not raw:
        raise APIError(400, "Mailgun sends the message in the field `body-mime`.")
    return _store(raw.encode())
