"""The simulator against a live server: its ground truth must equal the board's figures."""

from __future__ import annotations

import asyncio
import threading

import pytest
import sqlalchemy as sa

from contact_center.extensions import db
from contact_center.routing.models import Interaction
from contact_center.simulate.cli import play_twilio, provision
from contact_center.simulate.model import Behaviour, constant
from contact_center.simulate.runner import SimConfig, Simulation, report
from contact_center.simulate.truth import EXACT
from contact_center.worker import run_forever
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, INBOUND_SECRET, PUBLIC_BASE_URL


@pytest.fixture
def app_config(app_config):
    return {**app_config, "OFFER_TIMEOUT_S": 3}  # missed offers ring out within the run


@pytest.fixture
def worker(app):
    """The timers (offer timeouts) and jobs, as the embedded server runs them."""
    stop = threading.Event()
    thread = threading.Thread(target=run_forever, args=(app, stop), kwargs={"with_jobs": True})
    thread.start()
    yield
    stop.set()
    thread.join(timeout=30)


def simulate(app, live_server, twilio_stub, **behaviour) -> dict:
    logins, supervisor = provision(3)
    play_twilio(twilio_stub, live_server.url)
    config = SimConfig(
        base_url=live_server.url,
        public_base_url=PUBLIC_BASE_URL,
        account_sid=ACCOUNT_SID,
        auth_token=AUTH_TOKEN,
        email_secret=INBOUND_SECRET,
        support_address=app.config["SUPPORT_ADDRESS"],
        profile=constant(1.5),
        behaviour=Behaviour(**behaviour),
        duration_s=12,
        drain_s=15,
        seed=11,
        wait_poll_s=2,
    )
    simulation = Simulation(config, logins, supervisor, twilio_stub, say=lambda _line: None)
    return asyncio.run(simulation.run())


@pytest.mark.timeout(180)
def test_a_run_with_calls_emails_and_agents_matches_the_board(
    app, live_server, twilio_stub, worker
):
    result = simulate(
        app,
        live_server,
        twilio_stub,
        patience_mean_s=3.0,
        think_mean_s=0.3,
        handle_mean_s=1.5,
        wrapup_mean_s=0.3,
        reject_share=0.1,
        miss_share=0.1,
        email_share=0.3,
    )
    print(report(result))
    truth, board = result["truth"], result["board"]
    assert result["errors"] == {}
    assert result["calls"] >= 8 and result["emails"] >= 1
    # Three agents for about four erlangs: some callers are answered, some give up.
    assert truth["answered"] > 0 and truth["abandoned"] > 0
    assert {name: board[name] for name in EXACT} == {name: truth[name] for name in EXACT}
    assert result["double_offers"] == 0
    assert result["board_vs_truth"]["max_error"] == 0
    assert abs(result["board_vs_truth"]["difference"]["asa_s"]) < 1.0
    # Offers declined or let ring out went to another agent.
    assert result["counts"].get("rejected", 0) + result["counts"].get("missed", 0) > 0
    # Nothing left waiting, nothing lost: every simulated call ended one way or the other.
    db.session.expire_all()
    statuses = db.session.scalars(
        sa.select(Interaction.status).where(Interaction.channel == "voice")
    ).all()
    assert len(statuses) == result["calls"]
    assert set(statuses) <= {"ended", "abandoned", "completed", "wrapup"}, statuses
    assert result["webhook_p99_ms"] is not None and result["offer_p99_ms"] is not None
