"""Background jobs on RQ: enqueue from services, run in `flask worker` or the embedded thread.

Jobs are plain functions taking ids; the worker runs each inside the app context and
clears the database session afterwards. Delayed work (retries with back-off, SLA timers)
goes through our own timer set, not RQ's scheduler (see ARCHITECTURE.md).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from flask import Flask, current_app
from rq import Queue, SimpleWorker
from rq.job import Job
from rq.timeouts import TimerDeathPenalty

from contact_center.extensions import db
from contact_center.redis_client import get_raw_redis

log = logging.getLogger(__name__)
QUEUE_NAME = "cc"
JOB_TIMEOUT_S = 120


def get_queue() -> Queue:
    """The app's RQ queue."""
    queue = current_app.extensions.get("rq_queue")
    if queue is None:
        queue = Queue(QUEUE_NAME, connection=get_raw_redis())
        current_app.extensions["rq_queue"] = queue
    return queue


def enqueue(func: Callable[..., Any], *args: Any, job_id: str | None = None) -> Job:
    """Queue a job (call after the data it reads is committed)."""
    return get_queue().enqueue(func, *args, job_id=job_id, job_timeout=JOB_TIMEOUT_S)


class AppWorker(SimpleWorker):
    """An RQ worker in this process (no fork) that runs each job in the app context.

    It may run in a thread (the embedded worker): there it must not install signal
    handlers, and job timeouts use a timer rather than SIGALRM.
    """

    death_penalty_class = TimerDeathPenalty

    def __init__(self, app: Flask, *, in_thread: bool = False) -> None:
        with app.app_context():
            super().__init__([get_queue()], connection=get_raw_redis())
        self.app = app
        self.in_thread = in_thread

    def _install_signal_handlers(self) -> None:
        if not self.in_thread:
            super()._install_signal_handlers()

    def perform_job(self, job: Job, queue: Queue, *args: Any, **kwargs: Any) -> bool:
        with self.app.app_context():
            try:
                return super().perform_job(job, queue, *args, **kwargs)
            finally:
                db.session.remove()


def run_queued_jobs(app: Flask, worker: AppWorker | None = None) -> bool:
    """Run every queued job, then return (whether any ran)."""
    worker = worker or AppWorker(app, in_thread=True)
    return worker.work(burst=True, logging_level="WARNING")
