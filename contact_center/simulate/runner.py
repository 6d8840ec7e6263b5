"""The traffic simulator: drives a running instance over its real protocols only.

Callers are signed Twilio webhooks (the incoming call, the IVR's gathers, the hold loop's
wait URL, and when patience runs out the `<Enqueue>` action and the final status callback,
as Twilio posts them). The Twilio REST calls the server makes (redirecting a caller into
the conference, dialling the agent's leg, hanging up) go to the local Twilio stub, which
plays Twilio's part: it follows the redirect, rings and answers the agent's leg, and posts
the status callbacks. Emails are raw RFC 5322 messages posted to the inbound webhook.
Agents are Socket.IO clients on `/agent` that think, accept (or now and then reject or let
an offer ring out), talk, complete and wrap up. The board is read as a supervisor's
browser reads it: the `board` snapshot on `/supervisor`.

Everything runs in one asyncio loop (`Simulation.run`); the stub serves from its threads
and tells the loop when a caller is redirected.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import logging
import math
import secrets
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlencode, urlsplit
from xml.etree import ElementTree

from contact_center.simulate import truth
from contact_center.simulate.model import Behaviour, Contact, Profile, arrivals, choose_key
from contact_center.simulate.twilio_stub import TwilioStubServer

log = logging.getLogger(__name__)

VOICE_PATH = "/webhooks/twilio/voice"
STATUS_PATH = "/webhooks/twilio/voice/status"
EMAIL_PATH = "/webhooks/email/inbound"
TO_NUMBER = "+441632960000"  # Ofcom's drama range: never a real line
REQUEST_TIMEOUT_S = 60.0
# After the drain, how long callers' last two webhooks may still take (each times out).
LAST_WEBHOOKS_S = 2 * REQUEST_TIMEOUT_S + 10.0
# An agent's event refused as `unavailable` (the server could not reach its database in
# time) is sent again, as a person clicks again, this many times in all, this far apart.
UNAVAILABLE_TRIES = 5
UNAVAILABLE_PAUSE_S = 1.0
# An accept whose ack timed out: how long to wait for the server's `assigned` event.
ASSIGNED_WAIT_S = 120.0
LOST: dict = {"ok": False, "lost": True}  # the marker of an ack that never came


@dataclass
class SimConfig:
    """Where to send traffic and how much."""

    base_url: str  # where requests go, e.g. http://127.0.0.1:5000
    public_base_url: str  # what Twilio signs against (the server's PUBLIC_BASE_URL)
    account_sid: str
    auth_token: str
    profile: Profile
    behaviour: Behaviour = field(default_factory=Behaviour)
    email_secret: str | None = None
    support_address: str = "support@example.com"
    duration_s: float | None = 60.0  # None: until stopped (the demo)
    drain_s: float = 120.0  # after the last arrival, how long callers may still wait
    seed: int = 1
    wait_poll_s: float = 30.0  # Twilio fetches the wait URL again after each hold loop
    max_in_flight: int = 500
    report_every_s: float = 10.0
    caller_prefix: str = "+4477"  # + 8 digits: one number per call of the run
    # More web processes of the same deployment: requests and agents go round the lot.
    other_urls: tuple[str, ...] = ()

    @property
    def servers(self) -> list[str]:
        """Every web process to drive."""
        return [self.base_url, *self.other_urls]


@dataclass
class Login:
    """An agent's (or the supervisor's) API token."""

    username: str
    token: str


class Latencies:
    """Durations in seconds, with percentiles in milliseconds."""

    def __init__(self) -> None:
        self.values: list[float] = []

    def add(self, seconds: float) -> None:
        self.values.append(max(0.0, seconds))

    def p(self, q: float) -> float | None:
        """The q-th percentile in ms (nearest rank), or None with no values."""
        if not self.values:
            return None
        ordered = sorted(self.values)
        index = min(len(ordered) - 1, max(0, int(round(q / 100 * len(ordered) + 0.5)) - 1))
        return round(ordered[index] * 1000, 1)


@dataclass
class Call:
    """A caller as the simulator follows them."""

    contact: Contact
    number: str
    sid: str
    queue: str | None = None
    enqueued_at: float | None = None
    requeued_at: float = 0.0  # the last offer of it closed (rejected or rang out)
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    connected_at: float | None = None
    outcome: str | None = None  # answered, abandoned, left, ivr (ended in the IVR), failed
    left: bool = False  # the server took the caller out of the queue (maximum wait)
    last_sent: float = 0.0  # the latest webhook of the call went out


@dataclass
class Agent:
    login: Login
    sio: Any = None
    free_since: float | None = None  # None: busy, or freed by the server unseen
    held: int = 0


class Simulation:
    """One run: arrivals by the profile, agents, then the comparison with the board."""

    def __init__(
        self,
        config: SimConfig,
        agents: list[Login],
        supervisor: Login,
        stub: TwilioStubServer,
        say: Callable[[str], None] = print,
    ) -> None:
        self.config = config
        self.agents = [Agent(login) for login in agents]
        self.supervisor = supervisor
        self.stub = stub
        self.say = say
        from twilio.request_validator import RequestValidator

        self.validator = RequestValidator(config.auth_token)
        self.calls: dict[str, Call] = {}  # caller number -> call
        self.by_sid: dict[str, Call] = {}
        self.emails: dict[str, deque] = defaultdict(deque)  # address -> waiting emails' info
        self.email_ids: dict[int, tuple[str, str]] = {}  # seq -> (address, Message-ID)
        # interaction -> (agent, expiry, reservation) of the offer standing as this client
        # sees it; times are the server's (its clock is the machine's)
        self.open_offers: dict[int, tuple[int, float, str]] = {}
        # reservation -> when another agent was offered its interaction while it stood
        self.overlaps: dict[str, float] = {}
        self.offer_counts: Counter[int] = Counter()  # interaction -> offers seen
        self.reservations: dict[str, int] = {}  # open offers' reservation -> interaction
        # accepts in flight: reservation -> resolved by the server's `assigned` event
        self.assignments: dict[str, asyncio.Future] = {}
        self.call_of: dict[int, Call] = {}  # interaction -> the call it is
        self.answered_interactions: set[int] = set()
        self.tally = truth.Tally()
        self.thresholds: dict[str, float] = {}
        self.counts: Counter = Counter()
        self.errors: Counter = Counter()
        self.webhook = Latencies()
        self.offer = Latencies()
        self.stopping = asyncio.Event()
        self.tasks: set[asyncio.Task] = set()
        self.contacts: set[asyncio.Task] = set()  # callers and emails still sending
        self.loop: asyncio.AbstractEventLoop | None = None
        self.started = 0.0
        self.in_flight: asyncio.Semaphore | None = None
        self.sent = 0
        self.stop_requested = False

    # ------------------------------------------------------------------ the run

    async def run(self) -> dict[str, Any]:
        """Connect, send traffic for the run's duration (or until `stop`), drain, compare."""
        import aiohttp

        self.loop = asyncio.get_running_loop()
        if self.stop_requested:  # stopped before the loop existed
            self.stopping.set()
        self.in_flight = asyncio.Semaphore(self.config.max_in_flight)
        self.stub.state.on_update = self._stub_update
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(
            connector=connector, timeout=timeout, cookie_jar=aiohttp.DummyCookieJar()
        ) as self.http:
            before = await self.board()
            self.thresholds = truth.thresholds(before)
            servers = self.config.servers
            await asyncio.gather(
                *(
                    self._connect(agent, servers[index % len(servers)])
                    for index, agent in enumerate(self.agents)
                )
            )
            self.say(
                f"simulator: {sum(a.sio is not None for a in self.agents)} agents connected, "
                f"profile {self.config.profile.name}, seed {self.config.seed}"
            )
            self.started = time.perf_counter()
            reporter = self._spawn(self._report_loop())
            await self._send_arrivals()
            last_arrival = time.perf_counter()
            await self._drain()
            reporter.cancel()
            await self._settle()
            await asyncio.sleep(1.5)  # the board's deltas are merged per BOARD_FLUSH_MS
            after = await self.board()
            await self._disconnect()
        return self.summary(before, after, last_arrival - self.started)

    def stop(self) -> None:
        """End arrivals early (thread-safe)."""
        self.stop_requested = True
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self.stopping.set)

    def _spawn(self, coroutine) -> asyncio.Task:
        task = asyncio.ensure_future(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def _send_arrivals(self) -> None:
        duration = self.config.duration_s
        for contact in arrivals(self.config.profile, self.config.seed, self.config.behaviour):
            if duration is not None and contact.at_s >= duration:
                return
            due = self.started + contact.at_s
            delay = due - time.perf_counter()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), delay)
            if self.stopping.is_set():
                return
            if contact.channel == "voice":
                task = self._spawn(self._call(contact, due))
            else:
                task = self._spawn(self._email(contact, due))
            self.contacts.add(task)
            task.add_done_callback(self.contacts.discard)

    async def _drain(self) -> None:
        """Callers still waiting get until `drain_s` after the last arrival, then hang up."""
        deadline = time.perf_counter() + self.config.drain_s
        while time.perf_counter() < deadline and self._waiting_callers():
            await asyncio.sleep(0.2)
        self.stopping.set()
        for call in self._waiting_callers():
            call.connected.set()  # wakes the caller, who hangs up unless redirected meanwhile
        while any(call.outcome is None for call in self.calls.values()):
            await asyncio.sleep(0.1)
        # A caller's outcome is known before their last webhooks (the <Enqueue> action, the
        # final status callback) are answered: closing the session would cut those off and
        # the server would never hear that the caller hung up.
        if self.contacts:
            await asyncio.wait(set(self.contacts), timeout=LAST_WEBHOOKS_S)

    def _waiting_callers(self) -> list[Call]:
        return [call for call in self.calls.values() if call.outcome is None]

    async def _settle(self, limit_s: float = 120.0) -> None:
        """Let agents finish the contacts they hold (complete and wrap up)."""
        deadline = time.perf_counter() + limit_s
        while any(agent.held for agent in self.agents) and time.perf_counter() < deadline:
            await asyncio.sleep(0.2)

    async def _report_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.report_every_s)
            self.say(self.progress())

    def progress(self) -> str:
        """One line: where the run is."""
        waiting = sum(1 for call in self.calls.values() if call.enqueued_at and not call.outcome)
        busy = sum(1 for agent in self.agents if agent.held)
        c = self.counts
        return (
            f"{time.perf_counter() - self.started:6.0f} s: calls {c['calls']}, emails "
            f"{c['emails']}, waiting {waiting}, answered {c['answered']}, abandoned "
            f"{c['abandoned']}, agents busy {busy}/{len(self.agents)}"
        )

    # ------------------------------------------------------------------ HTTP

    def _signed(self, url: str, params: dict[str, str]) -> dict[str, str]:
        return {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": self.validator.compute_signature(url, params),
            "User-Agent": "TwilioProxy/1.1",
        }

    async def _post(
        self, path: str, body: bytes, headers: dict[str, str], since: float | None = None
    ) -> tuple[int, str]:
        """POST to the server; the latency counts from `since` (a scheduled time) if given."""
        assert self.in_flight is not None
        async with self.in_flight:
            sent = time.perf_counter() if since is None else since
            try:
                servers = self.config.servers
                self.sent += 1
                server = servers[self.sent % len(servers)]
                async with self.http.post(server + path, data=body, headers=headers) as response:
                    text = await response.text()
                    status = response.status
            except Exception as error:  # a refused or cut connection is the server's failure
                self.errors[f"{path.split('?')[0]}:{type(error).__name__}"] += 1
                return 0, ""
        self.webhook.add(time.perf_counter() - sent)
        if status >= 300:
            self.errors[f"{path.split('?')[0]}:{status}"] += 1
        return status, text

    async def _twilio(
        self, path: str, params: dict[str, str], since: float | None = None
    ) -> tuple[int, str]:
        """A signed Twilio webhook; `path` may carry a query, signed with it."""
        url = self.config.public_base_url + path
        return await self._post(path, urlencode(params).encode(), self._signed(url, params), since)

    def _local_path(self, url: str) -> str:
        """The path (and query) of a URL the server gave Twilio."""
        parts = urlsplit(url)
        return parts.path + (f"?{parts.query}" if parts.query else "")

    # ------------------------------------------------------------------ callers

    def _call_params(self, call: Call, **extra: str) -> dict[str, str]:
        return {
            "AccountSid": self.config.account_sid,
            "ApiVersion": "2010-04-01",
            "CallSid": call.sid,
            "CallStatus": "in-progress",
            "Called": TO_NUMBER,
            "Caller": call.number,
            "Direction": "inbound",
            "From": call.number,
            "To": TO_NUMBER,
            **extra,
        }

    async def _call(self, contact: Contact, due: float) -> None:
        number = f"{self.config.caller_prefix}{contact.seq % 10**8:08d}"
        call = Call(contact, number, "CA" + secrets.token_hex(16))
        self.calls[number] = call
        self.by_sid[call.sid] = call
        self.counts["calls"] += 1
        self.stub.incoming(call.sid, number, TO_NUMBER, self.config.public_base_url + STATUS_PATH)
        call.last_sent = time.perf_counter()
        status, twiml = await self._twilio(
            VOICE_PATH, self._call_params(call, CallStatus="ringing"), since=due
        )
        keys = iter(contact.keys)
        while status == 200 and call.queue is None:
            document = _parse(twiml)
            if document is None:
                break
            enqueue = document.find("Enqueue")
            if enqueue is not None:
                call.queue = (enqueue.text or "").strip()
                # From when the request that queued the caller went out: its offer may
                # arrive before its answer does.
                call.enqueued_at = call.last_sent
                break
            gather = document.find("Gather")
            redirect = document.find("Redirect")
            if gather is not None and gather.get("action"):
                action = self._local_path(gather.get("action"))
                node = action.split("?")[0].rstrip("/").rsplit("/", 1)[-1]
                prompt = " ".join(say.text or "" for say in gather.iter("Say"))
                choices = self.config.behaviour.ivr_choices
                digit = choose_key(node, prompt, next(keys, 0.5), choices)
                call.last_sent = time.perf_counter()
                status, twiml = await self._twilio(action, self._call_params(call, Digits=digit))
            elif redirect is not None and redirect.text:
                path = self._local_path(redirect.text.strip())
                call.last_sent = time.perf_counter()
                status, twiml = await self._twilio(path, self._call_params(call))
            else:
                break  # voicemail, a transfer or a goodbye: the call ends in the IVR
        if call.queue is None:
            call.outcome = "ivr" if status == 200 else "failed"
            self.counts[f"ivr_{call.outcome}"] += 1
            await self._hang_up(call, in_queue=False)
            return
        await self._wait_in_queue(call, document)

    async def _wait_in_queue(self, call: Call, document: ElementTree.Element) -> None:
        enqueue = document.find("Enqueue")
        wait_url = self._local_path(enqueue.get("waitUrl", "")) if enqueue is not None else ""
        action_url = self._local_path(enqueue.get("action", "")) if enqueue is not None else ""
        poller = self._spawn(self._hold_loop(call, wait_url)) if wait_url else None
        try:
            await asyncio.wait_for(call.connected.wait(), call.contact.patience_s)
        except TimeoutError:
            pass
        if poller is not None:
            poller.cancel()
        if call.left:
            call.outcome = "left"
            self.counts["left_queue"] += 1
            if action_url:  # the server's answer (voicemail, callback) is not followed
                await self._twilio(action_url, self._call_params(call, QueueResult="leave"))
            await self._hang_up(call, in_queue=False)
            return
        if call.connected_at is None and self.stub.hang_up(call.sid):
            waited = time.perf_counter() - (call.enqueued_at or time.perf_counter())
            call.outcome = "abandoned"
            self.counts["abandoned"] += 1
            self.tally.abandoned(call.queue or "", waited, self._threshold(call.queue))
            if action_url:
                await self._twilio(
                    action_url,
                    self._call_params(
                        call,
                        QueueResult="hangup",
                        QueueTime=str(int(waited)),
                        CallStatus="completed",
                    ),
                )
            await self._hang_up(call, in_queue=True)
            return
        await call.connected.wait()
        # The stub saw the redirect: the caller is in the conference until the agent ends it
        # (the server hangs the call up through the API; the stub reports it).

    async def _hold_loop(self, call: Call, wait_url: str) -> None:
        """Twilio's hold loop: the wait URL now and after each round of hold music."""
        while True:
            _status, twiml = await self._twilio(wait_url, self._call_params(call))
            document = _parse(twiml)
            if document is not None and document.find("Leave") is not None:
                call.left = True  # past the queue's maximum wait: out of <Enqueue>
                call.connected.set()
                return
            await asyncio.sleep(self.config.wait_poll_s)

    async def _hang_up(self, call: Call, *, in_queue: bool) -> None:
        self.stub.hang_up(call.sid)
        params = self._call_params(
            call, CallStatus="completed", CallDuration="30", SequenceNumber="1"
        )
        await self._twilio(STATUS_PATH, params)
        self.stub.forget(call.sid)

    def _stub_update(self, sid: str, form: dict[str, str]) -> None:
        """The server changed a call at the stub (its thread): a caller's redirect connects them."""
        call = self.by_sid.get(sid)
        if call is None or "Url" not in form or self.loop is None:
            return
        self.loop.call_soon_threadsafe(self._connected, call, time.perf_counter())

    def _connected(self, call: Call, at: float) -> None:
        if call.connected_at is not None or call.outcome == "abandoned":
            return
        call.connected_at = at
        call.outcome = "answered"
        call.connected.set()

    def _threshold(self, queue: str | None) -> float:
        return self.thresholds.get(queue or "", 20.0)

    # ------------------------------------------------------------------ emails

    async def _email(self, contact: Contact, due: float) -> None:
        seq = contact.seq
        if contact.reply_to in self.email_ids:
            address, parent = self.email_ids[contact.reply_to]
            subject = f"Re: Question {contact.reply_to}"
        else:
            address, parent = f"sim-customer-{seq}@example.com", None
            subject = f"Question {seq}"
        message_id = f"<sim-{self.config.seed}-{seq}-{secrets.token_hex(4)}@sim.example>"
        self.email_ids[seq] = (address, message_id)
        headers = [
            f"From: Simulated Customer {seq} <{address}>",
            f"To: {self.config.support_address}",
            f"Subject: {subject}",
            f"Message-ID: {message_id}",
            f"Date: {email.utils.formatdate(usegmt=True)}",
            "MIME-Version: 1.0",
            "Content-Type: text/plain; charset=utf-8",
        ]
        if parent:
            headers += [f"In-Reply-To: {parent}", f"References: {parent}"]
        body = "\r\n".join(headers) + "\r\n\r\nHello, I have a question about my account.\r\n"
        self.counts["emails"] += 1
        waiting = (contact, time.perf_counter())  # before: its offer may beat the answer
        self.emails[address].append(waiting)
        status, _ = await self._post(
            EMAIL_PATH,
            body.encode(),
            {
                "Content-Type": "message/rfc822",
                "X-Inbound-Secret": self.config.email_secret or "",
            },
            since=due,
        )
        if not 200 <= status < 300:
            self.emails[address].remove(waiting)

    # ------------------------------------------------------------------ agents

    async def _connect(self, agent: Agent, server: str) -> None:
        import socketio

        sio = socketio.AsyncClient(reconnection=False, handle_sigint=False, http_session=self.http)

        async def on_offer(data: dict) -> None:
            self._on_offer(agent, data)

        async def on_revoked(data: dict) -> None:
            self._revoked(data.get("reservation_id"), data.get("revoked_at"))

        async def on_status(data: dict) -> None:
            if data.get("status") == "available" and agent.free_since is None:
                agent.free_since = time.perf_counter()
            elif data.get("status") == "away" and not self.stopping.is_set():
                # Set away after missed offers: back to ready, as a person would be. Not free
                # meanwhile: the time to an offer counts from when they are ready again.
                agent.free_since = None
                self._spawn(self._ready_again(agent))

        sio.on("offer", on_offer, namespace="/agent")
        sio.on("offer_revoked", on_revoked, namespace="/agent")
        sio.on("status", on_status, namespace="/agent")
        sio.on("assigned", self._on_assigned, namespace="/agent")
        try:
            await sio.connect(
                server,
                transports=["websocket"],
                namespaces=["/agent"],
                auth={"token": agent.login.token},
                wait_timeout=60,
            )
            agent.sio = sio
            agent.free_since = time.perf_counter()
            await self._emit(agent, "set_status", {"status": "available"})
        except Exception as error:
            self.errors[f"connect:{type(error).__name__}"] += 1
            agent.sio = None

    async def _ready_again(self, agent: Agent) -> None:
        await asyncio.sleep(self.config.behaviour.think_mean_s)
        self.counts["ready_again"] += 1
        await self._emit(agent, "set_status", {"status": "available"})

    async def _emit(
        self,
        agent: Agent,
        event: str,
        payload: dict,
        late: str | None = None,
        lost: dict | None = None,
        done: asyncio.Future | None = None,
    ) -> dict | None:
        """An agent's event and its ack (None when refused). A refusal with code `late` is
        a race the simulator expects (the caller hung up as the agent accepted): counted, not
        an error. An ack that never came is None too, or `lost` when given. `done`, once
        set, says the event took effect: a refusal as `unavailable` (the server's database
        out of reach part way) is then not sent again."""
        for attempt in range(UNAVAILABLE_TRIES):
            try:
                ack = await agent.sio.call(event, payload, namespace="/agent", timeout=60)
            except Exception as error:
                self.errors[f"{event}:{type(error).__name__}"] += 1
                return lost
            if ack.get("ok") or ack.get("error", {}).get("code") != "unavailable":
                break
            self.counts[f"{event}_unavailable"] += 1
            # The server was too busy to reach its database: the agent clicks again.
            if attempt + 1 < UNAVAILABLE_TRIES:
                await asyncio.sleep(UNAVAILABLE_PAUSE_S)
            if done is not None and done.done():
                return {"ok": True}  # it went through before the server ran out of connections
        if not ack.get("ok"):
            code = ack.get("error", {}).get("code")
            if code == late:
                self.counts[f"{event}_too_late"] += 1
            else:
                self.errors[f"{event}:{code}"] += 1
            return None
        return ack

    def _on_offer(self, agent: Agent, offer: dict) -> None:
        now = time.perf_counter()
        interaction = offer.get("interaction") or {}
        interaction_id = interaction.get("id")
        reservation_id = offer.get("reservation_id")
        sent_at = _server_time(offer.get("server_time"))
        holder = self.open_offers.get(interaction_id)
        if holder is not None and holder[0] != id(agent) and holder[1] > sent_at:
            # Another agent's offer of it stands, as far as this client knows: a double
            # offer, unless that offer's revocation (on its way through another process)
            # says it was taken back before this one was sent.
            self.overlaps[holder[2]] = sent_at
        self.open_offers[interaction_id] = (
            id(agent),
            _server_time(offer.get("expires_at"), default=sent_at + _seconds_left(offer)),
            reservation_id,
        )
        self.reservations[reservation_id] = interaction_id
        self.offer_counts[interaction_id] += 1
        agent.held += 1
        contact, entered = self._contact_of(interaction)
        if contact is not None and entered is not None:
            base = max(entered, agent.free_since or entered)
            if agent.free_since is not None:
                self.offer.add(now - base)
        agent.free_since = None
        self.counts["offers"] += 1
        self._spawn(self._work(agent, offer, contact))

    def _contact_of(self, interaction: dict) -> tuple[Contact | None, float | None]:
        """The contact an offer is for, and when it last became ready for an offer."""
        sender = interaction.get("from") or ""
        if interaction.get("channel") == "voice":
            call = self.calls.get(sender)
            if call is None:
                return None, None
            self.call_of[interaction.get("id")] = call
            return call.contact, max(call.enqueued_at or call.last_sent, call.requeued_at)
        waiting = self.emails.get(sender)
        if waiting:
            contact, entered = waiting[0]
            return contact, entered
        return None, None

    def _revoked(self, reservation_id: Any, revoked_at: Any = None) -> None:
        """An offer taken back (rang out, the caller hung up): it may go to another agent."""
        overlapped_at = self.overlaps.pop(reservation_id, None)
        if overlapped_at is not None and _server_time(revoked_at) > overlapped_at:
            self.counts["double_offers"] += 1  # taken back only after the other was sent
        interaction_id = self.reservations.pop(reservation_id, None)
        if interaction_id is not None:
            self.open_offers.pop(interaction_id, None)
            if (call := self.call_of.get(interaction_id)) is not None:
                call.requeued_at = time.perf_counter()

    async def _work(self, agent: Agent, offer: dict, contact: Contact | None) -> None:
        interaction = offer["interaction"]
        interaction_id = interaction["id"]
        call = (
            self.calls.get(interaction.get("from") or "")
            if interaction.get("channel") == "voice"
            else None
        )
        # A contact's own answer goes to its first offer only; later offers are accepted.
        first = self.offer_counts[interaction_id] <= 1
        answer = contact.answer if contact is not None and first else "accept"
        try:
            if answer == "miss":
                await asyncio.sleep(_seconds_left(offer) + 0.5)
                self.counts["missed"] += 1
                self._offer_closed(offer, call)
                return
            await asyncio.sleep(contact.think_s if contact else 1.0)
            if answer == "reject":
                self._offer_closed(offer, call)
                await self._emit(
                    agent,
                    "reject",
                    {"reservation_id": offer["reservation_id"], "reason": "simulated"},
                )
                self.counts["rejected"] += 1
                return
            if offer["reservation_id"] not in self.reservations:
                self.counts["revoked_before_accept"] += 1
                return
            self.open_offers.pop(interaction_id, None)
            if not await self._accept(agent, offer["reservation_id"]):
                return
            self._answered(interaction, call, contact)
            await asyncio.sleep(
                contact.handle_s if contact else self.config.behaviour.handle_mean_s
            )
            ack = await self._emit(agent, "complete", {"interaction_id": interaction_id})
            if ack is not None and ack["interaction"]["status"] == "wrapup":
                await asyncio.sleep(contact.wrapup_s if contact else 1.0)
                await self._emit_quiet(agent, "wrapup_done", {"interaction_id": interaction_id})
        finally:
            agent.held -= 1
            if agent.held == 0:
                agent.free_since = time.perf_counter()

    async def _accept(self, agent: Agent, reservation_id: str) -> bool:
        """Accept an offer; True when the agent has the interaction. An ack lost to its
        timeout (a loaded server still working on it) is not a refusal: the server's
        `assigned` event, which the console would show, says whether the accept went
        through."""
        assigned = asyncio.get_running_loop().create_future()
        self.assignments[reservation_id] = assigned
        try:
            ack = await self._emit(
                agent,
                "accept",
                {"reservation_id": reservation_id},
                late="conflict",
                lost=LOST,
                done=assigned,
            )
            if ack is LOST:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(assigned), ASSIGNED_WAIT_S)
                if assigned.done():
                    self.counts["accept_ack_lost_but_assigned"] += 1
                return assigned.done()
            return ack is not None
        finally:
            self.assignments.pop(reservation_id, None)

    def _on_assigned(self, data: dict) -> None:
        waiter = self.assignments.get(data.get("reservation_id"))
        if waiter is not None and not waiter.done():
            waiter.set_result(True)

    async def _emit_quiet(self, agent: Agent, event: str, payload: dict) -> None:
        """An event whose refusal is expected now and then (wrap-up ended by its timer)."""
        try:
            await agent.sio.call(event, payload, namespace="/agent", timeout=60)
        except Exception as error:
            self.errors[f"{event}:{type(error).__name__}"] += 1

    def _offer_closed(self, offer: dict, call: Call | None) -> None:
        """This agent let the offer go (rejected, or it rang out)."""
        self.open_offers.pop(offer["interaction"]["id"], None)
        self.reservations.pop(offer["reservation_id"], None)
        if call is not None:
            call.requeued_at = time.perf_counter()

    def _answered(self, interaction: dict, call: Call | None, contact: Contact | None) -> None:
        interaction_id = interaction["id"]
        if interaction_id in self.answered_interactions:
            return
        self.answered_interactions.add(interaction_id)
        now = time.perf_counter()
        queue = interaction.get("queue") or ""
        if call is not None:
            if call.outcome == "abandoned":
                self.counts["accepted_after_hang_up"] += 1
                return
            self._connected(call, now)
            self.counts["answered"] += 1
            entered = call.enqueued_at or call.last_sent
            # Answered when Twilio was told to connect the caller (the redirect the stub saw),
            # as the caller hears it: a loaded server's ack to the agent comes seconds later.
            answered_at = call.connected_at if call.connected_at is not None else now
            self.tally.answered(queue, answered_at - entered, self._threshold(queue))
            return
        waiting = self.emails.get(interaction.get("from") or "")
        if contact is not None and waiting:
            _contact, entered = waiting.popleft()
            self.counts["answered"] += 1
            self.counts["emails_answered"] += 1
            self.tally.answered(queue, now - entered, self._threshold(queue))
        else:
            self.counts["foreign_answered"] += 1

    async def _disconnect(self) -> None:
        await asyncio.gather(
            *(agent.sio.disconnect() for agent in self.agents if agent.sio is not None),
            return_exceptions=True,
        )

    # ------------------------------------------------------------------ the board

    async def board(self) -> dict[str, Any]:
        """A supervisor's `board` snapshot."""
        import socketio

        snapshot: asyncio.Future = asyncio.get_running_loop().create_future()
        sio = socketio.AsyncClient(reconnection=False, handle_sigint=False, http_session=self.http)

        async def on_board(data: dict) -> None:
            if not snapshot.done():
                snapshot.set_result(data)

        sio.on("board", on_board, namespace="/supervisor")
        await sio.connect(
            self.config.base_url,
            transports=["websocket"],
            namespaces=["/supervisor"],
            auth={"token": self.supervisor.token},
            wait_timeout=60,
        )
        try:
            return await asyncio.wait_for(snapshot, 60)
        finally:
            await sio.disconnect()

    # ------------------------------------------------------------------ the result

    def summary(self, before: dict, after: dict, sending_s: float) -> dict[str, Any]:
        """Ground truth, the board's difference over the run, and Erlang's prediction."""
        mine = truth.figures(self.tally.totals())
        theirs = truth.figures(truth.board_difference(before, after))
        comparison = truth.compare(mine, theirs)
        behaviour = self.config.behaviour
        duration = self.config.duration_s or sending_s
        rate = self.config.profile.mean_rate(duration)
        thresholds = list(self.thresholds.values()) or [20.0]
        expected = truth.prediction(
            rate,
            sum(agent.sio is not None for agent in self.agents),
            behaviour.agent_busy_mean_s,
            thresholds[0],
            behaviour.patience_mean_s,
        )
        return {
            "profile": self.config.profile.name,
            "seed": self.config.seed,
            "sending_s": round(sending_s, 1),
            "calls": self.counts["calls"],
            "emails": self.counts["emails"],
            "calls_per_s": round(self.counts["calls"] / sending_s, 2) if sending_s else None,
            "truth": mine,
            "board": theirs,
            "board_vs_truth": comparison,
            "erlang": expected,
            "webhook_p50_ms": self.webhook.p(50),
            "webhook_p99_ms": self.webhook.p(99),
            "offer_p50_ms": self.offer.p(50),
            "offer_p99_ms": self.offer.p(99),
            # An overlap never taken back: the first offer was accepted while another stood.
            "double_offers": self.counts["double_offers"] + len(self.overlaps),
            "counts": dict(self.counts),
            "errors": dict(self.errors),
        }


