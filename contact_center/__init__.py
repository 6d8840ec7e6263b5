"""The contact-centre service desk: create_app() builds the Flask application."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import Flask

from contact_center import config as settings

ROOT = Path(__file__).resolve().parent.parent
# A pooled connection idle at least this long is pinged before use (see _ping_idle).
POOL_PING_IDLE_S = 1.0


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the app: defaults, then the environment, then `config` overrides. Nothing slow."""
    app = Flask(
        __name__,
        instance_path=str(ROOT / "instance"),
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    values = settings.default_config(app.instance_path)
    values.update(settings.from_environment())
    values.update(config or {})
    app.config.update(settings.finalise(values))
    app.config.update(
        API_TITLE="Contact centre service desk",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api/v1",
        OPENAPI_JSON_PATH="openapi.json",
        SQLALCHEMY_ENGINE_OPTIONS=_engine_options(app.config),
        MAX_CONTENT_LENGTH=app.config.get("MAX_CONTENT_LENGTH", 10 * 1024 * 1024),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
    )
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite:///"):
        os.makedirs(app.instance_path, exist_ok=True)

    _init_extensions(app)
    _register_blueprints(app)
    _configure_logging(app)
    from contact_center.worker import register_embedded_worker

    register_embedded_worker(app)
    from contact_center.simulate.cli import register_demo_simulator

    register_demo_simulator(app)
    hops = int(app.config["PROXY_FIX_HOPS"])
    if hops:
        # Outermost, so Socket.IO handlers see the client's address too (audit, rate limits).
        # Twilio's signatures do not depend on it: they are checked against PUBLIC_BASE_URL.
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)
    return app


def _engine_options(config: Any) -> dict[str, Any]:
    pool = {
        "pool_size": config["DB_POOL_SIZE"],
        "max_overflow": config["DB_MAX_OVERFLOW"],
        "pool_timeout": config["DB_POOL_TIMEOUT_S"],
    }
    if config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        # The web server, socket handlers and worker threads share one SQLite file.
        return {
            **pool,
            "connect_args": {"check_same_thread": False, "timeout": 30},
            "hide_parameters": True,  # error logs must not carry customers' data
        }
    # Gevent workers serve many requests at once: keep connections rather than reopen them.
    # LIFO reuses the hottest connections, so the rest stay idle and get pinged (not every
    # checkout: see _ping_idle); recycling bounds a connection's age below proxy and
    # server limits.
    return {
        **pool,
        "pool_use_lifo": True,
        "pool_recycle": 1800,
        "hide_parameters": True,  # error logs must not carry customers' data
    }


