"""A supervisor opens the reports page, sees the day's figures and downloads them as CSV."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

from playwright.sync_api import Page, expect

from contact_center.extensions import db
from contact_center.routing import services as routing
from contact_center.routing.models import Interaction
from tests.e2e.conftest import save_screenshot, sign_in


def _seed(create_user) -> None:
    """In Sales (20 s): answered in 10 s and in 40 s, one abandon after 30 s; 09:00 London."""
    queue = routing.create_queue(name="Sales", service_level_threshold_s=20)
    agent = create_user("alice", display_name="Alice Agent")
    start = datetime(2024, 7, 1, 8, 0, tzinfo=UTC)  # 09:00 in London (BST)
    for wait_s, talk_s in ((10, 100), (40, 200)):
        db.session.add(
            Interaction(
                channel="voice",
                queue_id=queue.id,
                agent_id=agent.id,
                status="ended",
                outcome="answered",
                enqueued_at=start,
                answered_at=start + timedelta(seconds=wait_s),
                ended_at=start + timedelta(seconds=wait_s + talk_s),
                duration_s=talk_s,
                satisfaction=5,
            )
        )
    db.session.add(
        Interaction(
            channel="voice",
            queue_id=queue.id,
            status="ended",
            outcome="abandoned",
            enqueued_at=start,
            ended_at=start + timedelta(seconds=30),
        )
    )
    db.session.commit()


def test_supervisor_reads_the_daily_report_and_downloads_it(
    app, live_server, page: Page, page_errors, create_user
):
    _seed(create_user)
    create_user("sam", role="supervisor", display_name="Sam Supervisor")
    sign_in(page, "sam")
    page.goto("/supervisor/reports")
    expect(page.locator("body")).to_have_attribute("data-reports-ready", "true")
    page.select_option("#report-kind", "daily")
    page.fill("#report-from", "2024-07-01")
    page.fill("#report-to", "2024-07-01")
    page.fill("#report-tz", "Europe/London")
    page.click("#report-show")
    expect(page.locator("body")).to_have_attribute("data-report-ready", "daily")

    total = page.locator("#report-table tr.report-total").last
    expect(total.locator("td[data-column=queue]")).to_have_text("All queues")
    expect(total.locator("td[data-column=offered]")).to_have_text("3")
    expect(total.locator("td[data-column=answered]")).to_have_text("2")
    # 1 answered within 20 s / (3 offered - 0 abandoned within 20 s)
    expect(total.locator("td[data-column=service_level]")).to_have_text("33.3 %")
    expect(total.locator("td[data-column=asa_s]")).to_have_text("25.0 s")  # (10 + 40) / 2
    expect(total.locator("td[data-column=aht_s]")).to_have_text("150.0 s")  # (100 + 200) / 2
    expect(page.locator("#report-svg rect.bar-answered")).to_have_count(1)
    expect(page.locator("#report-svg circle.sl-point")).to_have_count(1)
    expect(page.locator("#report-definitions")).to_contain_text(
        "(offered - abandoned within the threshold)"
    )
    save_screenshot(page, "reports-daily")

    with page.expect_download() as download_info:
        page.click("#report-csv")
    download = download_info.value
    assert download.suggested_filename == "report-daily-2024-07-01-2024-07-01.csv"
    with open(download.path(), encoding="utf-8", newline="") as handle:
        header, *rows = list(csv.reader(io.StringIO(handle.read())))
    records = [dict(zip(header, row, strict=True)) for row in rows]
    overall = [r for r in records if r["queue"] == "All queues" and r["period"] == "total"]
    assert len(overall) == 1
    assert (overall[0]["offered"], overall[0]["answered"], overall[0]["abandoned"]) == (
        "3",
        "2",
        "1",
    )
    assert overall[0]["service_level"] == "0.3333"
    assert overall[0]["csat"] == "5.0" and overall[0]["csat_count"] == "2"
    assert [r["period"] for r in records if r["queue"] == "Sales"] == ["2024-07-01", "total"]
    assert page_errors.messages == []


def test_bad_range_shows_the_error(app, live_server, page: Page, page_errors, create_user):
    create_user("sam", role="supervisor")
    sign_in(page, "sam")
    page.goto("/supervisor/reports")
    expect(page.locator("body")).to_have_attribute("data-reports-ready", "true")
    page.fill("#report-from", "2024-07-02")
    page.fill("#report-to", "2024-07-01")
    page.click("#report-show")
    expect(page.locator("#report-error")).to_contain_text("to must not be before from")
    expect(page.locator("#report-csv")).to_be_hidden()
    # The failed fetch (422) is logged by the browser; no script error beyond that.
    assert not [m for m in page_errors.messages if m.startswith("pageerror")]
