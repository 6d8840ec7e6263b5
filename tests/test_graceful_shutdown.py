"""Graceful shutdown as deployed: the gunicorn master (gevent worker) and `flask worker` get
SIGTERM, as a platform sends it before it stops a process. What is in flight finishes and is
committed, nothing new is taken, and each process exits by itself.

A webhook or a job is held "in flight" by the database itself: the test holds a PostgreSQL
lock the work needs, sees the work wait on it (pg_stat_activity), signals, then lets go.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import threading
import time
import urllib.error
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import pytest
import sqlalchemy as sa

from contact_center.agents.services import issue_token
from contact_center.extensions import db
from contact_center.health import HEARTBEATS_KEY
from contact_center.routing import services as routing
from contact_center.routing.models import Interaction
from contact_center.tickets.models import TicketMessage
from tests.conftest import (
    ACCOUNT_SID,
    TEST_DATABASE_URL,
    TEST_REDIS_URL,
    VOICE,
    call_sid,
)
from tests.faults import StallingSmtp, wait_for
from tests.invariants import assert_invariants
from tests.test_scale_out import (
    BIN,
    deployment_env,
    free_port,
    post_twilio,
    start,
    stop,
    tail,
    wait_until_serving,
)
from tests.tickets.test_email_inbound import make_mail

WAIT_S = 60.0  # generous: gunicorn, its worker and this test share two busy cores
GRACEFUL_TIMEOUT_S = 60  # longer than any wait below: a process killed at it fails the test
CALLER = {"From": "+447700900123", "To": "+441632960000", "AccountSid": ACCOUNT_SID}


def _engine() -> sa.Engine:
    return sa.create_engine(
        TEST_DATABASE_URL.replace("postgresql://", "postgresql+psycopg://", 1),
        poolclass=sa.pool.NullPool,
    )


def _wait_for_lock_waiter(engine: sa.Engine) -> None:
    """Until some other session of this database waits on a lock (the work held in flight)."""
    query = sa.text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
    )
    end = time.monotonic() + WAIT_S
    while time.monotonic() < end:
        with engine.connect() as connection:
            if connection.scalar(query):
                return
        time.sleep(0.2)
    raise AssertionError("nothing ever waited on the lock the test holds")


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


class _AgentConsole:
    """An agent's console holding a websocket open, in a thread, until the server closes it."""

    def __init__(self, url: str, token: str) -> None:
        self.url, self.token = url, token
        self.connected = threading.Event()
        self.closed = threading.Event()
        self.error: BaseException | None = None
        self.reasons: list = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> _AgentConsole:
        self.thread.start()
        assert self.connected.wait(WAIT_S), f"the console never connected: {self.error!r}"
        return self

    def _run(self) -> None:
        try:
            asyncio.run(self._session())
        except BaseException as error:  # reported by the test through `error`
            self.error = error
        finally:
            self.closed.set()

    async def _session(self) -> None:
        import socketio

        client = socketio.AsyncClient(reconnection=False)

        @client.on("disconnect", namespace="/agent")
        def on_disconnect(reason=None) -> None:
            self.reasons.append(reason)

        await client.connect(
            self.url,
            namespaces=["/agent"],
            transports=["websocket"],
            auth={"token": self.token},
        )
        ack = await client.call(
            "set_status", {"status": "available"}, namespace="/agent", timeout=WAIT_S
        )
        assert ack["ok"], ack
        self.connected.set()
        try:
            await asyncio.wait_for(client.wait(), 2 * GRACEFUL_TIMEOUT_S)
        finally:
            await client.disconnect()


@pytest.mark.real_services
@pytest.mark.timeout(300)
def test_sigterm_lets_an_in_flight_call_finish_and_takes_no_new_one(
    app, create_user, twilio_stub, tmp_path
):
    routing.create_queue(name="General", channels=["voice"], is_default=True)
    db.session.commit()
    token, _ = issue_token(create_user("alice"))
    db.session.remove()
    port, log = free_port(), tmp_path / "web.log"
    engine = _engine()
    command = [
        str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "-k", "gevent", "-w", "1",
        "--worker-connections", "100",
        "--graceful-timeout", str(GRACEFUL_TIMEOUT_S), "-b", f"127.0.0.1:{port}", "wsgi:app",
    ]  # fmt: skip
    with ExitStack() as stack:
        web = start(command, deployment_env(twilio_stub), log)
        stack.callback(stop, web)
        stack.callback(engine.dispose)
        pool = stack.enter_context(ThreadPoolExecutor(max_workers=1))
        try:
            wait_until_serving(web, port, log)
            # An open agent console: it must not hold the worker until the graceful timeout.
            console = _AgentConsole(f"http://127.0.0.1:{port}", token).start()
            holder = stack.enter_context(engine.connect())
            holder.execute(sa.text("LOCK TABLE interactions IN EXCLUSIVE MODE"))
            call = pool.submit(post_twilio, port, VOICE, {"CallSid": call_sid(1), **CALLER})
            _wait_for_lock_waiter(engine)

            web.send_signal(signal.SIGTERM)
            # A request after the signal is not taken (the listening socket is closed).
            assert wait_for(lambda: _refused(port), WAIT_S), "still accepting after SIGTERM"
            with pytest.raises(urllib.error.URLError):
                post_twilio(port, VOICE, {"CallSid": call_sid(2), **CALLER})
            assert not call.done()  # still waiting on the database
            holder.rollback()  # the database answers again
            status, body = call.result(timeout=WAIT_S)
            assert web.wait(timeout=GRACEFUL_TIMEOUT_S + 30) == 0
        except BaseException:
            print(f"--- web ---\n{tail(log)}")
            raise
    assert status == 200 and b"<Enqueue" in body, body
    output = log.read_text(errors="replace")
    # The worker exited by itself, not killed at the graceful timeout.
    assert "Worker exiting" in output and "SIGKILL" not in output, output
    assert console.closed.wait(WAIT_S) and console.error is None, console.error
    # Closed as a lost transport, which a browser reconnects from; a Socket.IO-level
    # disconnect ("io server disconnect") would leave the console waiting for a reload.
    assert console.reasons and "io server disconnect" not in console.reasons, console.reasons
    db.session.remove()
    recorded = db.session.scalars(sa.select(Interaction.external_id)).all()
    assert recorded == [call_sid(1)]  # committed; the call refused after the signal is not
    assert_invariants(app)