def _ping_idle(engine: sa.Engine, idle_s: float) -> None:
    """Ping a pooled connection before use only when it sat idle for `idle_s` or more.

    SQLAlchemy's pool_pre_ping costs a round trip on every checkout, as much as a query
    of the webhook it serves. A connection used moments ago is alive but for a failure in
    between; that failure invalidates the whole pool when the query meets it, so only the
    requests already in flight are lost, as they would be with a ping. After a pause (a
    database restart, a proxy dropping idle connections) the ping finds a dead connection
    and the pool replaces it before any request sees it.
    """
    dialect = engine.dialect

    @sa.event.listens_for(engine, "checkin")
    def checked_in(dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @sa.event.listens_for(engine, "checkout")
    def checked_out(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        idle_since = record.info.pop("idle_since", None)
        if idle_since is None or time.monotonic() - idle_since < idle_s:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as error:
            if dialect.is_disconnect(error, dbapi_connection, None):
                # Every other pooled connection is as old: the pool replaces them all.
                raise sa.exc.InvalidatePoolError(str(error)) from error
            raise


def _init_extensions(app: Flask) -> None:
    from socketio import Manager, RedisManager

    from contact_center.errors import register_error_handlers
    from contact_center.extensions import api, csrf, db, limiter, login_manager, migrate, socketio
    from contact_center.realtime import agent as agent_namespace
    from contact_center.realtime import supervisor as supervisor_namespace
    from contact_center.redis_client import SENTINEL_SCHEME, init_redis

    db.init_app(app)
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        with app.app_context():
            _ping_idle(db.engine, POOL_PING_IDLE_S)  # creating the engine does not connect
    migrate.init_app(app, db, directory=str(ROOT / "migrations"))
    login_manager.init_app(app)
    login_manager.login_view = "web.login"
    csrf.init_app(app)
    limiter.init_app(app)
    init_redis(app)
    # Namespaces are attached before init_app so every app's new server gets them.
    agent_namespace.register(socketio)
    supervisor_namespace.register(socketio)
    queue_url = app.config.get("SOCKETIO_MESSAGE_QUEUE")
    channel = app.config.get("SOCKETIO_CHANNEL") or "flask-socketio"
    # The client manager is chosen here for every app: Flask-SocketIO would keep the one an
    # earlier init_app made (tests build many apps), and would take a Sentinel URL for
    # Kombu's, while python-socketio's RedisManager reads Sentinel URLs itself.
    managers = {}
    if not queue_url:
        managers["client_manager"] = Manager()
    elif urlsplit(queue_url).scheme in {"redis", "rediss", SENTINEL_SCHEME}:
        managers["client_manager"] = RedisManager(queue_url, channel=channel)
    socketio.init_app(
        app,
        message_queue=queue_url,
        channel=channel,
        **managers,
        async_mode=app.config.get("SOCKETIO_ASYNC_MODE"),
        # None: only the page's own origin may open a socket (cross-site pages cannot).
        cors_allowed_origins=None,
    )
    api.init_app(app)
    api.spec.components.security_scheme(
        "bearer", {"type": "http", "scheme": "bearer", "description": "POST /api/v1/auth/tokens"}
    )
    # Registered after the API so the contract's error format wins over flask-smorest's.
    register_error_handlers(app)

    import contact_center.models  # noqa: F401  (every model known to SQLAlchemy and Alembic)
    from contact_center.reads import track_writes
    from contact_center.sla.services import track_changes

    track_changes()
    track_writes()


def _register_blueprints(app: Flask) -> None:
    from contact_center.agents.api import agents_blp as agents_api
    from contact_center.agents.api import blp as auth_api
    from contact_center.agents.api import users_blp as users_api
    from contact_center.board.api import blp as board_api
    from contact_center.board.api import reports_blp as reports_api
    from contact_center.board.views import bp as board_pages
    from contact_center.cli import register_cli
    from contact_center.complaints.api import blp as complaints_api
    from contact_center.customers.api import blp as customers_api
    from contact_center.extensions import api, csrf
    from contact_center.health import bp as health_bp
    from contact_center.ivr.api import blp as ivr_api
    from contact_center.ivr.api import calls_blp as calls_api
    from contact_center.portal.api import blp as surveys_api
    from contact_center.portal.views import bp as portal_bp
    from contact_center.routing.api import blp as routing_api
    from contact_center.sla.api import blp as calendars_api
    from contact_center.sla.api import policies_blp as sla_api
    from contact_center.softphone.api import blp as softphone_api
    from contact_center.tickets.api import blp as tickets_api
    from contact_center.tickets.api import canned_blp as canned_api
    from contact_center.web.security import register_security_headers
    from contact_center.web.views import bp as web_bp
    from webhooks.email import bp as email_webhooks
    from webhooks.twilio import bp as twilio_webhooks

    for blueprint in (
        auth_api,
        agents_api,
        users_api,
        customers_api,
        routing_api,
        ivr_api,
        calls_api,
        tickets_api,
        canned_api,
        complaints_api,
        surveys_api,
        calendars_api,
        sla_api,
        softphone_api,
        board_api,
        reports_api,
    ):
        api.register_blueprint(blueprint)
        # A bearer token, or the session plus X-CSRFToken (agents/auth.py), authorises writes.
        csrf.exempt(blueprint)
    for webhooks in (twilio_webhooks, email_webhooks):
        csrf.exempt(webhooks)  # signed or authenticated by the provider instead
        app.register_blueprint(webhooks)
    app.register_blueprint(web_bp)
    app.register_blueprint(health_bp)
    app.register_blueprint(portal_bp)
    app.register_blueprint(board_pages)
    register_cli(app)
    register_security_headers(app)


def _configure_logging(app: Flask) -> None:
    from contact_center.logs import configure, register_request_ids

    register_request_ids(app)
    if not app.debug and not app.testing:
        configure(app.config["LOG_FORMAT"])
        # The Twilio client logs every request's headers at INFO: a line per REST call.
        logging.getLogger("twilio.http_client").setLevel(logging.WARNING)
