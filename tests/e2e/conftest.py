"""Browser fixtures: the test app on a live HTTP server, Debian's Chromium through Playwright.

The `app` fixture of tests/conftest.py builds the app (clean database and Redis, an app
context pushed in the test thread); `live_server` serves that same app object from a
background thread, so the browser, the signed webhooks and the test share one app.
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

import pytest
from flask import Flask
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Page,
    Playwright,
    expect,
    sync_playwright,
)
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from tests.conftest import PUBLIC_BASE_URL, sign

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Generous: a test waits for things to appear, it never asserts how fast they do.
WAIT_MS = 15_000
expect.set_options(timeout=WAIT_MS)  # every expect(...) waits this long, not Playwright's 5 s


class _QuietHandler(WSGIRequestHandler):
    """Werkzeug's handler without a log line per request (pytest captures failures anyway)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


@dataclass
class LiveServer:
    server: BaseWSGIServer
    thread: threading.Thread

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def post_form(
        self, path: str, params: dict[str, str], headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        """POST a form to the live server over real HTTP; (status, body)."""
        parts = urlsplit(self.url)
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        try:
            connection.request(
                "POST",
                path,
                body=urlencode(params),
                headers={"Content-Type": "application/x-www-form-urlencoded", **(headers or {})},
            )
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def twilio_post(self, path: str, params: dict[str, str]) -> tuple[int, bytes]:
        """A Twilio webhook, signed for the configured PUBLIC_BASE_URL (what Twilio would sign)."""
        signature = sign(PUBLIC_BASE_URL + path, params)
        return self.post_form(path, params, {"X-Twilio-Signature": signature})


@pytest.fixture
def live_server(app: Flask) -> Iterator[LiveServer]:
    """The test app served on a free 127.0.0.1 port by werkzeug, threaded (Socket.IO too)."""
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    yield LiveServer(server, thread)
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)
    # Let requests still in flight (a socket's disconnect handler, say) finish and hand their
    # database connections back before the app fixture disposes of the engine.
    for request_thread in threading.enumerate():
        if "process_request_thread" in request_thread.name:
            request_thread.join(timeout=10)


# Module scope, not session: while the sync API is started, its event loop counts as running
# in this thread, so later tests could not use asyncio.run(). It stops after each e2e module.
@pytest.fixture(scope="module")
def playwright_instance() -> Iterator[Playwright]:
    playwright = sync_playwright().start()
    yield playwright
    playwright.stop()


@pytest.fixture(scope="module")
def browser(playwright_instance: Playwright) -> Iterator[Browser]:
    """Debian's Chromium: never a downloaded browser."""
    browser = playwright_instance.chromium.launch(
        executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
    )
    yield browser
    browser.close()


@dataclass
class PageErrors:
    """JavaScript errors a page raised or logged: a console should produce none."""

    messages: list[str] = field(default_factory=list)


@pytest.fixture
def page_errors() -> PageErrors:
    return PageErrors()


@pytest.fixture
def page(browser: Browser, live_server: LiveServer, page_errors: PageErrors) -> Iterator[Page]:
    """A fresh browser context (no cookies) on the live server; closed before the server stops."""
    context = browser.new_context(
        base_url=live_server.url, viewport={"width": 1440, "height": 900}, locale="en-GB"
    )
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            page_errors.messages.append(f"console: {message.text}")

    page.on("pageerror", lambda error: page_errors.messages.append(f"pageerror: {error}"))
    page.on("console", on_console)
    yield page
    context.close()


@pytest.fixture
def login(page: Page) -> Callable[[str, str], None]:
    """Factory: sign in through the login page."""

    def sign_in(username: str, password: str) -> None:
        page.goto("/login")
        page.fill("#username", username)
        page.fill("#password", password)
        page.click("button[type=submit]")

    return sign_in
