"""Fixtures: an app per test on a clean database and Redis, the Twilio stub, factories.

Embedded defaults (SQLite file, in-process fakeredis) unless TEST_DATABASE_URL and
TEST_REDIS_URL name real PostgreSQL and Redis; then the same tests run on those.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_migrate import upgrade
from twilio.request_validator import RequestValidator

from contact_center import create_app
from contact_center.agents.models import User
from contact_center.agents.services import create_user as create_user_service
from contact_center.agents.services import issue_token
from contact_center.extensions import db, socketio
from contact_center.routing import services as routing
from contact_center.routing.models import Interaction, Queue
from contact_center.simulate.twilio_stub import TwilioStubServer

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL")
REAL_SERVICES = bool(TEST_DATABASE_URL and TEST_REDIS_URL)
ACCOUNT_SID = "AC" + "0" * 30 + "01"
AUTH_TOKEN = "test-auth-token-not-a-secret"  # noqa: S105
PUBLIC_BASE_URL = "http://cc.test"
PASSWORD = "correct-horse-battery"  # noqa: S105
INBOUND_SECRET = "test-inbound-secret"  # noqa: S105
MAILGUN_KEY = "test-mailgun-signing-key"

VOICE = "/webhooks/twilio/voice"


def pytest_collection_modifyitems(config, items):
    """Without real services, deselect (never skip) the tests that need several processes."""
    if REAL_SERVICES:
        return
    deselected = [item for item in items if "real_services" in item.keywords]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if "real_services" not in item.keywords]


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> str:
    """A migrated, empty database for the whole run."""
    if TEST_DATABASE_URL:
        engine = sa.create_engine(_sqlalchemy_url(TEST_DATABASE_URL))
        with engine.begin() as connection:
            connection.execute(sa.text("DROP SCHEMA public CASCADE"))
            connection.execute(sa.text("CREATE SCHEMA public"))
        engine.dispose()
        url = TEST_DATABASE_URL
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
    app = create_app({"TESTING": True, "DATABASE_URL": url, "REDIS_URL": None})
    with app.app_context():
        upgrade()  # the real migrations, not create_all: they are what production runs
        db.engine.dispose()
    return url


def _sqlalchemy_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


@pytest.fixture(scope="session")
def twilio_stub() -> Iterator[TwilioStubServer]:
    server = TwilioStubServer(ACCOUNT_SID, AUTH_TOKEN).start()
    yield server
    server.stop()


def _clean(app: Flask) -> None:
    with app.app_context():
        db.session.remove()
        with db.engine.begin() as connection:
            for table in reversed(db.metadata.sorted_tables):
                connection.execute(table.delete())
        app.extensions["redis"].flushdb()


@pytest.fixture
def app_config(database_url, twilio_stub) -> dict[str, Any]:
    """The settings of the test app; a test may change them before `app` is built."""
    return {
        "TESTING": True,
        "SECRET_KEY": "test-secret-key",
        "DATABASE_URL": database_url,
        "REDIS_URL": TEST_REDIS_URL,
        "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_API_BASE_URL": twilio_stub.base_url,
        "PHONE_DEFAULT_REGION": "GB",
        "WTF_CSRF_ENABLED": True,
        "EMAIL_INBOUND_SECRET": INBOUND_SECRET,
        "MAILGUN_SIGNING_KEY": MAILGUN_KEY,
        "MAIL_FROM": "help@desk.test",
        "SUPPORT_ADDRESS": "support@desk.test",
        "SMTP_HOST": None,
        "BOARD_FLUSH_MS": 0,  # board deltas at once (tests/board/test_live.py tests merging)
    }


@pytest.fixture
def app(app_config, twilio_stub) -> Iterator[Flask]:
    app = create_app(app_config)
    _clean(app)
    twilio_stub.reset()
    with app.app_context():
        yield app
        db.session.remove()
    _clean(app)
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def live_server(app: Flask):
    """The test app served over real HTTP from a background thread (see tests/live_server.py)."""
    from tests.live_server import serve  # it imports this module: import it when used

    with serve(app) as server:
        yield server


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def create_user(app) -> Callable[..., User]:
    """Factory: create_user("alice", role="agent", skills={"lang:en": 5})."""

    def make(username: str, role: str = "agent", **kwargs: Any) -> User:
        return create_user_service(username, PASSWORD, role, **kwargs)

    return make


@pytest.fixture
def auth_header(app) -> Callable[[User], dict[str, str]]:
    """Factory: a bearer Authorization header for a user."""

    def make(user: User) -> dict[str, str]:
        token, _ = issue_token(user)
        return {"Authorization": f"Bearer {token}"}

    return make


@pytest.fixture
def agent_socket(app, client) -> Callable[..., Any]:
    """Factory: a Socket.IO test client on /agent authenticated with the user's token."""
    clients = []

    def connect(user: User, **kwargs: Any):
        token, _ = issue_token(user)
        socket = socketio.test_client(
            app, namespace="/agent", auth={"token": token}, flask_test_client=client, **kwargs
        )
        clients.append(socket)
        return socket

    yield connect
    for socket in clients:
        if socket.is_connected("/agent"):
            socket.disconnect("/agent")


def sign(url: str, params: dict[str, str]) -> str:
    """X-Twilio-Signature for a POST to `url` with form `params`."""
    return RequestValidator(AUTH_TOKEN).compute_signature(url, params)


