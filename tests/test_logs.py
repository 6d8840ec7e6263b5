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
