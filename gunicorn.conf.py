"""gunicorn settings for the web processes (the Procfile runs `gunicorn -c gunicorn.conf.py`).

Graceful shutdown: on SIGTERM the master closes the listening socket (new connections are
refused, so the balancer sends them elsewhere) and tells the worker to stop; the worker
finishes the requests in flight, for at most --graceful-timeout seconds, then exits. The
hook below closes the worker's Socket.IO connections at that moment, since an open agent
console would otherwise keep the worker busy until it is killed at the timeout.
"""


def post_worker_init(worker):
    """Close this worker's Socket.IO connections once it stops serving (see runtime.py)."""
    from contact_center.runtime import close_realtime_when_stopping

    close_realtime_when_stopping(worker.wsgi, lambda: worker.alive)