@pytest.fixture
def twilio_post(client) -> Callable[..., Any]:
    """Factory: POST a form to a Twilio webhook path, signed unless told otherwise."""

    def post(
        path: str,
        params: dict[str, str],
        *,
        signature: str | None = "sign",
        query: dict[str, str] | None = None,
    ):
        full_path = path + (f"?{urlencode(query)}" if query else "")
        headers = {}
        if signature == "sign":
            headers["X-Twilio-Signature"] = sign(PUBLIC_BASE_URL + full_path, params)
        elif signature is not None:
            headers["X-Twilio-Signature"] = signature
        return client.post(full_path, data=params, headers=headers)

    return post


def call_sid(n: int) -> str:
    """A well-formed, deterministic CallSid."""
    return "CA" + f"{n:032x}"


class _SmtpSink:
    """aiosmtpd handler keeping every message it receives; refuses recipients named refuse@."""

    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if address.startswith("refuse@"):
            return "550 5.1.1 No such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802  (aiosmtpd's name)
        self.messages.append(envelope)
        return "250 Message accepted"


@pytest.fixture
def smtp_server(app) -> Iterator[_SmtpSink]:
    """A real local SMTP server (aiosmtpd); the app sends its mail there."""
    import socket

    from aiosmtpd.controller import Controller

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sink = _SmtpSink()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=port, SMTP_STARTTLS=False)
    yield sink
    controller.stop()


@pytest.fixture
def run_jobs(app) -> Callable[[], bool]:
    """Run the queued RQ jobs now, in this process, as a worker would."""
    from contact_center.jobs import run_queued_jobs

    return lambda: run_queued_jobs(app)


@pytest.fixture
def post_mail(client) -> Callable[..., Any]:
    """Factory: deliver raw message bytes as the raw relay, SendGrid or Mailgun would."""
    import base64
    import hashlib
    import hmac
    import time

    def post(raw: bytes, via: str = "raw", **overrides: Any):
        if via == "raw":
            headers = {"X-Inbound-Secret": overrides.get("secret", INBOUND_SECRET)}
            return client.post(
                "/webhooks/email/inbound",
                data=raw,
                content_type="message/rfc822",
                headers=headers,
            )
        if via == "sendgrid":
            password = overrides.get("secret", INBOUND_SECRET)
            basic = base64.b64encode(f"sendgrid:{password}".encode()).decode()
            return client.post(
                "/webhooks/email/inbound",
                data={"email": raw.decode(), "to": "support@desk.test"},
                content_type="multipart/form-data",
                headers={"Authorization": f"Basic {basic}"},
            )
        timestamp = str(overrides.get("timestamp", int(time.time())))
        token = overrides.get("token", "a" * 50)
        signature = overrides.get(
            "signature",
            hmac.new(
                MAILGUN_KEY.encode(), f"{timestamp}{token}".encode(), hashlib.sha256
            ).hexdigest(),
        )
        return client.post(
            "/webhooks/email/inbound/mime",
            data={
                "timestamp": timestamp,
                "token": token,
                "signature": signature,
                "body-mime": raw.decode(),
            },
        )

    return post


@pytest.fixture
def live_call(app, twilio_post, create_user, agent_socket):
    """A call answered by alice, caller in the conference."""
    routing.create_queue(name="General", channels=["voice"], is_default=True)
    routing.create_queue(name="Billing", channels=["voice"])
    db.session.commit()
    alice = create_user("alice")
    socket = agent_socket(alice)
    socket.emit("set_status", {"status": "available"}, namespace="/agent", callback=True)
    twilio_post(VOICE, {"CallSid": call_sid(1), "From": "+447700900123", "To": "+4420"})
    offer = next(e["args"][0] for e in socket.get_received("/agent") if e["name"] == "offer")
    socket.emit(
        "accept", {"reservation_id": offer["reservation_id"]}, namespace="/agent", callback=True
    )
    twilio_post(
        f"{VOICE}/connect/{offer['reservation_id']}",
        {"CallSid": call_sid(1)},
        query={"leg": "caller"},
    )
    interaction = db.session.get(Interaction, offer["interaction"]["id"])
    db.session.refresh(interaction)
    assert interaction.status == "active" and interaction.agent_call_sid
    return interaction, alice, socket


# ---------------------------------------------------------------- routing: queues, agents, arrivals


@pytest.fixture
def make_queue(app) -> Callable[..., Queue]:
    def make(name: str = "General", **fields: Any) -> Queue:
        fields.setdefault("channels", ["voice", "email"])
        queue = routing.create_queue(name=name, **fields)
        db.session.commit()
        return queue

    return make


@pytest.fixture
def agent(create_user) -> Callable[..., User]:
    """Factory: an agent, available at once unless told otherwise."""

    def make(username: str, available: bool = True, **kwargs: Any) -> User:
        user = create_user(username, **kwargs)
        if available:
            routing.set_agent_status(user, "available")
        return user

    return make


@pytest.fixture
def arrive(app) -> Callable[..., Interaction]:
    """Factory: a new interaction in a queue."""
    counter = iter(range(1, 1_000_000))

    def make(queue: Queue, channel: str = "email", **kwargs: Any) -> Interaction:
        n = next(counter)
        # A call is known by a CallSid the Twilio stub answers for (its own range, apart
        # from call_sid(n)); other channels by any unique id.
        kwargs.setdefault(
            "external_id", f"CA{0xA0000000 + n:032x}" if channel == "voice" else f"test-{n}"
        )
        return routing.create_interaction(channel=channel, queue=queue, **kwargs)

    return make
