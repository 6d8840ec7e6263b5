"""The softphone in a real browser: the vendored Voice SDK, its token, and Twilio's boundary.

Twilio's servers are not reachable from tests (and must not be contacted), so the browser
context answers for them at their protocol: the SDK's signalling WebSocket
(wss://voice-js.roaming.twilio.com/signal) is a Playwright WebSocket route that replies as Twilio's
gateway does (`listen` -> `connected`, `register` -> `ready`, and an `invite` for an incoming
call); the SDK's ringtones (sdk.twilio.com) are a short silent WAV; its insights events are
accepted and dropped. Any other request that would leave the machine is aborted.
What is checked is what crosses that boundary: the token the SDK presents is the one our
API issued, for the agent's identity; Decline sends Twilio a `reject` for the call.
"""

from __future__ import annotations

import io
import json
import re
import threading
import wave
from dataclasses import dataclass, field
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, Route, WebSocketRoute, expect

from contact_center.extensions import db
from tests.conftest import PASSWORD
from tests.e2e.conftest import save_screenshot
from tests.softphone.conftest import (
    API_KEY_SECRET,
    decode_jwt,
    softphone_app_config,
)

pytestmark = pytest.mark.e2e

SIGNALLING = re.compile(r"^wss://[^/]*\.twilio\.com/")
LOCAL = re.compile(r"^https?://(127\.0\.0\.1|localhost)(:\d+)?/")
TOKEN_URL = "/api/v1/agents/me/voice-token"
CORS = {"Access-Control-Allow-Origin": "*"}
app_config = softphone_app_config  # the softphone is configured in these tests


def _silence() -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\0\0" * 800)
    return buffer.getvalue()


@dataclass
class FakeTwilio:
    """Twilio's side of the browser's traffic: the signalling socket, sounds, insights."""

    answer: bool = True  # False: the gateway closes every signalling socket at once
    ttl_s: int | None = None  # the token lifetime the gateway reports (the SDK times renewal)
    sockets: list[WebSocketRoute] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)
    aborted: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def install(self, context: BrowserContext) -> None:
        """Route the context's Twilio traffic here; abort anything else bound off-machine."""
        context.route(lambda url: not LOCAL.match(url), self._http)
        context.route_web_socket(SIGNALLING, self._socket)

    def _http(self, route: Route) -> None:
        url = route.request.url
        if url.startswith("https://sdk.twilio.com/"):
            route.fulfill(status=200, body=_silence(), content_type="audio/wav", headers=CORS)
        elif re.match(r"^https://eventgw(\.[a-z0-9-]+)?\.twilio\.com/", url):
            route.fulfill(status=200, body="{}", content_type="application/json", headers=CORS)
        else:
            self.aborted.append(url)
            route.abort()

    def _socket(self, ws: WebSocketRoute) -> None:
        self.urls.append(ws.url)
        if not self.answer:
            ws.close(code=4000, reason="unavailable")
            return
        self.sockets.append(ws)
        ws.on_message(lambda message: self._message(ws, message))

    def _message(self, ws: WebSocketRoute, message: str | bytes) -> None:
        data = json.loads(message)
        with self.lock:
            self.received.append(data)
        payload = data.get("payload") or {}
        if data["type"] == "listen":
            _, claims = decode_jwt(payload["token"], API_KEY_SECRET)
            reply = {"region": "gll", "token": {"identity": claims["grants"]["identity"]}}
            if self.ttl_s is not None:
                reply["token"]["ttl"] = self.ttl_s
            ws.send(json.dumps({"type": "connected", "payload": reply}))
        elif data["type"] == "register":
            ws.send(json.dumps({"type": "ready", "payload": {}}))

    def messages(self, kind: str) -> list[dict[str, Any]]:
        with self.lock:
            return [m for m in self.received if m["type"] == kind]

    def invite(self, call_sid: str) -> None:
        """An incoming call for the registered browser, as the gateway announces one."""
        sdp = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
        parameters = {"CallSid": call_sid, "From": "+15005550006", "To": "client:alice"}
        message = {"callsid": call_sid, "sdp": sdp, "parameters": parameters}
        self.sockets[-1].send(json.dumps({"type": "invite", "payload": message}))


@pytest.fixture
def fake_twilio(page: Page) -> FakeTwilio:
    fake = FakeTwilio()
    fake.install(page.context)
    return fake


def _sign_in(page: Page, login) -> list[dict[str, Any]]:
    """Sign alice in; the voice tokens the page is given, as they arrive."""
    tokens: list[dict[str, Any]] = []

    def on_response(response) -> None:
        if response.url.endswith(TOKEN_URL) and response.status == 200:
            tokens.append(response.json())

    page.on("response", on_response)
    login("alice", PASSWORD)
    expect(page).to_have_url(re.compile(r"/agent$"))
    return tokens


