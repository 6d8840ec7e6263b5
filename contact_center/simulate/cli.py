"""`flask simulate` and the demo's simulator: set up simulated agents, then run traffic.

Setting up is the one step that uses the database directly (as `flask users create` does):
simulated agents `sim-agent-NNN` and a supervisor `sim-supervisor`, each with a new API
token. Everything after that goes over the server's real protocols (see runner.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import signal
import threading
from typing import Any
from urllib.parse import urlsplit

import click
import sqlalchemy as sa
from flask import Flask, current_app

from contact_center.simulate.model import Behaviour, parse_profile
from contact_center.simulate.runner import Login, SimConfig, Simulation, report
from contact_center.simulate.twilio_stub import TwilioStubServer

log = logging.getLogger(__name__)

SUPERVISOR = "sim-supervisor"
# The demo: a call every ten seconds or so and an email now and then, for six agents.
DEMO_PROFILE = "constant:0.1"
DEMO_AGENTS = 6
DEMO_BEHAVIOUR = Behaviour(
    patience_mean_s=120.0,
    think_mean_s=3.0,
    handle_mean_s=40.0,
    wrapup_mean_s=5.0,
    email_share=0.2,
)


def agent_skills(index: int) -> dict[str, int]:
    """Every agent speaks English; every second one knows cards, every fifth Mandarin."""
    skills = {"lang:en": 4}
    if index % 2 == 0:
        skills["product:cards"] = 3
    if index % 5 == 0:
        skills["lang:zh"] = 4
    return skills


def provision(count: int) -> tuple[list[Login], Login]:
    """`count` simulated agents and the simulated supervisor (reused if they exist), each
    with a new API token."""
    from werkzeug.security import generate_password_hash

    from contact_center.agents.models import AgentSkill, User
    from contact_center.agents.services import issue_token
    from contact_center.extensions import db

    names = [f"sim-agent-{index:03d}" for index in range(1, count + 1)]
    existing = {
        user.username: user
        for user in db.session.scalars(
            sa.select(User).where(User.username.in_([*names, SUPERVISOR]))
        )
    }
    # Nobody signs in with it: one hash for all (each costs a fraction of a second).
    password_hash = generate_password_hash(secrets.token_urlsafe(24))
    for index, name in enumerate(names, start=1):
        if name not in existing:
            existing[name] = User(
                username=name,
                display_name=f"Simulated agent {index}",
                password_hash=password_hash,
                role="agent",
                team="Simulated",
                capacity={"voice": 1, "email": 2},
                skills=[AgentSkill(skill=s, level=v) for s, v in agent_skills(index).items()],
            )
            db.session.add(existing[name])
    if SUPERVISOR not in existing:
        existing[SUPERVISOR] = User(
            username=SUPERVISOR,
            display_name="Simulated supervisor",
            password_hash=password_hash,
            role="supervisor",
        )
        db.session.add(existing[SUPERVISOR])
    db.session.commit()
    db.session().expire_on_commit = False  # each token's commit would reload every user
    try:
        agents = [Login(name, issue_token(existing[name])[0]) for name in names]
        supervisor = Login(SUPERVISOR, issue_token(existing[SUPERVISOR])[0])
    finally:
        db.session().expire_on_commit = True
    return agents, supervisor


def play_twilio(stub: TwilioStubServer, server_url: str, *more_urls: str) -> TwilioStubServer:
    """Make the stub behave as Twilio does for live calls, calling back `server_url` (and
    `more_urls` in turn: the other web processes of a deployment)."""
    stub.state.auto_advance = True
    stub.state.follow_redirects = True
    stub.state.webhook_base_url = server_url
    stub.state.more_webhook_urls = more_urls
    stub.state.max_recorded = 1000
    return stub


def start_stub(
    config: dict[str, Any], port: int, server_url: str, *more_urls: str
) -> TwilioStubServer:
    """The Twilio stub on `port` (0: any free one), playing Twilio for the simulated calls."""
    stub = TwilioStubServer(config["TWILIO_ACCOUNT_SID"], config["TWILIO_AUTH_TOKEN"], port=port)
    return play_twilio(stub, server_url, *more_urls).start()


async def _run_until_interrupted(simulation: Simulation) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, simulation.stopping.set)  # Ctrl-C: drain, then report
    return await simulation.run()


@click.command("simulate")
@click.option(
    "--url",
    "urls",
    multiple=True,
    help="A web process to drive (default: PUBLIC_BASE_URL); repeat for several.",
)
@click.option(
    "--profile",
    default="constant:1",
    show_default=True,
    help="constant:RATE, burst:BASE,PEAK,START_S,LENGTH_S or day:PEAK[,DAY_S] (calls/s).",
)
@click.option(
    "--duration", type=float, default=60.0, show_default=True, help="Seconds of arrivals."
)
@click.option("--drain", type=float, default=120.0, show_default=True, help="Seconds after.")
@click.option("--agents", type=click.IntRange(1, 5000), default=20, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--patience", type=float, default=60.0, show_default=True, help="Mean, seconds.")
@click.option("--handle", type=float, default=30.0, show_default=True, help="Mean talk, s.")
@click.option("--think", type=float, default=1.5, show_default=True, help="Mean, seconds.")
@click.option("--wrapup", type=float, default=3.0, show_default=True, help="Mean, seconds.")
@click.option("--reject-share", type=click.FloatRange(0, 1), default=0.02, show_default=True)
@click.option("--miss-share", type=click.FloatRange(0, 1), default=0.02, show_default=True)
@click.option("--email-share", type=click.FloatRange(0, 10), default=0.0, show_default=True)
@click.option("--stub-port", type=int, default=None, help="Default: TWILIO_API_BASE_URL's port.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON line last.")
def simulate_command(urls, profile, duration, drain, agents, seed, stub_port, as_json, **means):
    """Drive a running server with simulated calls, emails and agents; compare with its board."""
    config = current_app.config
    if not (config["TWILIO_ACCOUNT_SID"] and config["TWILIO_AUTH_TOKEN"]):
        raise click.ClickException(
            "Set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN as the server has."
        )
    if stub_port is None:
        base = config.get("TWILIO_API_BASE_URL") or ""
        parts = urlsplit(base)
        if parts.hostname not in ("127.0.0.1", "localhost") or not parts.port:
            raise click.ClickException(
                "The server must send its Twilio REST calls to the simulator's stub: run it "
                "with TWILIO_API_BASE_URL=http://127.0.0.1:<port> (or pass --stub-port)."
            )
        stub_port = parts.port
    if means["email_share"] and not config.get("EMAIL_INBOUND_SECRET"):
        raise click.ClickException("Emails need EMAIL_INBOUND_SECRET, as the server has it.")
    try:
        arrival_profile = parse_profile(profile, duration)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--profile") from None
    servers = [u.rstrip("/") for u in urls] or [config["PUBLIC_BASE_URL"].rstrip("/")]
    server = servers[0]
    behaviour = Behaviour(
        patience_mean_s=means["patience"],
        think_mean_s=means["think"],
        handle_mean_s=means["handle"],
        wrapup_mean_s=means["wrapup"],
        reject_share=means["reject_share"],
        miss_share=means["miss_share"],
        email_share=means["email_share"],
    )
    logins, supervisor = provision(agents)
    stub = start_stub(config, stub_port, server, *servers[1:])
    sim_config = _sim_config(config, server, arrival_profile, behaviour, duration, drain, seed)
    sim_config.other_urls = tuple(servers[1:])
    simulation = Simulation(
        sim_config,
        logins,
        supervisor,
        stub,
        say=lambda line: click.echo(line),
    )
    try:
        result = asyncio.run(_run_until_interrupted(simulation))
    finally:
        stub.stop()
    click.echo(report(result))
    if as_json:
        click.echo(json.dumps(result))


def _sim_config(config, server, profile, behaviour, duration, drain, seed) -> SimConfig:
    return SimConfig(
        base_url=server,
        public_base_url=config["PUBLIC_BASE_URL"].rstrip("/"),
        account_sid=config["TWILIO_ACCOUNT_SID"],
        auth_token=config["TWILIO_AUTH_TOKEN"],
        email_secret=config.get("EMAIL_INBOUND_SECRET"),
        support_address=config.get("SUPPORT_ADDRESS") or "support@example.com",
        profile=profile,
        behaviour=behaviour,
        duration_s=duration,
        drain_s=drain,
        seed=seed,
    )


# ---------------------------------------------------------------------------- the demo


def register_demo_simulator(app: Flask) -> None:
    """With DEMO_SIMULATOR on an embedded server, start gentle traffic at the first request
    (then the server's own address is known)."""
    if not app.config.get("DEMO_SIMULATOR") or app.testing:
        return
    if not app.config.get("DEMO_TWILIO"):
        log.warning(
            "DEMO_SIMULATOR is on but Twilio credentials are set: the demo simulator runs "
            "only with the demo's own (leave TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN unset)"
        )
        return
    lock = threading.Lock()

    @app.before_request
    def _start_simulator() -> None:
        if app.extensions.get("demo_simulator") is None:
            from flask import request

            with lock:
                if app.extensions.get("demo_simulator") is None:
                    app.extensions["demo_simulator"] = start_demo(app, request.host_url)


class DemoSimulator:
    """The demo's simulator in a daemon thread of the server, until the server stops."""

    def __init__(
        self,
        app: Flask,
        server_url: str,
        profile: str = DEMO_PROFILE,
        behaviour: Behaviour = DEMO_BEHAVIOUR,
    ) -> None:
        self.app = app
        self.server_url = server_url.rstrip("/")
        self.profile = profile
        self.behaviour = behaviour
        self.simulation: Simulation | None = None
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, name="cc-demo-simulator", daemon=True)

    def start(self) -> DemoSimulator:
        self.thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """End the arrivals; callers still waiting hang up; the agents sign out."""
        self.ready.wait(timeout)
        if self.simulation is not None:
            self.simulation.stop()
        self.thread.join(timeout)

    def _run(self) -> None:
        app = self.app
        try:
            with app.app_context():
                logins, supervisor = provision(DEMO_AGENTS)
            stub = start_stub(app.config, 0, self.server_url)
            app.config["TWILIO_API_BASE_URL"] = stub.base_url
            app.extensions.pop("twilio_client", None)  # made before the stub had a port
            config = _sim_config(
                app.config,
                self.server_url,
                parse_profile(self.profile, None),
                self.behaviour,
                None,
                0.0,
                secrets.randbelow(10**6),
            )
            config.report_every_s = 60.0
            self.simulation = Simulation(config, logins, supervisor, stub, say=log.info)
            self.ready.set()
            log.info("demo simulator: %s agents, %s", DEMO_AGENTS, self.profile)
            try:
                asyncio.run(self.simulation.run())
            finally:
                stub.stop()
        except Exception:
            log.exception("the demo simulator stopped")
        finally:
            self.ready.set()


def start_demo(app: Flask, server_url: str) -> DemoSimulator:
    """Start the demo's simulator against the server at `server_url`."""
    return DemoSimulator(app, server_url).start()
