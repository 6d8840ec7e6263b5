"""The database briefly unavailable: voice webhooks answer as the fallback URL and are kept
in Redis for replay, mail webhooks answer 503 so the provider retries; nothing is
half-written, and everything is recorded once the database is back, without a restart."""

from __future__ import annotations

import json
import threading
from email.message import EmailMessage
from email.utils import formatdate
from urllib.parse import urlencode, urlsplit, urlunsplit

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
from tests.faults import TcpProxy, wait_for
from tests.invariants import assert_invariants
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
    assert_invariants(app)


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
    assert_invariants(app)


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
    assert_invariants(app)


# ---------------------------------------------------------------- the other voice paths


class Outage:
    """The database out of reach for the voice webhooks: on real services the proxy cuts
    PostgreSQL; embedded, an app whose SQLite file cannot be opened answers, and what it
    kept is handed to the app that recovers (its Redis lives in the app)."""

    def __init__(self, app, app_config, tmp_path, proxy) -> None:
        self.app, self.proxy = app, proxy
        self.down = None
        if proxy is None:
            self.down = create_app({**app_config, "DATABASE_URL": f"sqlite:///{tmp_path}/x/cc.db"})

    def __enter__(self) -> Outage:
        db.session.remove()
        if self.proxy is not None:
            self.proxy.cut()
        return self

    def post(self, path: str, params: dict[str, str], query: dict[str, str] | None = None):
        full_path = path + (f"?{urlencode(query)}" if query else "")
        headers = {"X-Twilio-Signature": sign(PUBLIC_BASE_URL + full_path, params)}
        target = self.down or self.app
        with target.test_client() as client:
            return client.post(full_path, data=params, headers=headers)

    def kept(self) -> list[dict]:
        redis = (self.down or self.app).extensions["redis"]
        return [json.loads(raw) for raw in redis.lrange(DEFERRED_KEY, 0, -1)]

    def __exit__(self, *exc) -> None:
        if self.proxy is not None:
            self.proxy.restore()
            assert wait_for(database_answers, 60), "the database did not come back"
        elif not self.app.config["REDIS_URL"]:
            entries = self.down.extensions["redis"].lrange(DEFERRED_KEY, 0, -1)
            if entries:
                self.app.extensions["redis"].rpush(DEFERRED_KEY, *entries)


@pytest.fixture
def outage(app, app_config, tmp_path, request):
    proxy = request.getfixturevalue("proxy") if TEST_DATABASE_URL else None
    return Outage(app, app_config, tmp_path, proxy)


def fresh(model, id_):
    db.session.remove()
    return db.session.get(model, id_)


def say(response) -> str:
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.content_type.startswith("text/xml")
    return response.get_data(as_text=True)