def _start_worker(log, **settings: str):
    """`flask worker` on the test's database and Redis, its output in `log`."""
    env = {
        **os.environ,
        "DATABASE_URL": TEST_DATABASE_URL or "",
        "REDIS_URL": TEST_REDIS_URL or "",
        "SECRET_KEY": "worker-test-secret",
        **settings,
    }
    env.pop("FLASK_APP", None)
    return start([sys.executable, "-m", "flask", "--app", "wsgi", "worker"], env, log)


def _beating(app, worker) -> bool:
    """Whether the worker process's heartbeat is in Redis."""
    beats = app.extensions["redis"].zrange(HEARTBEATS_KEY, 0, -1)
    return any(f":{worker.pid}:" in member for member in beats)


def _rq_workers(app) -> list:
    from rq import Worker

    return Worker.all(connection=app.extensions["redis_raw"])


@pytest.mark.real_services
@pytest.mark.timeout(300)
def test_sigterm_lets_the_worker_finish_its_job_then_exit(app, post_mail, tmp_path):
    """`flask worker` told to stop mid-job (a mail held in SMTP DATA) finishes the job, stops
    its timer poller, takes its heartbeat away and exits 0."""
    from aiosmtpd.controller import Controller

    port = free_port()
    sink = StallingSmtp(hold_s=WAIT_S)
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    post_mail(make_mail())  # the auto-reply is queued as an RQ job
    db.session.remove()
    log = tmp_path / "worker.log"
    worker = _start_worker(
        log,
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(port),
        SMTP_STARTTLS="0",
        MAIL_FROM="help@desk.test",
        SUPPORT_ADDRESS="support@desk.test",
    )
    try:
        assert sink.stalled.wait(WAIT_S), f"the mail job never reached DATA:\n{tail(log)}"
        assert wait_for(lambda: _beating(app, worker), WAIT_S), "the worker never beat"
        worker.send_signal(signal.SIGTERM)
        # RQ records that a stop was asked for; the job is still in DATA.
        assert wait_for(lambda: any(w.shutdown_requested_date for w in _rq_workers(app)), WAIT_S), (
            f"the worker never took the signal:\n{tail(log)}"
        )
        assert worker.poll() is None and not sink.messages
        sink.release.set()
        assert worker.wait(timeout=WAIT_S) == 0, tail(log)
    except BaseException:
        print(f"--- worker ---\n{tail(log)}")
        raise
    finally:
        sink.release.set()
        stop(worker)
        controller.stop()
    output = log.read_text(errors="replace")
    assert len(sink.messages) == 1  # the job in flight was finished, once
    db.session.remove()
    ack = db.session.scalar(sa.select(TicketMessage).where(TicketMessage.kind == "auto_reply"))
    assert ack.delivery_status == "sent" and ack.send_attempts == 1
    assert "timer poller stopped" in output, output
    assert not _beating(app, worker)
    assert not _rq_workers(app)  # unregistered from RQ
    assert_invariants(app)


@pytest.mark.real_services
@pytest.mark.timeout(120)
def test_sigterm_stops_an_idle_worker_at_once(app, tmp_path):
    log = tmp_path / "worker.log"
    worker = _start_worker(log)
    try:
        assert wait_for(lambda: _beating(app, worker) and _rq_workers(app), WAIT_S), (
            f"the worker never started:\n{tail(log)}"
        )
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=WAIT_S) == 0, tail(log)
    finally:
        stop(worker)
    assert "timer poller stopped" in log.read_text(errors="replace")
    assert not _beating(app, worker)
    assert not _rq_workers(app)
    assert_invariants(app)
