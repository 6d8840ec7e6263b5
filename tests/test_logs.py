"""Log lines carry the request's id (echoed as X-Request-ID); JSON lines for shippers."""

from __future__ import annotations

import json
import logging

from flask import current_app

from contact_center.logs import ContextFilter, JsonFormatter


def record(message: str, exc_info=None) -> logging.LogRecord:
    entry = logging.LogRecord(
        "contact_center.test", logging.INFO, __file__, 1, message, (), exc_info
    )
    ContextFilter().filter(entry)
    return entry


def test_each_request_gets_an_id_and_echoes_a_sane_one(client):
    fresh = client.get("/healthz")
    assert len(fresh.headers["X-Request-ID"]) == 32
    assert client.get("/healthz").headers["X-Request-ID"] != fresh.headers["X-Request-ID"]
    given = client.get("/healthz", headers={"X-Request-ID": "lb-7f3a.1"})
    assert given.headers["X-Request-ID"] == "lb-7f3a.1"
    for forged in ("x FAKE LOG LINE level=ERROR", "a" * 65, "<script>"):
        echoed = client.get("/healthz", headers={"X-Request-ID": forged}).headers["X-Request-ID"]
        assert echoed != forged and len(echoed) == 32


def test_a_json_line_has_the_time_level_message_and_request_id(app):
    with app.test_request_context("/"):
        current_app.preprocess_request()  # runs before_request: the id is set
        line = json.loads(JsonFormatter().format(record("call from +44***01 recorded")))
    assert line["level"] == "INFO" and line["logger"] == "contact_center.test"
    assert line["message"] == "call from +44***01 recorded"
    assert len(line["request_id"]) == 32 and line["time"].endswith("Z")
    assert "job_id" not in line


def test_a_json_line_keeps_the_exception_on_one_line():
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        text = JsonFormatter().format(record("failed", sys.exc_info()))
    assert "\n" not in text
    assert "ValueError: boom" in json.loads(text)["exception"]


def test_calls_and_mail_are_logged_with_masked_numbers_and_addresses(
    app, twilio_post, post_mail, make_queue, caplog
):
    from contact_center.customers.services import create_customer
    from tests.conftest import VOICE, call_sid
    from tests.tickets.test_email_inbound import make_mail

    make_queue("General", is_default=True)
    create_customer({"name": "Known Caller", "phones": ["+447700900555"]})
    caplog.set_level(logging.DEBUG)
    for n, number in ((1, "+447700900777"), (2, "+447700900555")):  # unknown, then known
        answer = twilio_post(VOICE, {"CallSid": call_sid(n), "From": number, "To": "+442000000000"})
        assert answer.status_code == 200
    assert post_mail(make_mail(sender="Zoe Quinn <zoe.quinn@example.org>")).status_code < 300

    assert "+44***77" in caplog.text and "z***@example.org" in caplog.text  # they were logged
    for secret in ("7700900777", "7700900555", "zoe.quinn@example.org", "zoe.quinn"):
        assert secret not in caplog.text


def test_provider_errors_are_scrubbed_before_they_are_logged():
    from contact_center.customers.services import scrub

    message = "The 'To' number +44 7700 900123 is not valid; write to mei.chen@example.org"
    assert scrub(message) == "The 'To' number +44***23 is not valid; write to m***@example.org"
    sid = "Call CA0000000000000000000000000000001f not found"
    assert scrub(sid) == sid  # identifiers are not numbers
    assert scrub(None) == "-"
