"""Flask CLI: users, demo data, routing rebuild."""

from __future__ import annotations

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from contact_center.agents.services import create_user, parse_skills
from contact_center.errors import APIError

users_cli = AppGroup("users", help="Manage users.")
demo_cli = AppGroup("demo", help="Demo data.")
routing_cli = AppGroup("routing", help="Routing state in Redis.")
ivr_cli = AppGroup("ivr", help="IVR flows.")


@ivr_cli.command("load")
@click.argument("path", type=click.Path(exists=True, dir_okay=False), required=False)
@click.option("--activate/--no-activate", default=True, help="New calls enter this flow.")
def ivr_load_command(path, activate):
    """Load an IVR flow from a JSON file (the shipped default flow without PATH)."""
    import json

    from contact_center.ivr import flows

    try:
        if path is None:
            record = flows.load_default_flow(activate=activate)
        else:
            with open(path, encoding="utf-8") as handle:
                record = flows.save_flow(json.load(handle), activate=activate)
    except (APIError, ValueError) as exc:
        detail = f" {exc.fields}" if isinstance(exc, APIError) and exc.fields else ""
        raise click.ClickException(f"{exc}{detail}") from None
    state = "active" if record.is_active else "inactive"
    click.echo(f"Flow {record.name} version {record.version} loaded ({state}).")


# Below the usual 30 s a platform waits between SIGTERM and SIGKILL.
TIMERS_STOP_S = 20


@click.command("worker")
def worker_command():
    """Run a background worker: RQ jobs, plus the timers (offer timeouts, overflow, wrap-up)."""
    import threading

    from contact_center.jobs import AppWorker
    from contact_center.worker import run_forever

    if not current_app.config.get("REDIS_URL"):
        raise click.ClickException(
            "Embedded mode runs the worker inside the web server; set REDIS_URL to run "
            "separate worker processes."
        )
    app = current_app._get_current_object()
    stop = threading.Event()
    timers = threading.Thread(target=run_forever, args=(app, stop), name="cc-timers", daemon=True)
    timers.start()
    click.echo("Worker running: RQ jobs and routing timers. Ctrl-C to stop.")
    try:
        # RQ's signal handling: the first SIGTERM or SIGINT lets the job in hand finish (a
        # warm shutdown), a second one stops at once (the job is then left as abandoned).
        AppWorker(app).work(logging_level="INFO")
    finally:
        # The poller ends its round (a timer claimed is fired; a webhook being replayed is
        # finished), within the time a platform allows between SIGTERM and SIGKILL.
        stop.set()
        timers.join(timeout=TIMERS_STOP_S)
        if timers.is_alive():
            click.echo("Timer poller still busy; leaving it (claims are atomic).", err=True)


@users_cli.command("create")
@click.option("--username", required=True)
@click.option("--password", required=True, help="At least 8 characters.")
@click.option("--role", type=click.Choice(["agent", "supervisor", "admin"]), default="agent")
@click.option("--skills", default="", help="e.g. lang:en=5,product:cards=3")
@click.option("--name", "display_name", default=None, help="Display name.")
@click.option("--team", default=None)
def create_user_command(username, password, role, skills, display_name, team):
    """Create a user."""
    try:
        user = create_user(
            username,
            password,
            role,
            display_name=display_name,
            team=team,
            skills=parse_skills(skills),
        )
    except APIError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"Created {user.role} {user.username} (id {user.id}).")


@demo_cli.command("seed")
def seed_command():
    """Load demo queues, agents and customers with history (idempotent)."""
    from contact_center.demo import seed

    logins = seed()
    click.echo("Demo data ready. Logins:")
    for username, password, role in logins:
        click.echo(f"  {role:<10} {username} / {password}")


@routing_cli.command("rebuild")
def rebuild_command():
    """Rebuild Redis routing state (queues, idle agents) from the database."""
    if not current_app.config.get("REDIS_URL"):
        click.echo(
            "Embedded mode: Redis lives inside the server process and is rebuilt from the "
            "database when the server starts. Nothing to do here."
        )
        return
    from contact_center.routing.services import rebuild_state

    counts = rebuild_state(force=True)
    click.echo(
        f"Rebuilt: {counts['waiting']} waiting interactions, {counts['agents']} agents, "
        f"{counts['revoked_offers']} offers returned to their queues."
    )


customers_cli = AppGroup("customers", help="Customer value.")


@customers_cli.command("tiers")
@click.option(
    "--basis", type=click.Choice(["lifetime_value", "interactions"]), default="lifetime_value"
)
def tiers_command(basis: str):
    """Recompute ABC tiers now: top 5 % of value A, next 15 % B, the rest C."""
    from contact_center.customers.value import compute_tiers

    counts = compute_tiers(basis)
    click.echo(f"Tiers by {basis}: A {counts['A']}, B {counts['B']}, C {counts['C']}.")


retention_cli = AppGroup("retention", help="Retention of personal data.")


@retention_cli.command("apply")
def retention_apply_command():
    """Apply the RETENTION_*_DAYS periods now (workers also do it hourly)."""
    from contact_center.retention import apply

    counts = apply()
    if counts is None:
        click.echo("Retention is off: no RETENTION_*_DAYS period is set. Nothing removed.")
        return
    click.echo(
        f"Retention applied: {counts['recordings']} recording references removed (the "
        f"recordings are deleted at Twilio by the workers), {counts['messages']} messages "
        f"redacted, {counts['closed_tickets']} closed tickets anonymised, "
        f"{counts['webhook_receipts']} webhook receipts deleted."
    )


@retention_cli.command("recordings")
def retention_recordings_command():
    """Recordings to delete at Twilio (erasure, retention): pending, deleted, oldest pending."""
    from contact_center.recording_deletions import summary

    state = summary()
    click.echo(f"Recordings deleted at Twilio: {state['deleted']}; pending: {state['pending']}.")
    if state["oldest_pending_sid"]:
        click.echo(
            f"Oldest pending: {state['oldest_pending_sid']}, "
            f"{state['oldest_pending_attempts']} attempts, "
            f"last error: {state['oldest_pending_error'] or '-'}."
        )


def register_cli(app: Flask) -> None:
    """Add the command groups to `flask`."""
    from contact_center.simulate.cli import simulate_command

    for group in (
        users_cli,
        demo_cli,
        routing_cli,
        ivr_cli,
        customers_cli,
        retention_cli,
        worker_command,
        simulate_command,
    ):
        app.cli.add_command(group)
