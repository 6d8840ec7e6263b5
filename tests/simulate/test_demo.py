"""The demo's simulator: its own Twilio, traffic inside the embedded server, a clean stop."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from contact_center import config as settings
from contact_center.extensions import db
from contact_center.routing.models import Interaction
from contact_center.simulate.cli import DemoSimulator
from contact_center.simulate.model import Behaviour


def embedded(**values):
    config = settings.default_config("/tmp/cc-instance")  # noqa: S108  (never written)
    config.update(values)
    return settings.finalise(config)


def test_the_demo_simulator_gets_twilio_credentials_of_its_own():
    config = embedded(DEMO_SIMULATOR=True)
    assert config["DEMO_TWILIO"] is True
    assert config["TWILIO_ACCOUNT_SID"].startswith("AC") and len(config["TWILIO_ACCOUNT_SID"]) == 34
    assert config["TWILIO_AUTH_TOKEN"] and config["EMAIL_INBOUND_SECRET"]
    assert embedded(DEMO_SIMULATOR=True)["TWILIO_AUTH_TOKEN"] != config["TWILIO_AUTH_TOKEN"]


@pytest.mark.parametrize(
    "values",
    [
        {"DEMO_SIMULATOR": False},
        # Real credentials: the demo must not point real calls at its stub.
        {"DEMO_SIMULATOR": True, "TWILIO_ACCOUNT_SID": "AC" + "1" * 32, "TWILIO_AUTH_TOKEN": "x"},
        # Not embedded: a real deployment runs `flask simulate` on purpose, not a demo.
        {"DEMO_SIMULATOR": True, "REDIS_URL": "redis://127.0.0.1:6379/3", "SECRET_KEY": "k"},
    ],
)
def test_the_demo_simulator_stays_off_unless_it_is_a_demo(values):
    config = embedded(**values)
    assert config["DEMO_TWILIO"] is False
    assert config["TWILIO_ACCOUNT_SID"] == values.get("TWILIO_ACCOUNT_SID")


@pytest.mark.timeout(120)
def test_the_demo_simulator_brings_calls_to_the_agents_and_stops(app, live_server):
    quick = Behaviour(patience_mean_s=30, think_mean_s=0.2, handle_mean_s=0.5, wrapup_mean_s=0.2)
    demo = DemoSimulator(app, live_server.url, profile="constant:2", behaviour=quick).start()
    try:
        deadline = time.monotonic() + 60
        answered = 0
        while time.monotonic() < deadline and answered < 3:
            time.sleep(0.5)
            db.session.expire_all()
            answered = db.session.scalar(
                sa.select(sa.func.count()).where(Interaction.answered_at.is_not(None))
            )
        assert answered >= 3, "no simulated call reached a simulated agent"
        assert app.config["TWILIO_API_BASE_URL"].startswith("http://127.0.0.1:")
    finally:
        demo.stop(timeout=60)
    assert not demo.thread.is_alive()
    db.session.expire_all()
    statuses = set(db.session.scalars(sa.select(Interaction.status).distinct()))
    assert statuses <= {"ended", "abandoned", "completed", "wrapup"}, statuses