def _wait(page: Page, condition, what: str) -> None:
    for _ in range(150):
        if condition():
            return
        page.wait_for_timeout(100)
    raise AssertionError(f"timed out waiting for {what}")


def test_the_browser_registers_with_the_agents_token_and_declines_a_call(
    app, create_user, live_server, page, login, fake_twilio, page_errors
):
    create_user("alice")
    db.session.remove()  # nothing of ours stays open while the server thread writes
    tokens = _sign_in(page, login)
    card = page.locator("#softphone")

    expect(card).to_have_attribute("data-state", "ready")
    expect(page.locator("#softphone-state")).to_have_text("Ready: calls ring in this browser")
    assert page.evaluate("typeof window.Twilio.Device") == "function"
    csp = page.locator('meta[http-equiv="Content-Security-Policy"]').get_attribute("content")
    assert "connect-src 'self' wss://*.twilio.com https://*.twilio.com;" in csp
    assert "media-src 'self' https://sdk.twilio.com;" in csp

    # What crossed to "Twilio": the token our API issued, for alice, on the signalling socket.
    _wait(page, lambda: tokens, "the token response")  # its event may trail the socket's
    assert len(tokens) == 1 and tokens[0]["identity"] == "alice"
    assert fake_twilio.urls == ["wss://voice-js.roaming.twilio.com/signal"]
    (listen,) = fake_twilio.messages("listen")
    assert listen["payload"]["token"] == tokens[0]["token"]
    _, claims = decode_jwt(listen["payload"]["token"], API_KEY_SECRET)
    assert claims["grants"]["identity"] == "alice"
    assert claims["grants"]["voice"]["incoming"] == {"allow": True}
    assert fake_twilio.messages("register")[0]["payload"]["media"] == {"audio": True}

    # A call rings: Answer and Decline; declining tells Twilio and the phone is ready again.
    fake_twilio.invite("CA" + "5" * 32)
    expect(card).to_have_attribute("data-state", "incoming")
    expect(page.locator("#softphone-call")).to_be_visible()
    expect(page.locator("#softphone-call-title")).to_have_text("Incoming call")
    expect(page.locator("#softphone-state")).to_have_text("Ringing in this browser")
    expect(page.locator("#softphone-answer")).to_be_visible()
    expect(page.locator("#softphone-hangup")).to_be_hidden()
    save_screenshot(page, "agent-softphone")  # for a person to look at (not compared)
    page.click("#softphone-decline")
    _wait(page, lambda: fake_twilio.messages("reject"), "the reject message")
    assert fake_twilio.messages("reject")[0]["payload"]["callsid"] == "CA" + "5" * 32
    expect(page.locator("#softphone-call")).to_be_hidden()
    expect(card).to_have_attribute("data-state", "ready")
    assert fake_twilio.aborted == []
    assert page_errors.messages == []


def test_the_token_is_renewed_before_it_expires(
    app, create_user, live_server, page, login, fake_twilio, page_errors
):
    # The SDK fires tokenWillExpire 10 s before the lifetime Twilio reports: here after 1 s.
    fake_twilio.ttl_s = 11
    create_user("alice")
    db.session.remove()
    tokens = _sign_in(page, login)
    _wait(
        page,
        lambda: len(fake_twilio.messages("listen")) >= 2 and len(tokens) >= 2,
        "a second token, and a listen with it",
    )
    assert tokens[1]["token"] != tokens[0]["token"]
    presented = [m["payload"]["token"] for m in fake_twilio.messages("listen")]
    assert presented[:2] == [tokens[0]["token"], tokens[1]["token"]]
    assert len(fake_twilio.urls) == 1  # renewed on the same socket, not a new registration
    expect(page.locator("#softphone")).to_have_attribute("data-state", "ready")
    assert page_errors.messages == []


