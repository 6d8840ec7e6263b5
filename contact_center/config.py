"""Configuration: defaults that need no services, then the environment, then overrides."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

ENV_VARS = (
    "SECRET_KEY",
    "DATABASE_URL",
    "REDIS_URL",
    "PUBLIC_BASE_URL",
    "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN",
    "TWILIO_API_BASE_URL",
    "TWILIO_CALLER_ID",
    "TWILIO_API_KEY_SID",
    "TWILIO_API_KEY_SECRET",
    "TWILIO_TWIML_APP_SID",
    "VOICE_TOKEN_TTL_S",
    "PHONE_DEFAULT_REGION",
    "EMAIL_INBOUND_SECRET",
    "MAILGUN_SIGNING_KEY",
    "SMTP_HOST",
    "SMTP_PORT",
    "SMTP_USERNAME",
    "SMTP_PASSWORD",
    "SMTP_STARTTLS",
    "MAIL_FROM",
    "SUPPORT_ADDRESS",
    "DEMO_SIMULATOR",
    "SOCKETIO_MESSAGE_QUEUE",
    "SOCKETIO_CHANNEL",
    "SOCKETIO_ASYNC_MODE",
    "API_TOKEN_TTL_HOURS",
    "OFFER_TIMEOUT_S",
    "OUTBOUND_WRAPUP_S",
    "BOARD_FLUSH_MS",
    "PROXY_FIX_HOPS",
    "LOGIN_RATE_LIMIT",
    "LOGIN_MAX_FAILURES",
    "LOGIN_LOCKOUT_S",
    "LOG_FORMAT",
    "RETENTION_RECORDINGS_DAYS",
    "RETENTION_MESSAGES_DAYS",
    "RETENTION_CLOSED_TICKETS_DAYS",
    "RETENTION_WEBHOOK_RECEIPTS_DAYS",
    "MAIL_SEND_LEASE_S",
    "DB_POOL_SIZE",
    "DB_MAX_OVERFLOW",
    "DB_POOL_TIMEOUT_S",
    "WEB_PROCESS_SILENT_S",
)


def default_config(instance_path: str) -> dict[str, Any]:
    """The embedded defaults: SQLite in the instance folder, in-process Redis."""
    database_path = Path(instance_path) / "contact_center.db"
    return {
        "SECRET_KEY": None,
        # A console page stays open for a whole shift: its CSRF token lasts as long as the
        # login session (which signing out ends), not Flask-WTF's default hour.
        "WTF_CSRF_TIME_LIMIT": None,
        "DATABASE_URL": f"sqlite:///{database_path}",
        "REDIS_URL": None,
        "PUBLIC_BASE_URL": "http://127.0.0.1:5000",
        "TWILIO_ACCOUNT_SID": None,
        "TWILIO_AUTH_TOKEN": None,
        "TWILIO_API_BASE_URL": None,
        "TWILIO_CALLER_ID": "+15005550006",
        # The softphone (Twilio Voice JavaScript SDK): an API key signs the agents' access
        # tokens; unset = no softphone. The TwiML app takes calls the browser places.
        "TWILIO_API_KEY_SID": None,
        "TWILIO_API_KEY_SECRET": None,
        "TWILIO_TWIML_APP_SID": None,
        "VOICE_TOKEN_TTL_S": 3600,
        "PHONE_DEFAULT_REGION": "GB",
        "EMAIL_INBOUND_SECRET": None,
        "MAILGUN_SIGNING_KEY": None,
        "SMTP_HOST": None,
        "SMTP_PORT": 587,
        "SMTP_USERNAME": None,
        "SMTP_PASSWORD": None,
        "SMTP_STARTTLS": True,
        "MAIL_FROM": "support@example.com",
        "SUPPORT_ADDRESS": "support@example.com",
        "DEMO_SIMULATOR": False,
        # Defaults to REDIS_URL: several web processes share Socket.IO rooms through Redis.
        "SOCKETIO_MESSAGE_QUEUE": None,
        # The pub/sub channel on that Redis. Channels ignore the database number, so each
        # deployment needs its own: by default named after the database number it uses.
        "SOCKETIO_CHANNEL": None,
        # threading for `flask run` and tests; gevent under gunicorn in production.
        "SOCKETIO_ASYNC_MODE": "threading",
        "API_TOKEN_TTL_HOURS": 12,
        "OFFER_TIMEOUT_S": 15,
        # Wrap-up after an agent's outbound call (inbound calls use their queue's).
        "OUTBOUND_WRAPUP_S": 0,
        # Live-board deltas are merged per process and sent at most this often (0: each at
        # once): a busy queue costs the boards a few messages a second, not one per event.
        "BOARD_FLUSH_MS": 250,
        # Proxies in front of the web processes whose X-Forwarded-For and -Proto are trusted
        # (nginx alone: 1). 0 trusts none: a client could forge its address otherwise.
        "PROXY_FIX_HOPS": 0,
        # Password sign-ins (form and API) per client address. Generous: a whole floor of
        # agents signs in from one office address at the start of a shift.
        "LOGIN_RATE_LIMIT": "60 per minute;600 per hour",
        # Failed sign-ins to one account within LOGIN_LOCKOUT_S that lock it for as long.
        "LOGIN_MAX_FAILURES": 5,
        "LOGIN_LOCKOUT_S": 900,
        # "text" for people, "json" (one object per line) for log shippers.
        "LOG_FORMAT": "text",
        # A worker that dies while sending a mail: the send is queued again after this long.
        "MAIL_SEND_LEASE_S": 120,
        # Retention in days (0 = keep forever), applied hourly by a worker (see retention.py).
        "RETENTION_RECORDINGS_DAYS": 0,
        "RETENTION_MESSAGES_DAYS": 0,
        "RETENTION_CLOSED_TICKETS_DAYS": 0,
        # Stored webhook answers only need to outlive a provider's retries (Twilio's are
        # within minutes): a few days keeps every retry idempotent.
        "RETENTION_WEBHOOK_RECEIPTS_DAYS": 3,
        # Database connections per process (PostgreSQL): kept, extra under load, and how long
        # a request waits for one before it is answered 503 (a voice webhook: the fallback).
        "DB_POOL_SIZE": 20,
        "DB_MAX_OVERFLOW": 20,
        "DB_POOL_TIMEOUT_S": 30,
        # A web process (gunicorn worker) beats every third of this; silent this long, it is
        # taken for dead and its agents' console sockets are dropped from their counts.
        "WEB_PROCESS_SILENT_S": 30,
        "TESTING": False,
    }


_INT_KEYS = {
    "SMTP_PORT",
    "API_TOKEN_TTL_HOURS",
    "OFFER_TIMEOUT_S",
    "OUTBOUND_WRAPUP_S",
    "VOICE_TOKEN_TTL_S",
    "BOARD_FLUSH_MS",
    "PROXY_FIX_HOPS",
    "LOGIN_MAX_FAILURES",
    "LOGIN_LOCKOUT_S",
    "RETENTION_RECORDINGS_DAYS",
    "RETENTION_MESSAGES_DAYS",
    "RETENTION_CLOSED_TICKETS_DAYS",
    "RETENTION_WEBHOOK_RECEIPTS_DAYS",
    "MAIL_SEND_LEASE_S",
    "DB_POOL_SIZE",
    "DB_MAX_OVERFLOW",
    "DB_POOL_TIMEOUT_S",
    "WEB_PROCESS_SILENT_S",
}
# Twilio refuses access tokens that live longer than a day; under a minute is a mistake.
VOICE_TOKEN_TTL_RANGE = (60, 86400)
_BOOL_KEYS = {"SMTP_STARTTLS", "DEMO_SIMULATOR"}


def _coerce(key: str, value: str) -> Any:
    if key in _INT_KEYS:
        return int(value)
    if key in _BOOL_KEYS:
        return value.strip().lower() in {"1", "true", "yes", "on"}
    return value


def from_environment(environ: dict[str, str] | None = None) -> dict[str, Any]:
    """The settings given in the environment, coerced to their types."""
    environ = os.environ if environ is None else environ
    return {key: _coerce(key, environ[key]) for key in ENV_VARS if environ.get(key)}


def _channel_for(redis_url: str) -> str:
    """`contact-center-db<n>` for a Redis URL naming database n (0 when it names none)."""
    # A Sentinel URL's path is /<db>/<master name>: the database comes first there too.
    database = urlparse(redis_url).path.strip("/").split("/")[0]
    return f"contact-center-db{database if database.isdigit() else 0}"


def finalise(config: dict[str, Any]) -> dict[str, Any]:
    """Fill derived settings and refuse unsafe combinations."""
    embedded = not config.get("REDIS_URL") and config["DATABASE_URL"].startswith("sqlite")
    if not config.get("SECRET_KEY"):
        if not (embedded or config.get("TESTING")):
            raise RuntimeError("SECRET_KEY must be set when DATABASE_URL or REDIS_URL is set")
        config["SECRET_KEY"] = secrets.token_hex(32)
    if config.get("SOCKETIO_MESSAGE_QUEUE") is None and not config.get("TESTING"):
        config["SOCKETIO_MESSAGE_QUEUE"] = config.get("REDIS_URL")
    if config.get("SOCKETIO_MESSAGE_QUEUE") and not config.get("SOCKETIO_CHANNEL"):
        config["SOCKETIO_CHANNEL"] = _channel_for(config["SOCKETIO_MESSAGE_QUEUE"])
    url = config["DATABASE_URL"]
    # SQLAlchemy wants an explicit driver for psycopg 3.
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    config["SQLALCHEMY_DATABASE_URI"] = url
    config["PUBLIC_BASE_URL"] = config["PUBLIC_BASE_URL"].rstrip("/")
    _demo_twilio(config, embedded)
    config["RATELIMIT_STORAGE_URI"] = _limiter_storage(config.get("REDIS_URL"))
    # The session cookie only over HTTPS when the server is reached over HTTPS.
    config.setdefault("SESSION_COOKIE_SECURE", config["PUBLIC_BASE_URL"].startswith("https://"))
    low, high = VOICE_TOKEN_TTL_RANGE
    if not low <= int(config["VOICE_TOKEN_TTL_S"]) <= high:
        raise RuntimeError(f"VOICE_TOKEN_TTL_S must be from {low} to {high} seconds")
    for key in (
        "RETENTION_RECORDINGS_DAYS",
        "RETENTION_MESSAGES_DAYS",
        "RETENTION_CLOSED_TICKETS_DAYS",
        "RETENTION_WEBHOOK_RECEIPTS_DAYS",
    ):
        if int(config.get(key) or 0) < 0:
            raise RuntimeError(f"{key} must be 0 (keep forever) or a number of days")
    for key, least in (
        ("DB_POOL_SIZE", 1),
        ("DB_MAX_OVERFLOW", 0),
        ("DB_POOL_TIMEOUT_S", 1),
        ("WEB_PROCESS_SILENT_S", 3),
    ):
        if int(config[key]) < least:
            raise RuntimeError(f"{key} must be at least {least}")
    return config


def _demo_twilio(config: dict[str, Any], embedded: bool) -> None:
    """The demo simulator plays Twilio: without real credentials it gets its own, known only
    to this process, and its Twilio stub (whose address it sets when it starts)."""
    config["DEMO_TWILIO"] = False
    if not (config.get("DEMO_SIMULATOR") and embedded) or config.get("TWILIO_ACCOUNT_SID"):
        return
    config["DEMO_TWILIO"] = True
    config["TWILIO_ACCOUNT_SID"] = "AC" + secrets.token_hex(16)
    config["TWILIO_AUTH_TOKEN"] = secrets.token_hex(16)
    config["EMAIL_INBOUND_SECRET"] = config.get("EMAIL_INBOUND_SECRET") or secrets.token_hex(16)


def _limiter_storage(redis_url: str | None) -> str:
    """Flask-Limiter's storage: the deployment's Redis (shared by every web process), or
    memory in the one embedded process. The limits library names a Sentinel master by its
    name alone (no database number)."""
    if not redis_url:
        return "memory://"
    if redis_url.startswith("redis+sentinel://"):
        head, _, path = redis_url.partition("://")[2].partition("/")
        return f"redis+sentinel://{head}/{path.rstrip('/').rsplit('/', 1)[-1]}"
    return redis_url
