"""`flask worker` in its own OS process fires the routing timers against the shared Redis."""

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
from tests.conftest import TEST_DATABASE_URL, TEST_REDIS_URL

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.real_services
def test_worker_process_times_out_an_offer(app, create_user):
    queue = routing.create_queue(name="General", channels=["email"], offer_timeout_s=3)
    db.session.commit()
    sam = create_user("sam")
    routing.set_agent_status(sam, "available")
    routing.create_interaction(channel="email", queue=queue, external_id="w-1")
    reservation_id = db.session.scalar(sa.select(Reservation.id))
    env = {
        **os.environ,
        "DATABASE_URL": TEST_DATABASE_URL,
        "REDIS_URL": TEST_REDIS_URL,
        "SECRET_KEY": "worker-test-secret",
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "wsgi", "worker"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
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
