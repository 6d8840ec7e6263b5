"""Browser fixtures: Debian's Chromium through Playwright on the live server.

`live_server` (tests/conftest.py, tests/live_server.py) serves the test app from a
background thread, so the browser, the signed webhooks and the test share one app.
Screenshots of the steps go to `test-results/e2e/` (or `$TEST_ARTIFACTS_DIR/e2e/`), for
people to look at; the tests never compare them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Page,
    Playwright,
    expect,
    sync_playwright,
)

from tests.conftest import ACCOUNT_SID, PASSWORD
from tests.live_server import LiveServer

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
ARTIFACTS = (
    Path(
        os.environ.get("TEST_ARTIFACTS_DIR") or Path(__file__).resolve().parents[2] / "test-results"
    )
    / "e2e"
)


def incoming_call(sid: str, from_number: str) -> dict[str, str]:
    """The form of Twilio's incoming-call webhook for a caller."""
    return {
        "CallSid": sid,
        "AccountSid": ACCOUNT_SID,
        "From": from_number,
        "To": "+441234567890",
        "CallStatus": "ringing",
    }


def save_screenshot(page: Page, name: str) -> Path:
    """Save the whole page as `<name>.png` among the test artefacts; returns the path."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / (re.sub(r"[^\w.-]+", "-", name).strip("-") + ".png")
    page.screenshot(path=path, full_page=True)
    return path


# Generous: a test waits for things to appear, it never asserts how fast they do.
WAIT_MS = 15_000
expect.set_options(timeout=WAIT_MS)  # every expect(...) waits this long, not Playwright's 5 s


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
    page = new_page(browser, live_server.url, page_errors, {"width": 1440, "height": 900})
    yield page
    page.context.close()


def new_page(browser: Browser, base_url: str, errors: PageErrors, viewport: dict) -> Page:
    """A page in a fresh browser context (no cookies); its JavaScript errors go to `errors`.
    The caller closes its context."""
    context = browser.new_context(base_url=base_url, viewport=viewport, locale="en-GB")
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.messages.append(f"console: {message.text}")

    page.on("pageerror", lambda error: errors.messages.append(f"pageerror: {error}"))
    page.on("console", on_console)
    return page


def sign_in(page: Page, username: str, password: str = PASSWORD) -> None:
    """Sign in through the login page."""
    page.goto("/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button[type=submit]")


def open_console(page: Page, username: str) -> None:
    """Sign in and wait until the agent console is connected and all its scripts have run
    (the socket can connect before the page's last scripts have)."""
    sign_in(page, username)
    expect(page).to_have_url(re.compile(r"/agent$"))
    expect(page.locator("#connection-state")).to_have_text("Connected")
    expect(page.locator("body")).to_have_attribute("data-workspace-ready", "true")


@pytest.fixture
def login(page: Page) -> Callable[[str, str], None]:
    """Factory: sign in through the login page."""
    return lambda username, password: sign_in(page, username, password)