def test_the_agent_moves_their_calls_to_a_phone_and_back(
    app, create_user, live_server, page, login, fake_twilio, page_errors
):
    from contact_center.agents.models import User

    alice_id = create_user("alice").id
    db.session.remove()
    tokens = _sign_in(page, login)
    card = page.locator("#softphone")
    expect(card).to_have_attribute("data-state", "ready")

    page.click("#softphone-settings summary")
    page.check("#softphone-kind-sip")
    page.fill("#softphone-address", "alice@pbx")
    page.click("#softphone-save")
    expect(page.locator("#softphone-endpoint-error")).to_contain_text("Not a SIP address")
    expect(card).to_have_attribute("data-state", "ready")  # nothing changed

    page.check("#softphone-kind-phone")
    expect(page.locator("#softphone-address-label")).to_have_text("Phone number")
    page.fill("#softphone-address", "07911 123456")
    page.click("#softphone-save")
    expect(card).to_have_attribute("data-state", "elsewhere")
    expect(page.locator("#softphone-state")).to_have_text("Calls ring at +44***56")
    expect(page.locator("#softphone-endpoint-error")).to_be_hidden()
    assert db.session.get(User, alice_id).voice_endpoint == "+447911123456"
    db.session.remove()

    page.reload()  # the choice is kept: no token, no Device
    expect(card).to_have_attribute("data-state", "elsewhere")
    assert len(tokens) == 1

    page.click("#softphone-settings summary")
    expect(page.locator("#softphone-kind-phone")).to_be_checked()
    expect(page.locator("#softphone-address")).to_have_value("+447911123456")
    page.check("#softphone-kind-browser")
    expect(page.locator("#softphone-address-row")).to_be_hidden()
    page.click("#softphone-save")
    expect(card).to_have_attribute("data-state", "ready")
    _wait(page, lambda: len(tokens) == 2, "the second token response")
    assert db.session.get(User, alice_id).voice_endpoint is None
    # The browser logs the refused save (422) itself; nothing else went wrong.
    refused = [m for m in page_errors.messages if "status of 422" in m]
    assert len(refused) == 1 and len(page_errors.messages) == 1, page_errors.messages


def test_when_twilio_cannot_be_reached_the_card_says_so(
    app, create_user, live_server, page, login, fake_twilio, page_errors
):
    fake_twilio.answer = False
    create_user("alice")
    db.session.remove()
    tokens = _sign_in(page, login)
    card = page.locator("#softphone")
    _wait(page, lambda: fake_twilio.urls, "the SDK to try the signalling socket")
    _wait(page, lambda: tokens, "the token response")  # the token was asked for and given
    expect(card).to_have_attribute("data-state", re.compile(r"^(connecting|error)$"))
    assert page.evaluate("typeof window.Twilio.Device") == "function"
    # The SDK retries quietly; after a while the card says Twilio is not answering.
    expect(card).to_have_attribute("data-state", "error")
    expect(page.locator("#softphone-state")).to_have_text("Twilio is not answering")
    assert len(fake_twilio.urls) >= 2  # still trying
    assert page_errors.messages == []


def test_without_an_api_key_the_card_says_not_configured(
    app, create_user, live_server, page, login, fake_twilio, page_errors
):
    app.config.update(TWILIO_API_KEY_SID=None, TWILIO_API_KEY_SECRET=None)
    create_user("alice")
    db.session.remove()
    tokens = _sign_in(page, login)
    expect(page.locator("#softphone")).to_have_attribute("data-state", "off")
    expect(page.locator("#softphone-state")).to_have_text("Softphone not configured")
    assert page.evaluate("typeof window.Twilio.Device") == "function"
    csp = page.locator('meta[http-equiv="Content-Security-Policy"]').get_attribute("content")
    assert "twilio" not in csp
    assert tokens == [] and fake_twilio.urls == []
    assert page_errors.messages == []


def test_click_to_call_from_the_page_rings_the_agents_browser_first(
    app, create_user, live_server, page, login, fake_twilio, twilio_stub, page_errors
):
    from contact_center.customers.services import create_customer
    from contact_center.routing import services as routing

    ann_id = create_customer({"name": "Ann Example", "phones": ["+442079460018"]}).id
    nobody_id = create_customer({"name": "No Phone", "emails": ["no@example.com"]}).id
    routing.set_agent_status(create_user("alice"), "available")
    db.session.remove()
    _sign_in(page, login)
    expect(page.locator("#softphone")).to_have_attribute("data-state", "ready")

    interaction = page.evaluate("id => window.Softphone.call(id)", ann_id)
    assert interaction["direction"] == "outbound" and interaction["status"] == "connecting"
    calls = [r for r in twilio_stub.state.requests if r.path.endswith("/Calls.json")]
    assert [r.form["To"] for r in calls] == ["client:alice"]  # the browser rings first
    expect(page.locator("#softphone-detail")).to_have_text(
        "Calling: this browser rings first, then the customer."
    )

    error = page.evaluate(
        """id => window.Softphone.call(id).then(
               () => null, e => ({status: e.status, code: e.code, fields: e.fields}))""",
        nobody_id,
    )
    assert error == {
        "status": 422,
        "code": "validation_error",
        "fields": {"phone": ["Give a number."]},
    }
    expect(page.locator("#softphone-detail")).to_contain_text("Call not placed")
    refused = [m for m in page_errors.messages if "status of 422" in m]
    assert len(refused) == 1 and len(page_errors.messages) == 1, page_errors.messages
