"""A local Twilio-compatible REST server that records the calls it receives.

It speaks the part of Twilio's 2010-04-01 API we use (create, update and fetch Calls;
list Conferences, add and update their Participants, pause and resume their Recordings,
delete Recordings),
checks HTTP basic auth like Twilio, and answers with Twilio-shaped JSON. Point
TWILIO_API_BASE_URL at it. Run standalone: `python -m contact_center.simulate.twilio_stub`.

Like Twilio it also calls back: `post_status()` posts a signed status callback to the
StatusCallback URL a call was created with, `answer()` fetches a call's TwiML from its Url,
and with `auto_advance` every created call goes initiated -> ringing -> in-progress by
itself (posting the events its creator asked for, then fetching its TwiML). The traffic
simulator plays the caller's side too: `incoming()` registers a call it sent in, a redirect
of it is followed (`follow_redirects`), and `hang_up()` ends it unless it was redirected.
Callback URLs are signed as given (the app's PUBLIC_BASE_URL) and sent to
`webhook_base_url` instead of their own host, which lets a test app on 127.0.0.1 play the
public server.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import re
import secrets
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from twilio.request_validator import RequestValidator

CONFERENCES_PATH = re.compile(
    r"^/2010-04-01/Accounts/(?P<account>AC\w+)/Conferences"
    r"(?:/(?P<conference>CF\w+)/(?:Participants(?:/(?P<participant>CA\w+))?"
    r"|Recordings/(?P<recording>RE\w+|Twilio\.CURRENT)))?\.json$"
)
RECORDINGS_PATH = re.compile(
    r"^/2010-04-01/Accounts/(?P<account>AC\w+)/Recordings/(?P<sid>RE\w+)\.json$"
)
CALLS_PATH = re.compile(
    r"^/2010-04-01/Accounts/(?P<account>AC\w+)/Calls(?:/(?P<sid>CA\w+))?\.json$"
)
# Twilio's StatusCallbackEvent names for the statuses a call passes through.
EVENT_OF_STATUS = {"initiated": "initiated", "ringing": "ringing", "in-progress": "answered"}
FINAL_STATUSES = ("completed", "busy", "failed", "no-answer", "canceled")


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
    # Where callbacks go: replaces the scheme and host of the URLs the app gave (None = as given).
    webhook_base_url: str | None = None
    # More web processes of the same deployment: callbacks go round them all with the first,
    # as Twilio's reach a load balancer's.
    more_webhook_urls: tuple[str, ...] = ()
    sent_callbacks: int = 0
    # Created calls advance initiated -> ringing -> in-progress on their own.
    auto_advance: bool = False
    # Requests to refuse as Twilio does a bad one (400): "call-create", "participant-create".
    refuse: set[str] = field(default_factory=set)
    # Answers to the callbacks the stub made: (url, form, status code, body).
    callbacks: list[tuple[str, dict[str, str], int, str]] = field(default_factory=list)
    # A redirected call fetches its new TwiML, as Twilio does (the caller joins the conference).
    follow_redirects: bool = False
    # Keep at most this many requests and callbacks (None: all): a long simulation runs for hours.
    max_recorded: int | None = None
    # Told of every update of a known call, under the lock: (CallSid, form).
    on_update: Any = None
    # RecordingSids deleted (204), in order; a second DELETE of one gets Twilio's 404.
    deleted_recordings: list[str] = field(default_factory=list)
    # Answer the next this-many recording DELETEs with a 500 (a Twilio outage).
    fail_recording_deletes: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    changed: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self.changed = threading.Condition(self.lock)


def _trim(records: list, limit: int | None) -> None:
    """Drop the oldest records past twice the limit (amortised: not one shift per request)."""
    if limit is not None and len(records) > 2 * limit:
        del records[: len(records) - limit]


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


def _new_call(form: dict[str, str], fields: dict[str, list[str]]) -> dict[str, Any]:
    return {
        "to": form.get("To"),
        "from": form.get("From"),
        "url": form.get("Url"),
        "status": "queued",
        "direction": "outbound-api",
        "status_callback": form.get("StatusCallback"),
        # Without StatusCallbackEvent Twilio reports only the end of the call.
        "events": set(fields.get("StatusCallbackEvent", [])),
        "sequence": 0,
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

    def _refuse(self) -> None:
        self._send(400, {"code": 21210, "message": "Refused by the stub", "status": 400})

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
        recording = RECORDINGS_PATH.match(path)
        if recording is not None and recording["account"] == state.account_sid:
            self._recording(method, path, recording["sid"])
            return
        if match is None or match["account"] != state.account_sid:
            self._send(404, {"code": 20404, "message": "Not found", "status": 404})
            return
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode() if length else ""
        fields = parse_qs(raw)
        form = {key: values[-1] for key, values in fields.items()}
        sid = match["sid"]
        with state.changed:
            state.requests.append(RecordedRequest(method, path, form, sid))
            _trim(state.requests, state.max_recorded)
            state.changed.notify_all()
            if sid is None and method == "POST":
                if "call-create" in state.refuse:
                    self._refuse()
                    return
                sid = "CA" + secrets.token_hex(16)
                state.calls[sid] = _new_call(form, fields)
                self._send(201, _call_json(state, sid, state.calls[sid]))
                if state.auto_advance:
                    self.server.advance_later(sid)
                return
            if sid is None or sid in state.gone:
                self._send(404, {"code": 20404, "message": f"Call {sid} not found", "status": 404})
                return
            call = state.calls.setdefault(sid, {"status": "in-progress", "direction": "inbound"})
            if method == "POST":
                if "Url" in form:
                    call["url"] = form["Url"]
                    call["redirected"] = True
                if "Status" in form:
                    call["status"] = form["Status"]
                if state.on_update is not None:
                    state.on_update(sid, form)
            self._send(200, _call_json(state, sid, call))
            if state.auto_advance and form.get("Status") in FINAL_STATUSES:
                # Hung up through the API: Twilio then reports the end of the call.
                self.server.report_later(sid, form["Status"])
            elif state.follow_redirects and "Url" in form and "Status" not in form:
                threading.Thread(target=self.server.answer, args=(sid,), daemon=True).start()

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
        if (
            match["participant"] is None
            and method == "POST"
            and "participant-create" in state.refuse
        ):
            self._refuse()
            return
        participant = match["participant"] or "CA" + secrets.token_hex(16)
        if match["participant"] is None and method == "POST":
            with state.changed:  # a participant created by dialling out is a call too
                state.calls[participant] = _new_call(form, parse_qs(raw))
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

    def _recording(self, method: str, path: str, sid: str) -> None:
        """DELETE a recording: 204 once, then 404 as Twilio answers for one already gone."""
        state = self.server.state
        with state.changed:
            state.requests.append(RecordedRequest(method, path, {}, None))
            state.changed.notify_all()
            if method != "DELETE":
                status = 405
            elif state.fail_recording_deletes > 0:
                state.fail_recording_deletes -= 1
                status = 500
            elif sid in state.deleted_recordings:
                status = 404
            else:
                state.deleted_recordings.append(sid)
                status = 204
        if status == 204:
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        message = {404: f"Recording {sid} not found", 405: "Method not allowed"}
        code = {404: 20404, 405: 20004, 500: 20500}[status]
        text = message.get(status, "Internal server error (the stub's outage)")
        self._send(status, {"code": code, "message": text, "status": status})

    def do_DELETE(self) -> None:  # noqa: N802
        self._handle("DELETE")

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

    def reset(self) -> None:
        """Forget every request, call and callback setting (between tests)."""
        with self.state.changed:
            self.state.requests.clear()
            self.state.calls.clear()
            self.state.gone.clear()
            self.state.callbacks.clear()
            self.state.refuse.clear()
            self.state.webhook_base_url = None
            self.state.more_webhook_urls = ()
            self.state.auto_advance = False
            self.state.follow_redirects = False
            self.state.max_recorded = None
            self.state.on_update = None
            self.state.deleted_recordings.clear()
            self.state.fail_recording_deletes = 0

    # ------------------------------------------------------------ callbacks to the app

    def _target(self, url: str) -> str:
        base = self.state.webhook_base_url
        if not base:
            return url
        if self.state.more_webhook_urls:
            bases = (base, *self.state.more_webhook_urls)
            with self.state.changed:
                self.state.sent_callbacks += 1
                base = bases[self.state.sent_callbacks % len(bases)]
        parts, new = urlsplit(url), urlsplit(base)
        return urlunsplit((new.scheme, new.netloc, parts.path, parts.query, parts.fragment))

    def _post_signed(self, url: str, params: dict[str, str]) -> tuple[int, str]:
        """POST a form to the app the way Twilio does: signed for `url` as the app gave it."""
        signature = RequestValidator(self.state.auth_token).compute_signature(url, params)
        request = urllib.request.Request(  # noqa: S310  (our own http URL)
            self._target(url),
            data=urlencode(params).encode(),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Twilio-Signature": signature,
            },
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                result = response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            result = error.code, error.read().decode()
        with self.state.changed:
            self.state.callbacks.append((url, params, *result))
            _trim(self.state.callbacks, self.state.max_recorded)
            self.state.changed.notify_all()
        return result

    def _params(self, sid: str, call: dict[str, Any], status: str) -> dict[str, str]:
        params = {
            "AccountSid": self.state.account_sid,
            "ApiVersion": "2010-04-01",
            "CallSid": sid,
            "CallStatus": status,
            "Direction": call.get("direction") or "outbound-api",
        }
        for key, name in (("from", "From"), ("to", "To")):
            if call.get(key):
                params[name] = call[key]
        return params

    def post_status(
        self,
        call_sid: str,
        status: str,
        duration: int | None = None,
        *,
        status_callback: str | None = None,
    ) -> tuple[int, str]:
        """Move a call to `status` and post the signed status callback; (HTTP status, body).

        `status_callback` stands in for the URL of a call the stub did not create (an
        incoming call, whose callback is set on the phone number at Twilio).
        """
        with self.state.changed:
            call = self.state.calls.setdefault(call_sid, {"direction": "inbound"})
            call["status"] = status
            call["sequence"] = call.get("sequence", 0) + 1
            url = status_callback or call.get("status_callback")
            params = self._params(call_sid, call, status)
            params["SequenceNumber"] = str(call["sequence"] - 1)
            if status in FINAL_STATUSES:
                params["CallDuration"] = str(duration or 0)
                self.state.gone.add(call_sid)
        if not url:
            raise ValueError(f"call {call_sid} was created without a StatusCallback")
        result = self._post_signed(url, params)
        if status in FINAL_STATUSES and self.state.max_recorded is not None:
            self.forget(call_sid)
        return result

    def incoming(self, call_sid: str, caller: str, called: str, status_callback: str) -> None:
        """A call that came in (Twilio posted its webhook): the stub now owns its lifecycle, so
        when the app hangs it up through the API its final status goes to `status_callback`."""
        with self.state.changed:
            self.state.calls[call_sid] = {
                "status": "in-progress",
                "direction": "inbound",
                "from": caller,
                "to": called,
                "status_callback": status_callback,
                "events": set(),
                "sequence": 0,
            }

    def hang_up(self, call_sid: str) -> bool:
        """The caller hangs up, unless the app redirected the call first (True: hung up).

        Decided under the lock, so a redirect after it gets Twilio's 404 for an ended call.
        """
        with self.state.changed:
            call = self.state.calls.get(call_sid)
            if call is not None and call.get("redirected"):
                return False
            self.state.gone.add(call_sid)
            if call is not None:
                call["status"] = "completed"
            return True

    def forget(self, call_sid: str) -> None:
        """Drop an ended call's record (a long simulation would otherwise keep them all); the
        API still answers 404 for it."""
        with self.state.changed:
            self.state.calls.pop(call_sid, None)
            self.state.gone.add(call_sid)

    def answer(self, call_sid: str) -> tuple[int, str]:
        """The callee picks up: fetch the call's TwiML from its Url (signed); (status, TwiML)."""
        with self.state.changed:
            call = self.state.calls[call_sid]
            call["status"] = "in-progress"
            url = call.get("url")
            params = self._params(call_sid, call, "in-progress")
        if not url:
            raise ValueError(f"call {call_sid} has no Url")
        code, body = self._post_signed(url, params)
        with self.state.changed:
            call["twiml"] = body
        return code, body

    def advance(self, call_sid: str) -> None:
        """initiated -> ringing -> in-progress, posting the events asked for, then the TwiML."""
        for status in ("initiated", "ringing", "in-progress"):
            call = self.state.calls.get(call_sid)
            if call is None or call["status"] in FINAL_STATUSES:
                return
            if EVENT_OF_STATUS[status] in call["events"] and call.get("status_callback"):
                self.post_status(call_sid, status)
            else:
                call["status"] = status
        if self.state.calls[call_sid].get("url"):
            self.answer(call_sid)

    def report_later(self, call_sid: str, status: str) -> None:
        """Post a call's final status in its own thread, if it has somewhere to go."""
        if self.state.calls.get(call_sid, {}).get("status_callback"):
            threading.Thread(target=self.post_status, args=(call_sid, status), daemon=True).start()

    def advance_later(self, call_sid: str) -> None:
        """Advance a call in its own thread, as Twilio does after answering the create."""
        threading.Thread(target=self.advance, args=(call_sid,), daemon=True).start()

    def wait_for_callback(self, predicate, timeout: float = 10.0) -> list[tuple]:
        """Block until some callbacks the stub made satisfy `predicate`; return those."""
        with self.state.changed:
            self.state.changed.wait_for(
                lambda: any(predicate(c) for c in self.state.callbacks), timeout=timeout
            )
            return [c for c in self.state.callbacks if predicate(c)]

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
