"""The worker: `flask worker` in its own OS process (timers and RQ jobs on the shared Redis),
and the embedded worker thread of a single-process server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from contact_center.extensions import db
from contact_center.routing import services as routing
from contact_center.routing.models import Reservation
from contact_center.simulate.sla_load import fired_steps, seed_due_tickets
from contact_center.tickets.models import TicketMessage
from contact_center.worker import start_embedded_worker
from tests.conftest import TEST_DATABASE_URL, TEST_REDIS_URL
from tests.faults import StallingSmtp
from tests.invariants import assert_invariants
from tests.tickets.test_email_inbound import make_mail

ROOT = Path(__file__).resolve().parent.parent


def _start_worker(**env: str) -> subprocess.Popen:
    """`flask worker` as its own process on the shared PostgreSQL and Redis."""
    return subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "wsgi", "worker"],
        cwd=ROOT,
        env={
            **os.environ,
            "DATABASE_URL": TEST_DATABASE_URL,
            "REDIS_URL": TEST_REDIS_URL,
            "SECRET_KEY": "worker-test-secret",
            **env,
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.real_services
def test_worker_process_times_out_an_offer(app, create_user):
    queue = routing.create_queue(name="General", channels=["email"], offer_timeout_s=3)
    db.session.commit()
    sam = create_user("sam")
    routing.set_agent_status(sam, "available")
    routing.create_interaction(channel="email", queue=queue, external_id="w-1")
    reservation_id = db.session.scalar(sa.select(Reservation.id))
    worker = _start_worker()
    try:
        deadline = time.monotonic() + 60
        status = "pending"
        while time.monotonic() < deadline and status == "pending":
            time.sleep(0.5)
            db.session.expire_all()
            status = db.session.get(Reservation, reservation_id).status
        assert status == "timeout"
    finally:
        worker.send_signal(signal.SIGTERM)
        output, _ = worker.communicate(timeout=30)
    assert worker.returncode == 0, output
    assert "Worker running" in output


def _wait_for_ack(status: str, timeout: float = 60) -> TicketMessage:
    deadline = time.monotonic() + timeout
    while True:
        db.session.expire_all()
        ack = db.session.scalar(sa.select(TicketMessage).where(TicketMessage.kind == "auto_reply"))
        if ack.delivery_status == status or time.monotonic() > deadline:
            return ack
        time.sleep(0.2)


def test_embedded_worker_thread_sends_queued_mail(app, post_mail, smtp_server):
    post_mail(make_mail())
    thread = start_embedded_worker(app)
    try:
        ack = _wait_for_ack("sent")
    finally:
        app.extensions["embedded_worker"][1].set()
        thread.join(timeout=10)
    assert ack.delivery_status == "sent"
    assert len(smtp_server.messages) == 1
    assert smtp_server.messages[0].rcpt_tos == ["mei@example.org"]


@pytest.mark.real_services
def test_worker_process_runs_mail_jobs(app, post_mail, smtp_server):
    post_mail(make_mail())
    worker = _start_worker(
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(app.config["SMTP_PORT"]),
        SMTP_STARTTLS="0",
        MAIL_FROM="help@desk.test",
        SUPPORT_ADDRESS="support@desk.test",
    )
    try:
        ack = _wait_for_ack("sent")
    finally:
        worker.send_signal(signal.SIGTERM)
        output, _ = worker.communicate(timeout=30)
    assert ack.delivery_status == "sent", output
    assert worker.returncode == 0, output
    assert len(smtp_server.messages) == 1


def test_embedded_worker_thread_runs_sla_escalations(app):
    seed_due_tickets(5, 1.0, lead_s=0.5)
    thread = start_embedded_worker(app)
    try:
        deadline = time.monotonic() + 60
        while len(fired_steps()) < 5 and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        app.extensions["embedded_worker"][1].set()
        thread.join(timeout=10)
    fired = fired_steps()
    assert sorted(ticket_id for ticket_id, _, _ in fired) == sorted({t for t, _, _ in fired})
    assert len(fired) == 5
    assert all(recorded >= due for _, due, recorded in fired)


@pytest.mark.real_services
@pytest.mark.timeout(180)
def test_a_worker_killed_while_sending_leaves_the_mail_to_another_once(app, post_mail):
    """Fault: SIGKILL in the middle of an SMTP conversation. The send's lease timer queues it
    again and another worker sends it; the message goes out once."""
    import socket

    from aiosmtpd.controller import Controller

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sink = StallingSmtp(first_answer="451 4.3.0 Try again later")
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    env = {
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(port),
        "SMTP_STARTTLS": "0",
        "MAIL_FROM": "help@desk.test",
        "SUPPORT_ADDRESS": "support@desk.test",
        "MAIL_SEND_LEASE_S": "3",
    }
    post_mail(make_mail())
    first = _start_worker(**env)
    second = None
    try:
        assert sink.stalled.wait(60), "the first worker never reached DATA"
        first.kill()  # mid-conversation: its transaction and its job die with it
        first.communicate(timeout=30)  # reaps it and closes its output pipe
        sink.release.set()
        second = _start_worker(**env)
        ack = _wait_for_ack("sent", timeout=120)
    finally:
        sink.release.set()
        for worker in (first, second):
            if worker is not None and worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
                worker.communicate(timeout=30)
        controller.stop()
    assert ack.delivery_status == "sent"
    assert len(sink.messages) == 1
    assert ack.send_attempts == 1  # the killed attempt was never committed
    assert_invariants(app)
