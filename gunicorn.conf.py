"""gunicorn settings for the web processes (the Procfile runs `gunicorn -c gunicorn.conf.py`).

Graceful shutdown: on SIGTERM the master closes the listening socket (new connections are
refused, so the balancer sends them elsewhere) and tells the worker to stop; the worker
finishes the requests in flight, for at most --graceful-timeout seconds, then exits. The
hook below closes the worker's Socket.IO connections at that moment, since an open agent
console would otherwise keep the worker busy until it is killed at the timeout.

While it serves, the worker beats (WEB_PROCESS_SILENT_S): a worker killed outright leaves
its consoles counted as open, and the `flask worker`s take them off once it falls silent.
"""


def post_worker_init(worker):
    """Beat while serving, and close this worker's Socket.IO connections once it stops
    (see runtime.py)."""
    from contact_center.runtime import beat_while_serving, close_realtime_when_stopping

    beat_while_serving(worker.wsgi, lambda: worker.alive)
    close_realtime_when_stopping(worker.wsgi, lambda: worker.alive)
