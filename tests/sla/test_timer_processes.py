"""Timeliness under failure: 1,000 SLA timers, two `flask worker` processes on real Redis and
PostgreSQL, one killed mid-run. Every breach step must run exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa

from contact_center.extensions import db
from contact_center.simulate.sla_load import fired_count, fired_steps, seed_due_tickets
from contact_center.tickets.models import Ticket
from tests.conftest import TEST_DATABASE_URL, TEST_REDIS_URL
from tests.faults import wait_for
from tests.invariants import assert_invariants

ROOT = Path(__file__).resolve().parents[2]
TIMERS = 1000
WINDOW_S = 12.0
DEADLINE_S = 150.0  # a killed worker's claims come back after the 30 s lease


def start_worker(log) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": TEST_DATABASE_URL or "",
        "REDIS_URL": TEST_REDIS_URL or "",
        "SECRET_KEY": "test-secret-key",
    }
    return subprocess.Popen(  # noqa: S603  (our own CLI)
        [sys.executable, "-m", "flask", "--app", "wsgi", "worker"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,  # a file, not a pipe nobody reads: a full pipe blocks a worker
    )


@pytest.mark.real_services
def test_every_due_timer_fires_once_even_when_a_worker_dies(app, tmp_path):
    seed_due_tickets(TIMERS, WINDOW_S, lead_s=4.0)
    logs = [(tmp_path / f"worker{i}.log").open("wb") for i in (0, 1)]
    workers = [start_worker(log) for log in logs]
    try:
        assert wait_for(lambda: fired_count() >= TIMERS // 3, DEADLINE_S), "nothing fired"
        workers[0].send_signal(signal.SIGKILL)  # mid-run: its claims and jobs are in flight
        workers[0].wait(timeout=10)
        wait_for(lambda: fired_count() >= TIMERS, DEADLINE_S)
        time.sleep(1.0)  # anything fired twice would show by now
        fired = fired_steps()
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.terminate()
        for worker in workers:
            try:
                worker.wait(timeout=15)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        for log in logs:
            log.close()
    per_ticket = Counter(ticket_id for ticket_id, _, _ in fired)
    survivor_log = (tmp_path / "worker1.log").read_text(errors="replace")[-3000:]
    assert len(per_ticket) == TIMERS, f"{TIMERS - len(per_ticket)} lost; {survivor_log}"
    assert max(per_ticket.values()) == 1
    # The step's action ran once per ticket too: every ticket carries its tag exactly once.
    tags = db.session.scalars(sa.select(Ticket.tags).where(Ticket.number.like("L%"))).all()
    db.session.rollback()
    assert len(tags) == TIMERS
    assert all(t.count("late") == 1 for t in tags)
    # Nothing fired before it was due.
    assert all(recorded >= due for _, due, recorded in fired)
    assert_invariants(app)
