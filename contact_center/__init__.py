"""The contact-centre service desk: create_app() builds the Flask application."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from flask import Flask

from contact_center import config as settings

ROOT = Path(__file__).resolve().parent.parent


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
        SQLALCHEMY_ENGINE_OPTIONS=_engine_options(app.config["SQLALCHEMY_DATABASE_URI"]),
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
    return app


def _engine_options(url: str) -> dict[str, Any]:
    if url.startswith("sqlite"):
        # The web server, socket handlers and worker threads share one SQLite file.
        return {
            "connect_args": {"check_same_thread": False, "timeout": 30},
            "hide_parameters": True,  # error logs must not carry customers' data
        }
    # Gevent workers serve many requests at once: keep connections rather than reopen them.
    return {"pool_pre_ping": True, "pool_size": 20, "max_overflow": 20, "hide_parameters": True}


def _init_extensions(app: Flask) -> None:
    from contact_center.errors import register_error_handlers
    from contact_center.extensions import api, csrf, db, login_manager, migrate, socketio
    from contact_center.realtime import agent as agent_namespace
    from contact_center.redis_client import init_redis

    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"))
    login_manager.init_app(app)
    login_manager.login_view = "web.login"
    csrf.init_app(app)
    init_redis(app)
    # Namespaces are attached before init_app so every app's new server gets them.
    agent_namespace.register(socketio)
    socketio.init_app(
        app,
        message_queue=app.config.get("SOCKETIO_MESSAGE_QUEUE"),
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


def _register_blueprints(app: Flask) -> None:
    from contact_center.agents.api import blp as auth_api
    from contact_center.cli import register_cli
    from contact_center.complaints.api import blp as complaints_api
    from contact_center.customers.api import blp as customers_api
    from contact_center.extensions import api, csrf
    from contact_center.ivr.api import blp as ivr_api
    from contact_center.ivr.api import calls_blp as calls_api
    from contact_center.portal.api import blp as surveys_api
    from contact_center.portal.views import bp as portal_bp
    from contact_center.routing.api import blp as routing_api
    from contact_center.tickets.api import blp as tickets_api
    from contact_center.tickets.api import canned_blp as canned_api
    from contact_center.web.views import bp as web_bp
    from webhooks.email import bp as email_webhooks
    from webhooks.twilio import bp as twilio_webhooks

    for blueprint in (
        auth_api,
        customers_api,
        routing_api,
        ivr_api,
        calls_api,
        tickets_api,
        canned_api,
        complaints_api,
        surveys_api,
    ):
        api.register_blueprint(blueprint)
        csrf.exempt(blueprint)  # bearer tokens, not cookies, authorise API writes
    for webhooks in (twilio_webhooks, email_webhooks):
        csrf.exempt(webhooks)  # signed or authenticated by the provider instead
        app.register_blueprint(webhooks)
    app.register_blueprint(web_bp)
    app.register_blueprint(portal_bp)
    register_cli(app)


def _configure_logging(app: Flask) -> None:
    if not app.debug and not app.testing:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s"
        )
