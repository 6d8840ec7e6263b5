"""The database briefly unavailable: voice webhooks answer as the fallback URL and are kept
in Redis for replay, mail webhooks answer 503 so the provider retries; nothing is
half-written, and everything is recorded once the database is back, without a restart."""

from __future__ import annotations

import json
import threading
import time
from email.message import EmailMessage
from email.utils import formatdate
from urllib.parse import urlsplit, urlunsplit

import pytest
import sqlalchemy as sa

from contact_center import create_app
from contact_center.extensions import db
from contact_center.routing import services as routing
from contact_center.routing.models import Interaction
from contact_center.tickets.models import Ticket, TicketMessage
from contact_center.webhook_receipts import WebhookReceipt
from contact_center.worker import run_forever
from tests.conftest import PUBLIC_BASE_URL, TEST_DATABASE_URL, VOICE, call_sid, sign
from tests.faults import TcpProxy
from webhooks.deferred import DEFERRED_KEY, FAILED_KEY, PROCESSING_KEY, database_answers, drain

CALLER = {"From": "+447700900123", "To": "+442071838750"}
RECORDING = "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE" + "1" * 32


def mail(message_id: str) -> bytes:
    message = EmailMessage()
    message["From"] = "Mei Chen <mei@example.org>"
    message["To"] = "support@desk.test"
    message["Subject"] = "Card not arrived"
    message["Date"] = formatdate()
    message["Message-ID"] = message_id
    message.set_content("My new card has not arrived yet.")
    return message.as_bytes()


