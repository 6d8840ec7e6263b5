"""The test app on a real HTTP server in a background thread (browser tests, stub callbacks).

The `app` fixture of tests/conftest.py builds the app (clean database and Redis, an app
context pushed in the test thread); the live server serves that same app object, so the
browser, the Twilio stub's callbacks and the test share one app.
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from flask import Flask
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from tests.conftest import PUBLIC_BASE_URL, sign


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
        return self.post(
            path,
            urlencode(params).encode(),
            {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})},
        )

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        """POST a body to the live server over real HTTP; (status, body)."""
        parts = urlsplit(self.url)
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        try:
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def twilio_post(self, path: str, params: dict[str, str]) -> tuple[int, bytes]:
        """A Twilio webhook, signed for the configured PUBLIC_BASE_URL (what Twilio would sign)."""
        signature = sign(PUBLIC_BASE_URL + path, params)
        return self.post_form(path, params, {"X-Twilio-Signature": signature})


@contextmanager
def serve(app: Flask) -> Iterator[LiveServer]:
    """Serve `app` on a free 127.0.0.1 port with werkzeug, threaded (Socket.IO too)."""
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield LiveServer(server, thread)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        # Let requests still in flight (a socket's disconnect handler, say) finish and hand
        # their database connections back before the app fixture disposes of the engine.
        for request_thread in threading.enumerate():
            if "process_request_thread" in request_thread.name:
                request_thread.join(timeout=10)
