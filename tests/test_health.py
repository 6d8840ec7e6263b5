"""`/healthz` and `/readyz`: up, and able to work (database, Redis, a live worker)."""

from __future__ import annotations

import threading
import time

from contact_center import create_app
from contact_center.health import HEARTBEAT_STALE_S, HEARTBEATS_KEY, beat
from contact_center.redis_client import get_redis
from contact_center.worker import run_forever


def test_healthz_answers_without_signing_in(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}


def test_readyz_wants_a_worker_that_beat_recently(client):
    waiting = client.get("/readyz")
    assert waiting.status_code == 503
    assert waiting.get_json()["checks"] == {
        "database": "ok",
        "redis": "ok",
        "worker": "no recent heartbeat",
    }
    beat("host:1:old", now=time.time() - HEARTBEAT_STALE_S - 5)
    assert client.get("/readyz").status_code == 503  # a stale beat is no beat
    beat("host:2:cc-timers")
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.get_json()["status"] == "ok"


def test_the_worker_loop_beats(app, client):
    stop = threading.Event()
    thread = threading.Thread(target=run_forever, args=(app, stop))
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not get_redis().zcard(HEARTBEATS_KEY):
            time.sleep(0.1)
        assert client.get("/readyz").status_code == 200
        (name,) = get_redis().zrange(HEARTBEATS_KEY, 0, -1)
    finally:
        stop.set()
        thread.join(timeout=30)
    assert name.endswith(f":{thread.name}")
    # A loop that stopped takes its beat back: readiness does not count it for 30 s more.
    assert not thread.is_alive() and not get_redis().zcard(HEARTBEATS_KEY)
    assert client.get("/readyz").get_json()["checks"]["worker"] == "no recent heartbeat"


def test_readyz_names_what_is_down_and_never_errors(tmp_path):
    broken = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "x",
            "DATABASE_URL": f"sqlite:///{tmp_path}/missing/dir/cc.db",
            "REDIS_URL": "redis://127.0.0.1:1/0",  # nothing listens on port 1
        }
    )
    with broken.app_context():
        response = broken.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"] == {
        "database": "unreachable",
        "redis": "unreachable",
        "worker": "unknown",
    }
    assert broken.test_client().get("/healthz").status_code == 200
