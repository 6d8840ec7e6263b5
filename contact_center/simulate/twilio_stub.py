"""A local Twilio-compatible REST server that records the calls it receives.

It speaks the part of Twilio's 2010-04-01 API we use (create, update and fetch Calls;
list Conferences, add and update their Participants, pause and resume their Recordings),
checks HTTP basic auth like Twilio, and answers with Twilio-shaped JSON. Point
TWILIO_API_BASE_URL at it. Run standalone: `python -m contact_center.simulate.twilio_stub`.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import re
import secrets
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

CONFERENCES_PATH = re.compile(
    r"^/2010-04-01/Accounts/(?P<account>AC\w+)/Conferences"
    r"(?:/(?P<conference>CF\w+)/(?:Participants(?:/(?P<participant>CA\w+))?"
    r"|Recordings/(?P<recording>RE\w+|Twilio\.CURRENT)))?\.json$"
)
CALLS_PATH = re.compile(
    r"^/2010-04-01/Accounts/(?P<account>AC\w+)/Calls(?:/(?P<sid>CA\w+))?\.json$"
)


@dataclass
class RecordedRequest:
    method: str
    path: str
    form: dict[str, str]
    call_sid: str | None
    query: dict[str, str] = field(default_factory=dict)
    conference_sid: str | None = None


@dataclass
class StubState:
    account_sid: str
    auth_token: str
    requests: list[RecordedRequest] = field(default_factory=list)
    calls: dict[str, dict[str, Any]] = field(default_factory=dict)
    # CallSids that answer 404, as Twilio does for a call that has already ended.
    gone: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    changed: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self.changed = threading.Condition(self.lock)


def _call_json(state: StubState, sid: str, call: dict[str, Any]) -> dict[str, Any]:
    return {
        "sid": sid,
        "account_sid": state.account_sid,
        "status": call.get("status", "queued"),
        "to": call.get("to"),
        "from": call.get("from"),
        "direction": call.get("direction", "outbound-api"),
        "uri": f"/2010-04-01/Accounts/{state.account_sid}/Calls/{sid}.json",
    }


class _Handler(BaseHTTPRequestHandler):
    server: TwilioStubServer

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _authorised(self) -> bool:
        state = self.server.state
        expected = base64.b64encode(f"{state.account_sid}:{state.auth_token}".encode()).decode()
        return self.headers.get("Authorization", "") == f"Basic {expected}"

    def _handle(self, method: str) -> None:
        state = self.server.state
        path, _, query_string = self.path.partition("?")
        match = CALLS_PATH.match(path)
        if not self._authorised():
            self._send(401, {"code": 20003, "message": "Authenticate", "status": 401})
            return
        conference = CONFERENCES_PATH.match(path)
        if conference is not None and conference["account"] == state.account_sid:
            self._conference(method, path, conference, query_string)
            return
        if match is None or match["account"] != state.account_sid:
            self._send(404, {"code": 20404, "message": "Not found", "status": 404})
            return
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode() if length else ""
        form = {key: values[-1] for key, values in parse_qs(raw).items()}
        sid = match["sid"]
        with state.changed:
            state.requests.append(RecordedRequest(method, path, form, sid))
            state.changed.notify_all()
            if sid is None and method == "POST":
                sid = "CA" + secrets.token_hex(16)
                state.calls[sid] = {
                    "to": form.get("To"),
                    "from": form.get("From"),
                    "url": form.get("Url"),
                    "status": "queued",
                }
                self._send(201, _call_json(state, sid, state.calls[sid]))
                return
            if sid is None or sid in state.gone:
                self._send(404, {"code": 20404, "message": f"Call {sid} not found", "status": 404})
                return
            call = state.calls.setdefault(sid, {"status": "in-progress", "direction": "inbound"})
            if method == "POST":
                if "Url" in form:
                    call["url"] = form["Url"]
                if "Status" in form:
                    call["status"] = form["Status"]
            self._send(200, _call_json(state, sid, call))

    def _conference(self, method: str, path: str, match: re.Match, query_string: str) -> None:
        """Conferences exist for every name asked after (each interaction has one live)."""
        state = self.server.state
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode() if length else ""
        form = {key: values[-1] for key, values in parse_qs(raw).items()}
        query = {key: values[-1] for key, values in parse_qs(query_string).items()}
        account = state.account_sid
        with state.changed:
            record = RecordedRequest(
                method, path, form, match["participant"], query, match["conference"]
            )
            state.requests.append(record)
            state.changed.notify_all()
        if match["conference"] is None:  # list by FriendlyName
            name = query.get("FriendlyName", "")
            sid = "CF" + hashlib.md5(name.encode(), usedforsecurity=False).hexdigest()
            self._send(
                200,
                {
                    "conferences": [
                        {
                            "sid": sid,
                            "account_sid": account,
                            "friendly_name": name,
                            "status": "in-progress",
                        }
                    ],
                    "next_page_uri": None,
                    "page": 0,
                    "page_size": 50,
                },
            )
            return
        if match["recording"] is not None:  # pause or resume the conference's recording
            self._send(
                200,
                {
                    "account_sid": account,
                    "conference_sid": match["conference"],
                    "sid": "RE"
                    + hashlib.md5(match["conference"].encode(), usedforsecurity=False).hexdigest(),
                    "status": form.get("Status", "in-progress"),
                },
            )
            return
        participant = match["participant"] or "CA" + secrets.token_hex(16)
        self._send(
            201 if match["participant"] is None else 200,
            {
                "account_sid": account,
                "conference_sid": match["conference"],
                "call_sid": participant,
                "hold": form.get("Hold") == "true",
                "muted": form.get("Muted") == "true",
                "coaching": form.get("Coaching") == "true",
                "status": "connected",
            },
        )

    def do_POST(self) -> None:  # noqa: N802  (http.server's naming)
        self._handle("POST")

    def do_GET(self) -> None:  # noqa: N802
        self._handle("GET")


class TwilioStubServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, account_sid: str, auth_token: str, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        super().__init__((host, port), _Handler)
        self.state = StubState(account_sid, auth_token)

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> TwilioStubServer:
        """Serve in a daemon thread."""
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    def wait_for(self, predicate, timeout: float = 10.0) -> list[RecordedRequest]:
        """Block until some recorded requests satisfy `predicate`; return those."""
        with self.state.changed:
            self.state.changed.wait_for(
                lambda: any(predicate(r) for r in self.state.requests), timeout=timeout
            )
            return [r for r in self.state.requests if predicate(r)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--account-sid", required=True)
    parser.add_argument("--auth-token", required=True)
    parser.add_argument("--port", type=int, default=8099)
    args = parser.parse_args()
    server = TwilioStubServer(args.account_sid, args.auth_token, port=args.port)
    print(f"Twilio stub on {server.base_url}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
