"""Process-level tuning for the web processes (wsgi.py, the production entry, and the gunicorn
hooks in gunicorn.conf.py).

Python's full (generation 2) garbage collection walks every live object. A gunicorn gevent
worker holding ~500 agents' websockets has millions of them, and `bench/offer_latency.py`
measured those collections at 285-312 ms each: every offer in flight waits that long, which
was most of the p99. So the objects made while starting (modules, the app) are frozen out of
collection, and the thresholds are raised so the young generations absorb short-lived
garbage and a full collection is rare. Reference counting still frees almost everything at
once; only cycles wait longer.
"""

from __future__ import annotations

import gc
import logging
import os
import socket
from collections.abc import Callable

from flask import Flask

log = logging.getLogger(__name__)

DEFAULT_GC_THRESHOLDS = "50000,50,100"


def tune_gc(setting: str | None) -> tuple[int, ...] | None:
    """Apply GC_THRESHOLDS ("gen0,gen1,gen2"; empty or "python" keeps Python's own) and
    freeze what exists now. Returns the thresholds set, or None."""
    setting = DEFAULT_GC_THRESHOLDS if setting is None else setting.strip()
    if setting in ("", "python"):
        return None
    parts = tuple(int(part) for part in setting.split(",") if part.strip().isdigit())
    if len(parts) != 3 or len(setting.split(",")) != 3 or min(parts) < 1:
        raise ValueError(f"GC_THRESHOLDS must be three positive integers, not {setting!r}")
    gc.freeze()
    gc.set_threshold(*parts)
    return parts


def close_realtime_when_stopping(
    app: Flask, serving: Callable[[], bool], poll_s: float = 0.5
) -> None:
    """Once `serving()` turns false (gunicorn's worker got SIGTERM), close this process's
    Socket.IO connections so the worker drains within its graceful timeout.

    An open console would otherwise hold its connection, and the worker, until gunicorn
    kills it. They are closed at the Engine.IO level, which a browser takes as a lost
    transport: it reconnects (through the balancer, to a process still serving), and the
    agent's presence survives the reconnect grace (routing.agent_disconnected).
    """
    socketio = app.extensions["socketio"]

    def watch() -> None:
        while serving():
            socketio.sleep(poll_s)
        sockets = socketio.server.eio.sockets
        log.info("stopping: closing %d Socket.IO connection(s)", len(sockets))
        socketio.server.eio.disconnect()

    socketio.start_background_task(watch)


def beat_while_serving(app: Flask, serving: Callable[[], bool]) -> None:
    """Beat for this web process while it serves, so that, should it die with consoles
    open, the workers take its sockets off the agents' counts (routing.web_process_beat)."""
    from contact_center.routing import services as routing

    socketio = app.extensions["socketio"]
    name = f"{socket.gethostname()}:{os.getpid()}"
    every_s = app.config["WEB_PROCESS_SILENT_S"] / 3

    def beat() -> None:
        with app.app_context():
            routing.web_process_beat(name)

    beat()  # before any console connects here, so every socket is counted as this process's

    def keep_beating() -> None:
        while serving():
            socketio.sleep(every_s)
            try:
                beat()
            except Exception:  # Redis briefly away: the next beat is in time
                log.warning("web process heartbeat failed", exc_info=True)

    socketio.start_background_task(keep_beating)
