"""Background work: RQ jobs (mail, escalations) and the timer poller (offer timeouts,
overflow steps, wrap-up ends, retries with back-off, SLA clocks).

Production runs both in `flask worker` processes (as many as needed: timers are claimed
atomically, jobs are dequeued atomically). Embedded mode runs them in a thread of the web
process, because the in-process Redis cannot be shared with another process.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from flask import Flask

from contact_center.extensions import db

log = logging.getLogger(__name__)
POLL_INTERVAL_S = 0.25
# How often a worker offers to queue the retention job (one runs per hour across workers).
RETENTION_OFFER_S = 60
# How often a worker looks for voice webhooks kept during a database outage (one Redis
# round trip; the database is asked only when some are waiting).
DEFERRED_CHECK_S = 2.0


def poll_once(app: Flask, *, sla: bool = True) -> int:
    """Fire the due routing timers and (with `sla`) hand due SLA timers to jobs; returns
    how many."""
    from contact_center.routing.services import run_due_timers
    from contact_center.sla.services import poll_due

    fired = 0
    with app.app_context():
        for poll in (run_due_timers, poll_due) if sla else (run_due_timers,):
            try:
                fired += poll()
            except Exception:
                db.session.rollback()
                log.exception("timer poll failed")
            finally:
                db.session.remove()
    return fired


def run_forever(app: Flask, stop: threading.Event, *, with_jobs: bool = False) -> None:
    """Poll until `stop` is set; busy when timers are due, idle otherwise. On the way out
    the heartbeat is taken back, so /readyz counts only workers that still poll.

    `with_jobs` also runs queued RQ jobs in this thread (the embedded worker).
    """
    from contact_center.health import HEARTBEAT_EVERY_S, beat, forget, worker_name
    from contact_center.jobs import AppWorker, run_queued_jobs
    from contact_center.retention import offer_turn
    from contact_center.routing.services import reap_silent_web_processes

    worker = AppWorker(app, in_thread=True) if with_jobs else None
    sla_polled_at = beaten_at = retention_offered_at = deferred_checked_at = reaped_at = 0.0
    name = worker_name()
    reap_every_s = app.config["WEB_PROCESS_SILENT_S"] / 3
    while not stop.is_set():
        if time.monotonic() - beaten_at >= HEARTBEAT_EVERY_S:
            beaten_at = time.monotonic()
            # A Redis outage shows in /readyz.
            _chore(app, beat, name, failed="worker heartbeat not recorded")
        if time.monotonic() - reaped_at >= reap_every_s:
            reaped_at = time.monotonic()
            # The consoles of web processes that died come off their agents' socket counts.
            _chore(app, reap_silent_web_processes, failed="silent web processes not reaped")
        if time.monotonic() - retention_offered_at >= RETENTION_OFFER_S:
            retention_offered_at = time.monotonic()
            _chore(app, offer_turn, failed="retention not offered")
        # SLA timers are looked at a few times a second, so each job gets a batch of them;
        # routing timers (offer timeouts) as often as they fire.
        sla = time.monotonic() - sla_polled_at >= POLL_INTERVAL_S
        if sla:
            sla_polled_at = time.monotonic()
        fired = poll_once(app, sla=sla)
        if time.monotonic() - deferred_checked_at >= DEFERRED_CHECK_S:
            deferred_checked_at = time.monotonic()
            fired += replay_deferred(app)
        if worker is not None:
            try:
                fired += run_queued_jobs(app, worker)
            except Exception:
                log.exception("job run failed")
        stop.wait(0 if fired else POLL_INTERVAL_S)
    # Its heartbeat goes now (failing that, it goes stale: HEARTBEAT_STALE_S).
    _chore(app, forget, name, failed="worker heartbeat not removed")
    log.info("timer poller stopped")


def replay_deferred(app: Flask) -> int:
    """Replay the voice webhooks kept while the database was down, if it answers again."""
    from webhooks.deferred import drain

    try:
        return drain(app)
    except Exception:  # a Redis outage: the kept requests wait in Redis for the next look
        log.warning("deferred webhooks not replayed", exc_info=True)
        return 0


def _chore(app: Flask, action: Callable[..., Any], *args: Any, failed: str) -> None:
    """One of the loop's chores in the app's context. If it fails (Redis or the database
    briefly away), `failed` is logged and the loop goes on: the next round does it."""
    try:
        with app.app_context():
            action(*args)
    except Exception:
        log.warning(failed, exc_info=True)


def start_embedded_worker(app: Flask) -> threading.Thread | None:
    """Start the poller thread once per app (embedded mode only)."""
    if app.extensions.get("embedded_worker") is not None:
        return None
    stop = threading.Event()
    thread = threading.Thread(
        target=run_forever,
        args=(app, stop),
        kwargs={"with_jobs": True},
        name="cc-worker",
        daemon=True,
    )
    app.extensions["embedded_worker"] = (thread, stop)
    thread.start()
    log.info("embedded worker started (jobs and timers)")
    return thread


def register_embedded_worker(app: Flask) -> None:
    """In embedded mode, start the worker thread with the first request the server handles."""
    if app.config.get("REDIS_URL") or app.testing or not app.config.get("EMBEDDED_WORKER", True):
        return
    lock = threading.Lock()

    @app.before_request
    def _start_worker() -> None:
        if app.extensions.get("embedded_worker") is None:
            with lock:
                start_embedded_worker(app)