def report(result: dict[str, Any]) -> str:
    """The end-of-run table: the simulator's truth next to the board, and Erlang's view."""
    mine, theirs = result["truth"], result["board"]
    lines = [(name, mine[name], theirs[name]) for name in mine]
    text = [truth.render(lines)]
    text.append(f"board vs truth, largest error: {result['board_vs_truth']['max_error']}")
    for model in ("erlang_a", "erlang_c"):
        expected = result["erlang"].get(model, {})
        text.append(
            f"{model} for the mean load ({result['erlang']['traffic_erlangs']} erlangs "
            f"on {result['erlang']['agents']} agents): {expected}"
        )
    text.append(
        f"webhook p50/p99 {result['webhook_p50_ms']}/{result['webhook_p99_ms']} ms, offer "
        f"p50/p99 {result['offer_p50_ms']}/{result['offer_p99_ms']} ms, double offers "
        f"{result['double_offers']}, errors {result['errors'] or 'none'}"
    )
    return "\n".join(text)


def _parse(twiml: str) -> ElementTree.Element | None:
    try:
        return ElementTree.fromstring(twiml)  # noqa: S314  (our own server's TwiML)
    except ElementTree.ParseError:
        return None


def _server_time(value: Any, default: float = float("inf")) -> float:
    """A server's ISO 8601 time as a Unix time (`default` when missing or malformed)."""
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except (TypeError, ValueError):
        return default


def _seconds_left(offer: dict) -> float:
    """How long an offer rings, by the server's clock (its expiry less its time of sending)."""
    expires = _server_time(offer.get("expires_at"), default=math.nan)
    sent = _server_time(offer.get("server_time"), default=math.nan)
    if math.isnan(expires) or math.isnan(sent):
        return float(offer.get("timeout_s") or 15)
    return max(0.0, expires - sent)