@pytest.mark.timeout(180)
def test_connect_requeue_and_survey_answer_twiml_during_an_outage_and_replay_once(
    app, outage, twilio_post, create_user
):
    general = routing.create_queue(
        name="General", channels=["voice"], is_default=True, post_call_survey=True
    )
    db.session.commit()
    alice = create_user("alice")
    routing.set_agent_status(alice, "available")
    # Call 1 is offered to alice, who accepts: Twilio fetches the two legs' TwiML next.
    assert twilio_post(VOICE, {"CallSid": call_sid(1), **CALLER}).status_code == 200
    reservation = routing.pending_offer(alice)
    connecting = routing.accept(alice, reservation.id)
    assert connecting.status == "connecting"
    connecting_id, reservation_id, alice_id = connecting.id, reservation.id, alice.id
    # Call 2 waits after a transfer; call 3 has ended and its caller is asked to rate it.
    waiting = routing.create_interaction(
        channel="voice", queue=general, external_id=call_sid(2), from_address=CALLER["From"]
    )
    rated = Interaction(
        channel="voice", direction="inbound", external_id=call_sid(3), status="ended",
        outcome="answered", queue_id=general.id,
    )  # fmt: skip
    db.session.add(rated)
    db.session.commit()
    waiting_id, rated_id = waiting.id, rated.id
    fallback = say(twilio_post(f"{VOICE}/fallback", {"CallSid": call_sid(9)}))
    connect_path = f"{VOICE}/connect/{reservation_id}"
    survey_path = f"{VOICE}/survey/{rated_id}"

    with outage:
        # The caller's leg cannot be bridged: the fallback (an apology and a voicemail).
        assert say(outage.post(connect_path, {"CallSid": call_sid(1)}, {"leg": "caller"})) == (
            fallback
        )
        agent_leg = say(outage.post(connect_path, {"CallSid": call_sid(8)}, {"leg": "agent"}))
        assert "cannot be connected right now" in agent_leg and "<Hangup" in agent_leg
        requeued = say(outage.post(f"{VOICE}/requeue/{waiting_id}", {"CallSid": call_sid(2)}))
        assert requeued == fallback
        # The survey goes on: the question, a wrong key, then a rating that is kept.
        ask = say(outage.post(survey_path, {"CallSid": call_sid(3)}))
        assert "<Gather" in ask and f"{survey_path}" in ask
        again = say(outage.post(survey_path, {"CallSid": call_sid(3), "Digits": "9"}))
        assert "press 1 to 5" in again
        thanks = say(outage.post(survey_path, {"CallSid": call_sid(3), "Digits": "4"}))
        assert "Thank you for your rating" in thanks and "<Hangup" in thanks
        # Unsigned requests are still refused, and never kept.
        unsigned = (
            (outage.down or app)
            .test_client()
            .post(survey_path, data={"CallSid": call_sid(3), "Digits": "1"})
        )
        assert unsigned.status_code == 403
        assert [(e["path"], e["call_sid"]) for e in outage.kept()] == [
            (f"{connect_path}?leg=caller", call_sid(1)),
            (f"{VOICE}/requeue/{waiting_id}", call_sid(2)),
            (survey_path, call_sid(3)),
        ]

    # Nothing was written while it was down.
    assert fresh(Interaction, rated_id).satisfaction is None
    assert fresh(Interaction, connecting_id).status == "connecting"
    assert drain(app) == 3
    redis = app.extensions["redis"]
    assert not redis.llen(DEFERRED_KEY) and not redis.llen(FAILED_KEY)
    assert drain(app) == 0
    # The rating is recorded once; a retried delivery changes nothing.
    assert fresh(Interaction, rated_id).satisfaction == 4
    assert count(WebhookReceipt, WebhookReceipt.key == f"survey:{call_sid(3)}") == 1
    retried = twilio_post(survey_path, {"CallSid": call_sid(3), "Digits": "2"})
    assert "Thank you for your rating" in say(retried)
    assert fresh(Interaction, rated_id).satisfaction == 4
    assert count(WebhookReceipt, WebhookReceipt.key == f"survey:{call_sid(3)}") == 1
    # The callers heard the fallback, not an agent or the queue: their calls end there,
    # alice is free again, and the waiting call no longer waits.
    connected = fresh(Interaction, connecting_id)
    assert (connected.status, connected.outcome, connected.leave_reason) == (
        "ended",
        "abandoned",
        "fallback",
    )
    assert routing.get_store().load(alice_id, "voice") == 0
    requeued_call = fresh(Interaction, waiting_id)
    assert (requeued_call.status, requeued_call.outcome, requeued_call.leave_reason) == (
        "ended",
        "abandoned",
        "fallback",
    )
    # A message the transferred caller left through the fallback becomes a voicemail.
    recorded = {
        "CallSid": call_sid(2),
        "RecordingSid": "RE" + "2" * 32,
        "RecordingUrl": RECORDING,
        "RecordingStatus": "completed",
    }
    assert twilio_post(f"{VOICE}/recording", recorded).status_code == 200
    voicemail = fresh(Interaction, waiting_id)
    assert voicemail.outcome == "voicemail" and voicemail.ticket_id is not None
    assert_invariants(app)