def wait_for(predicate, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


def count(model, *where) -> int:
    db.session.remove()  # a fresh look, not the session's cached one
    return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def kept(app) -> list[dict]:
    return [json.loads(raw) for raw in app.extensions["redis"].lrange(DEFERRED_KEY, 0, -1)]


@pytest.fixture
def proxy():
    upstream = urlsplit(TEST_DATABASE_URL or "postgresql://127.0.0.1:5432/x")
    proxy = TcpProxy(upstream.hostname or "127.0.0.1", upstream.port or 5432).start()
    yield proxy
    proxy.close()


@pytest.fixture
def app_config(app_config, request):
    """The test app reaches PostgreSQL only through the proxy; Redis stays direct."""
    if not TEST_DATABASE_URL:
        return app_config
    proxy = request.getfixturevalue("proxy")
    parts = urlsplit(TEST_DATABASE_URL or "")
    netloc = f"{parts.username or 'postgres'}@127.0.0.1:{proxy.port}"
    if parts.password:
        netloc = f"{parts.username}:{parts.password}@127.0.0.1:{proxy.port}"
    return {**app_config, "DATABASE_URL": urlunsplit(parts._replace(netloc=netloc))}


@pytest.mark.real_services
@pytest.mark.timeout(180)
def test_a_database_outage_defers_calls_and_refuses_mail_then_recovers(
    app, proxy, twilio_post, post_mail
):
    routing.create_queue(name="General", channels=["voice", "email"], is_default=True)
    db.session.commit()
    assert twilio_post(VOICE, {"CallSid": call_sid(1), **CALLER}).status_code == 200
    assert count(Interaction, Interaction.external_id == call_sid(1)) == 1
    db.session.remove()
    fallback = twilio_post(f"{VOICE}/fallback", {"CallSid": call_sid(9)}).get_data(as_text=True)

    proxy.cut()
    call = {"CallSid": call_sid(2), **CALLER}
    answer = twilio_post(VOICE, call)
    assert answer.status_code == 200
    assert answer.get_data(as_text=True) == fallback  # an apology and a voicemail
    recorded = {
        "CallSid": call_sid(2),
        "RecordingSid": "RE" + "1" * 32,
        "RecordingUrl": RECORDING,
        "RecordingStatus": "completed",
    }
    assert twilio_post(f"{VOICE}/recording", recorded).status_code == 200
    ended = {"CallSid": call_sid(2), "CallStatus": "completed", "SequenceNumber": "3"}
    status = twilio_post(f"{VOICE}/status", {**ended, "CallDuration": "40"})
    assert status.status_code == 200 and "<Response" in status.get_data(as_text=True)
    # Unsigned requests are still refused, and never kept.
    assert twilio_post(VOICE, {"CallSid": call_sid(3)}, signature=None).status_code == 403
    raw = mail("<outage-1@example.org>")
    assert post_mail(raw).status_code == 503
    assert [entry["path"] for entry in kept(app)] == [
        VOICE,
        f"{VOICE}/recording",
        f"{VOICE}/status",
    ]
    assert kept(app)[0]["call_sid"] == call_sid(2)

    proxy.restore()
    assert wait_for(database_answers, 60), "the database did not come back through the proxy"
    # Nothing half-written while it was cut.
    assert count(Interaction, Interaction.external_id == call_sid(2)) == 0
    assert count(WebhookReceipt, WebhookReceipt.key.like(f"%{call_sid(2)}%")) == 0
    assert count(TicketMessage, TicketMessage.message_id == "<outage-1@example.org>") == 0

    # The worker loop (as in `flask worker`) replays what was kept, without a restart.
    stop = threading.Event()
    worker = threading.Thread(target=run_forever, args=(app, stop), daemon=True)
    worker.start()
    try:
        assert wait_for(lambda: not kept(app), 60), "the deferred list was not drained"
    finally:
        stop.set()
        worker.join(timeout=30)
    redis = app.extensions["redis"]
    assert redis.llen(PROCESSING_KEY) == 0 and redis.llen(FAILED_KEY) == 0
    db.session.remove()
    interactions = db.session.scalars(
        sa.select(Interaction).where(Interaction.external_id == call_sid(2))
    ).all()
    assert len(interactions) == 1
    interaction = interactions[0]
    # The caller heard the fallback and left a message: recorded as a voicemail, never routed.
    assert (interaction.status, interaction.outcome) == ("ended", "voicemail")
    assert interaction.queue_id is None and interaction.ticket_id is not None
    assert count(Ticket) == 1

    # The mail provider retries: stored once.
    retried = post_mail(raw)
    assert retried.status_code == 200 and not retried.get_json()["duplicate"]
    assert post_mail(raw).get_json()["duplicate"]
    assert count(TicketMessage, TicketMessage.message_id == "<outage-1@example.org>") == 1

    # A retried Twilio delivery of the deferred call changes nothing.
    receipts, tickets = count(WebhookReceipt), count(Ticket)
    again = twilio_post(VOICE, call)
    assert again.status_code == 200 and again.get_data(as_text=True) == fallback
    assert twilio_post(f"{VOICE}/status", {**ended, "CallDuration": "40"}).status_code == 200
    assert count(Interaction, Interaction.external_id == call_sid(2)) == 1
    assert count(WebhookReceipt) == receipts
    assert count(Ticket) == tickets


@pytest.mark.real_services
@pytest.mark.timeout(120)
def test_a_replay_cut_short_by_another_outage_resumes_later(app, proxy, twilio_post):
    routing.create_queue(name="General", channels=["voice"], is_default=True)
    db.session.commit()
    db.session.remove()
    proxy.cut()
    for n in (4, 5):
        assert twilio_post(VOICE, {"CallSid": call_sid(n), **CALLER}).status_code == 200
    assert len(kept(app)) == 2
    assert drain(app) == 0  # still down: nothing is taken from the list
    assert len(kept(app)) == 2
    proxy.restore()
    assert wait_for(lambda: drain(app) == 2, 60)
    assert not kept(app)
    assert count(Interaction, Interaction.external_id.in_([call_sid(4), call_sid(5)])) == 2


def test_an_unreachable_database_defers_the_call_and_a_replay_records_it(
    app, app_config, tmp_path, client
):
    """Embedded defaults too: a database that cannot be opened is an outage like any."""
    routing.create_queue(name="General", channels=["voice"], is_default=True)
    db.session.commit()
    down = create_app({**app_config, "DATABASE_URL": f"sqlite:///{tmp_path}/gone/cc.db"})
    params = {"CallSid": call_sid(7), **CALLER}
    headers = {"X-Twilio-Signature": sign(PUBLIC_BASE_URL + VOICE, params)}
    with down.test_client() as down_client:
        answer = down_client.post(VOICE, data=params, headers=headers)
        assert answer.status_code == 200 and b"<Record" in answer.data
        # The replay marker lives in the WSGI environ: no header reaches it.
        forged = down_client.post(
            VOICE,
            data={"CallSid": call_sid(8)},
            headers={"contact_center.deferred_replay": "1", "X-Twilio-Signature": "x"},
        )
        assert forged.status_code == 403
    entries = down.extensions["redis"].lrange(DEFERRED_KEY, 0, -1)
    if not app_config["REDIS_URL"]:
        # Embedded Redis lives in each app: hand what was kept to the app that recovers.
        app.extensions["redis"].rpush(DEFERRED_KEY, *entries)
    assert [json.loads(e)["call_sid"] for e in entries] == [call_sid(7)]
    assert drain(app) == 1
    assert not app.extensions["redis"].llen(DEFERRED_KEY)
    db.session.remove()
    interaction = db.session.scalar(
        sa.select(Interaction).where(Interaction.external_id == call_sid(7))
    )
    assert (interaction.status, interaction.outcome) == ("ended", "abandoned")
    # Twilio's retry of that call gets the answer it got then, and records nothing more.
    retried = client.post(VOICE, data=params, headers=headers)
    assert retried.status_code == 200 and retried.data == answer.data
    assert count(Interaction, Interaction.external_id == call_sid(7)) == 1
