"""The configuration pages in a real browser: an admin creates an agent, who then works."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect

from contact_center.agents.models import User
from contact_center.extensions import db
from contact_center.routing import services as routing
from contact_center.routing.models import Queue
from tests.e2e.conftest import PageErrors, new_page, save_screenshot, sign_in

pytestmark = pytest.mark.e2e

NEW_PASSWORD = "tulip-harbour-42"  # noqa: S105


def test_admin_creates_an_agent_who_then_signs_in(
    app, browser, create_user, live_server, page: Page, page_errors: PageErrors
):
    routing.create_queue(name="General", channels=["voice", "email"], is_default=True)
    db.session.commit()
    create_user("ada", "admin", display_name="Ada Admin")
    sign_in(page, "ada")
    expect(page).to_have_url(re.compile(r"/agent$"))
    page.click("#nav-users")
    expect(page).to_have_url(re.compile(r"/admin/users$"))
    expect(page.locator("#users-rows tr[data-username=ada]")).to_be_visible()

    page.fill("#create-form-username", "zoe")
    page.fill("#create-form-display_name", "Zoe Zhang")
    page.fill("#create-form-password", "short")
    page.fill("#create-form-team", "Cards")
    page.fill("#create-form-skills", "lang:zh=4, product:cards=2")
    page.click("#create-save")
    error = page.locator("#create-form-password-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("10 characters")
    expect(page.locator("#create-form-password")).to_have_attribute("aria-invalid", "true")
    save_screenshot(page, "admin-users-password-error")
    assert db.session.scalar(sa.select(User.id).where(User.username == "zoe")) is None

    page.fill("#create-form-password", NEW_PASSWORD)
    page.click("#create-save")
    row = page.locator("#users-rows tr[data-username=zoe]")
    expect(row).to_contain_text("Zoe Zhang")
    expect(row).to_contain_text("lang:zh=4, product:cards=2")
    expect(page.locator("#page-status")).to_contain_text("Created zoe")
    expect(error).to_be_hidden()
    save_screenshot(page, "admin-users-created")

    page.click("#nav-queues")
    general = page.locator("#queues-rows tr[data-queue=General]")
    expect(general).to_contain_text("80 % in 20 s")
    # Restrict the queue to zoe's team: she still sees it, an agent of another team would not.
    general.get_by_role("button", name="Edit General").click()
    page.fill("#queue-form-teams", "Cards")
    page.check("#queue-form-restricted")
    save_screenshot(page, "admin-queues-restricting")
    page.click("#queue-save")
    expect(general).to_contain_text("restricted")
    db.session.expire_all()
    queue = db.session.scalar(sa.select(Queue).where(Queue.name == "General"))
    assert (queue.teams, queue.restricted) == (["Cards"], True)
    # Chromium logs the refused request itself; that one 422 is the only message allowed.
    assert [m for m in page_errors.messages if "status of 422" not in m] == []
    assert len(page_errors.messages) == 1
    page_errors.messages.clear()

    agent_page = new_page(browser, live_server.url, page_errors, {"width": 1366, "height": 768})
    try:
        sign_in(agent_page, "zoe", NEW_PASSWORD)
        expect(agent_page).to_have_url(re.compile(r"/agent$"))
        expect(agent_page.locator("#connection-state")).to_have_text("Connected")
        expect(agent_page.locator("#user-name")).to_have_text("Zoe Zhang")
        expect(agent_page.locator("#nav-users")).to_have_count(0)
        expect(agent_page.locator("#filter-queue option", has_text="General")).to_have_count(1)
        save_screenshot(agent_page, "admin-created-agent-console")
    finally:
        agent_page.context.close()
    assert page_errors.messages == []