@pytest.mark.timeout(180)
def test_an_outbound_call_during_an_outage_joins_the_customer_or_apologises_to_the_agent(
    app, outage, twilio_post, create_user, client, auth_header, twilio_stub
):
    from contact_center.customers.services import create_customer

    routing.create_queue(name="General", channels=["voice"], is_default=True)
    ann = create_customer({"name": "Ann Example", "phones": ["+44 7700 900200"], "emails": []})
    bob = create_customer({"name": "Bob Example", "phones": ["+44 7700 900300"], "emails": []})
    alice, carol = create_user("alice"), create_user("carol")
    for agent in (alice, carol):
        routing.set_agent_status(agent, "available")
    ann_id, bob_id, carol_id = ann.id, bob.id, carol.id
    alice_auth, carol_auth = auth_header(alice), auth_header(carol)
    # Alice's call to Ann: her leg joined before the outage, so Ann is being rung.
    started = client.post(f"/api/v1/customers/{ann_id}/call", json={}, headers=alice_auth)
    assert started.status_code == 201, started.get_json()
    to_ann = fresh(Interaction, started.get_json()["id"])
    out = f"{VOICE}/outbound/{to_ann.id}"
    assert say(twilio_post(out, {"CallSid": to_ann.agent_call_sid}, query={"leg": "agent"}))
    ann_sid = fresh(Interaction, to_ann.id).external_id
    assert ann_sid
    # Carol's call to Bob: her own leg answers during the outage.
    started = client.post(f"/api/v1/customers/{bob_id}/call", json={}, headers=carol_auth)
    assert started.status_code == 201, started.get_json()
    to_bob = fresh(Interaction, started.get_json()["id"])
    to_ann_id, to_bob_id, carol_sid = to_ann.id, to_bob.id, to_bob.agent_call_sid

    with outage:
        joined = say(outage.post(out, {"CallSid": ann_sid}, {"leg": "customer"}))
        assert f"cc-interaction-{to_ann_id}" in joined and "<Conference" in joined
        sorry = say(
            outage.post(f"{VOICE}/outbound/{to_bob_id}", {"CallSid": carol_sid}, {"leg": "agent"})
        )
        assert "cannot be placed right now" in sorry and "<Hangup" in sorry
        assert "<Conference" not in sorry
        ended = {"CallSid": carol_sid, "CallStatus": "completed", "SequenceNumber": "1"}
        assert say(outage.post(f"{VOICE}/status", ended))
        assert [(e["path"], e["call_sid"]) for e in outage.kept()] == [
            (f"{out}?leg=customer", ann_sid),
            (f"{VOICE}/status", carol_sid),
        ]

    calls_before = len(twilio_stub.state.requests)
    assert drain(app) == 2 and drain(app) == 0
    # Ann's leg is recorded as joined; the answer is stored once for a retry.
    live = fresh(Interaction, to_ann_id)
    assert live.status == "active" and live.answered_at is not None
    assert count(WebhookReceipt, WebhookReceipt.key == f"outbound:{ann_sid}:customer") == 1
    retried = twilio_post(out, {"CallSid": ann_sid}, query={"leg": "customer"})
    assert f"cc-interaction-{to_ann_id}" in say(retried)
    assert count(WebhookReceipt, WebhookReceipt.key == f"outbound:{ann_sid}:customer") == 1
    # Carol's attempt ends when her leg's end is replayed; Bob was never rung.
    failed = fresh(Interaction, to_bob_id)
    assert (failed.status, failed.outcome, failed.external_id) == ("ended", "failed", None)
    assert routing.get_store().load(carol_id, "voice") == 0
    dialled = [r for r in twilio_stub.state.requests[calls_before:] if "To" in r.form]
    assert dialled == []
    assert_invariants(app)
