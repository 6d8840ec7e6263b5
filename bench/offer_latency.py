"""Offer latency: a signed incoming call to the `offer` on an agent's websocket, 1,000 agents.

    .venv/bin/python bench/offer_latency.py [--agents 1000] [--rate 50] [--seconds 20]
        [--hold] [--workers 1] [--client-procs 2] [--talk-s 1] [--step-seconds 10]
        [--ladder 5,10,15,20,30,40,75,100,150,200,300,400] [--saturation-ms 100]
        [--pg-url postgresql://postgres@127.0.0.1:5432] [--redis-url redis://127.0.0.1:6379/12]

The server runs as production runs it: `gunicorn -k gevent -w N wsgi:app` with
SOCKETIO_ASYNC_MODE=gevent and REDIS_URL set, so Socket.IO emits go through the Redis
message queue (SOCKETIO_MESSAGE_QUEUE defaults to REDIS_URL): even with one process, every
offer is published to Redis and delivered to the socket by the process's listener. One
`flask worker` runs the routing timers beside it. Default `--workers 1`: the README's
production layout is one gevent worker per process (behind a sticky balancer); the agents
use the websocket transport only, so several workers (`--workers 2`: the kernel spreads
the sockets) need no stickiness. Each gevent worker gets `--worker-connections` = agents +
1,000 by default: gunicorn's default, 1,000 per worker, is the size of the worker's
connection pool, so 1,000 agent sockets would hold every slot and webhooks would wait.
Twilio REST calls (accept redirects the caller and dials the agent; complete hangs up) go
to the local stub (`python -m contact_center.simulate.twilio_stub`, TWILIO_API_BASE_URL).
Throwaway PostgreSQL database `cc_bench_offer_<pid>` (migrated with `flask db upgrade`,
dropped at the end); Redis DB `--redis-url` (12 by default) flushed before and after.

Agents: `--agents` users with voice capacity 1 and an API token each, inserted through the
app in this process; `--client-procs` spawned processes each hold their share as
python-socketio AsyncClients (websocket transport, `auth={"token": ...}`) in one asyncio
loop, and every agent goes available with `set_status`. Two ways to answer an offer:
- default (the call cycle): accept at once, talk `--talk-s`, complete (and end wrap-up if
  the queue has any), so the agent is back in the idle line. That is each call's real work
  on the server (webhook and offer; accept with two Twilio requests; complete with one),
  and phases can be as long as wanted: at R calls/s about R x (talk + round trips) agents
  are busy at a time, and the fewest free agents seen is printed.
- `--hold`: agents never answer, so the server does only the offers (one per agent: the
  default queue's offer timeout is raised so nothing rings out during the run). A phase
  sends at most as many calls as agents are free, and the search ends when none are.
Each agent process also times its own event loop (`agent_loop_lag_max_ms`): a busy client
would show there, not as server latency.

Calls: signed `POST /webhooks/twilio/voice` (X-Twilio-Signature over PUBLIC_BASE_URL, as
Twilio signs), each a new CallSid from a caller number of its own, sent open-loop from this
process (aiohttp) at a fixed rate: call i is due at start + i / rate and its latency counts
from that scheduled time (no coordinated omission) to the moment an agent process's
handler sees the `offer` whose interaction comes from that number. Both ends read
CLOCK_MONOTONIC (`time.perf_counter`), which every process on the machine shares. After a
phase the bench waits up to `--drain-s` for the last offers; callers still waiting then
hang up (a signed `completed` status callback, as Twilio sends) and count as `lost`, with
the time they waited as a lower bound of their latency (`p99_is_lower_bound` when p99 is
one of them). Then, in the call cycle, it waits until every agent is free again.

Phases: a warm-up (`--warmup` s at up to 10 calls/s, after one call alone, which creates
the default queue as the first call of a fresh deployment does), the target phase (`--rate`
for `--seconds`; the target is p99 < 50 ms at 50 calls/s with 1,000 agents), then the
saturation search over `--ladder`, `--step-seconds` each: upwards from the target rate
while p99 stays under `--saturation-ms` (100 ms), or, if the target phase is already over
it, upwards from the bottom of the ladder; it stops at the first rate whose p99 passes.
`saturation_rate_per_s` is the lowest rate tried whose p99 passed, `last_rate_under_per_s`
the highest below it that did not. CPU per phase (from /proc and Redis INFO, over the
sending window) splits the machine's busy time between gunicorn, the flask worker,
PostgreSQL, Redis, the Twilio stub, the agent processes and this sender (all share the
cores); "other" is the rest of the machine.
Human-readable lines first, then one JSON object as the last line.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import multiprocessing
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode, urlparse

import psycopg
import redis
from bench_common import (
    ROOT,
    free_port,
    machine_busy_s,
    ms,
    percentile,
    proc_stat,
    start,
    stop,
    tail,
    tree_cpu_s,
    wait_http,
    with_db,
)
from psycopg import sql

VENV_BIN = ROOT / ".venv" / "bin"
VOICE_PATH = "/webhooks/twilio/voice"
STATUS_PATH = "/webhooks/twilio/voice/status"
PUBLIC_BASE_URL = "http://bench.local"  # what both sides sign against; never resolved
TO_NUMBER = "+441632960000"  # Ofcom drama range
CALLER_PREFIX = "+4477009"  # + 5 digits: one number per call of the run
LADDER = "5,10,15,20,30,40,75,100,150,200,300,400"
WARMUP_RATE = 10.0  # calls/s at most
HOLD_OFFER_TIMEOUT_S = 3600  # hold mode: offers ring until the bench ends


# ---------------------------------------------------------------- agents (client processes)


class Agents:
    """One process's share of the agents: AsyncClients in one event loop."""

    def __init__(self, url: str, tokens: list[str], talk_s: float | None) -> None:
        self.url = url
        self.tokens = tokens
        self.talk_s = talk_s  # None: hold every offer (it rings until the bench ends)
        self.clients: list = []
        self.offers: list[tuple[str | None, float]] = []  # (caller, perf_counter at arrival)
        self.accept_s: list[float] = []  # offer arrival -> accept ack
        self.errors: Counter = Counter()
        self.free = 0
        self.min_free = 0
        self.disconnects = 0
        self.lag_max = 0.0
        self.tasks: set[asyncio.Task] = set()

    async def start(self, concurrency: int) -> float:
        import aiohttp

        started = time.perf_counter()
        # One session for every socket; no pool limit (a websocket holds its connection).
        self.http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0), cookie_jar=aiohttp.DummyCookieJar()
        )
        limit = asyncio.Semaphore(concurrency)
        await asyncio.gather(*(self._connect(token, limit) for token in self.tokens))
        self.min_free = self.free
        self.tasks.add(asyncio.create_task(self._watch_lag()))
        return time.perf_counter() - started

    async def _connect(self, token: str, limit: asyncio.Semaphore) -> None:
        import socketio

        sio = socketio.AsyncClient(reconnection=False, handle_sigint=False, http_session=self.http)

        async def on_offer(data):
            await self._on_offer(sio, data)

        async def on_disconnect(reason=None):
            self.disconnects += 1

        sio.on("offer", on_offer, namespace="/agent")
        sio.on("disconnect", on_disconnect, namespace="/agent")
        async with limit:
            try:
                await sio.connect(
                    self.url,
                    transports=["websocket"],
                    namespaces=["/agent"],
                    auth={"token": token},
                    wait_timeout=60,
                )
                ack = await sio.call(
                    "set_status", {"status": "available"}, namespace="/agent", timeout=60
                )
            except Exception as exc:
                self.errors[f"connect:{type(exc).__name__}"] += 1
                return
        if not ack.get("ok"):
            self.errors[f"set_status:{ack.get('error', {}).get('code')}"] += 1
            return
        self.clients.append(sio)
        self.free += 1

    async def _on_offer(self, sio, data: dict) -> None:
        arrived = time.perf_counter()
        interaction = data.get("interaction") or {}
        self.offers.append((interaction.get("from"), arrived))
        self.free -= 1
        self.min_free = min(self.min_free, self.free)
        if self.talk_s is None:
            return
        task = asyncio.create_task(self._work(sio, data, arrived))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _call(self, sio, event: str, payload: dict) -> dict | None:
        try:
            ack = await sio.call(event, payload, namespace="/agent", timeout=60)
        except Exception as exc:
            self.errors[f"{event}:{type(exc).__name__}"] += 1
            return None
        if not ack.get("ok"):
            self.errors[f"{event}:{ack.get('error', {}).get('code')}"] += 1
            return None
        return ack

    async def _work(self, sio, offer: dict, arrived: float) -> None:
        """Accept at once, talk, complete, end wrap-up: the agent is free again."""
        try:
            ack = await self._call(sio, "accept", {"reservation_id": offer["reservation_id"]})
            if ack is None:
                return
            self.accept_s.append(time.perf_counter() - arrived)
            if self.talk_s:
                await asyncio.sleep(self.talk_s)
            interaction_id = offer["interaction"]["id"]
            ack = await self._call(sio, "complete", {"interaction_id": interaction_id})
            if ack is not None and ack["interaction"]["status"] == "wrapup":
                await self._call(sio, "wrapup_done", {"interaction_id": interaction_id})
        finally:
            self.free += 1

    async def _watch_lag(self) -> None:
        """How late this loop wakes up: a busy client process delays the offers it sees."""
        while True:
            before = time.perf_counter()
            await asyncio.sleep(0.01)
            self.lag_max = max(self.lag_max, time.perf_counter() - before - 0.01)

    def collect(self) -> dict:
        """What happened since the last collect."""
        result = {
            "offers": self.offers,
            "accept_s": self.accept_s,
            "errors": dict(self.errors),
            "free": self.free,
            "min_free": self.min_free,
            "disconnects": self.disconnects,
            "lag_max": self.lag_max,
            "connected": len(self.clients),
        }
        self.offers, self.accept_s, self.errors = [], [], Counter()
        self.min_free, self.lag_max = self.free, 0.0
        return result

    async def stop(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*(sio.disconnect() for sio in self.clients), return_exceptions=True)
        await self.http.close()


async def _serve(conn, url: str, tokens: list[str], talk_s: float | None, concurrency: int):
    agents = Agents(url, tokens, talk_s)
    loop = asyncio.get_running_loop()
    connect_s = await agents.start(concurrency)
    conn.send({"connect_s": connect_s, **agents.collect()})
    while True:
        command = await loop.run_in_executor(None, conn.recv)
        if command == "collect":
            conn.send(agents.collect())
        elif command == "stop":
            await agents.stop()
            conn.send(agents.collect())
            return


def agent_process(conn, url: str, tokens: list[str], talk_s: float | None, concurrency: int):
    """Entry point of an agent process (spawned)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us
    asyncio.run(_serve(conn, url, tokens, talk_s, concurrency))


class AgentProcesses:
    def __init__(
        self, url: str, tokens: list[str], procs: int, talk_s: float | None, concurrency: int
    ) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.conns, self.procs = [], []
        for index in range(procs):
            share = tokens[index::procs]
            parent, child = ctx.Pipe()
            proc = ctx.Process(
                target=agent_process,
                args=(child, url, share, talk_s, max(1, concurrency // procs)),
                daemon=True,
            )
            proc.start()
            self.conns.append(parent)
            self.procs.append(proc)

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def ready(self, timeout: float) -> list[dict]:
        replies = []
        for conn in self.conns:
            if not conn.poll(timeout):
                raise RuntimeError(f"agents not connected within {timeout} s")
            replies.append(conn.recv())
        return replies

    def ask(self, command: str = "collect", timeout: float = 60) -> list[dict]:
        for conn in self.conns:
            conn.send(command)
        replies = []
        for conn in self.conns:
            if not conn.poll(timeout):
                raise RuntimeError(f"an agent process did not answer {command!r}")
            replies.append(conn.recv())
        return replies

    def stop(self) -> None:
        try:
            self.ask("stop", timeout=30)
        except (OSError, EOFError, RuntimeError):
            pass
        for proc in self.procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()
                proc.join()


# ---------------------------------------------------------------- calls (the sender)


class Calls:
    """Signed incoming calls, as Twilio posts them; each from a number of its own."""

    def __init__(self, account_sid: str, auth_token: str) -> None:
        from twilio.request_validator import RequestValidator

        self.account_sid = account_sid
        self.validator = RequestValidator(auth_token)
        self.seq = 0
        self.call_sids: dict[str, str] = {}  # caller -> CallSid

    def _signed(self, path: str, params: dict[str, str]) -> tuple[bytes, dict[str, str]]:
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": self.validator.compute_signature(PUBLIC_BASE_URL + path, params),
            "User-Agent": "TwilioProxy/1.1",
        }
        return urlencode(params).encode(), headers

    def make(self) -> tuple[str, bytes, dict[str, str]]:
        """A new call: (caller, body, headers) for POST VOICE_PATH."""
        self.seq += 1
        if self.seq >= 100_000:
            raise RuntimeError("out of caller numbers: shorten the phases")
        caller = f"{CALLER_PREFIX}{self.seq:05d}"
        self.call_sids[caller] = "CA" + secrets.token_hex(16)
        params = {
            "AccountSid": self.account_sid,
            "ApiVersion": "2010-04-01",
            "CallSid": self.call_sids[caller],
            "CallStatus": "ringing",
            "Called": TO_NUMBER,
            "Caller": caller,
            "Direction": "inbound",
            "From": caller,
            "FromCountry": "GB",
            "To": TO_NUMBER,
            "ToCountry": "GB",
        }
        return (caller, *self._signed(VOICE_PATH, params))

    def hang_up(self, caller: str) -> tuple[bytes, dict[str, str]]:
        """The caller gives up: the status callback Twilio posts for it."""
        params = {
            "AccountSid": self.account_sid,
            "ApiVersion": "2010-04-01",
            "CallSid": self.call_sids[caller],
            "CallStatus": "completed",
            "CallDuration": "60",
            "SequenceNumber": "1",
            "Direction": "inbound",
            "From": caller,
            "To": TO_NUMBER,
        }
        return self._signed(STATUS_PATH, params)


@dataclass
class Sent:
    """The calls of one phase, as sent."""

    scheduled: dict[str, float] = field(default_factory=dict)  # caller -> due time
    ok: set[str] = field(default_factory=set)  # callers whose webhook got 2xx
    answer_s: list[float] = field(default_factory=list)  # scheduled -> webhook answer
    errors: Counter = field(default_factory=Counter)
    max_send_lag: float = 0.0
    started: float = 0.0
    last_sent: float = 0.0
    ended: float = 0.0


async def post(session, url: str, body: bytes, headers: dict) -> int | str:
    """The response status, or the name of the transport error."""
    import aiohttp

    try:
        async with session.post(url, data=body, headers=headers) as resp:
            await resp.read()
            return resp.status
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        return type(exc).__name__


async def send_calls(session, base_url: str, calls: list, rate: float) -> Sent:
    """POST every call open-loop: call i at start + i / rate."""
    sent = Sent()
    tasks = []

    async def send(caller: str, body: bytes, headers: dict, scheduled: float) -> None:
        status = await post(session, base_url + VOICE_PATH, body, headers)
        if isinstance(status, int) and 200 <= status < 300:
            sent.ok.add(caller)
            sent.answer_s.append(time.perf_counter() - scheduled)
        else:
            sent.errors[str(status)] += 1

    start = time.perf_counter() + 0.05
    sent.started = start
    for index, (caller, body, headers) in enumerate(calls):
        scheduled = start + index / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            sent.max_send_lag = max(sent.max_send_lag, -delay)
        sent.scheduled[caller] = scheduled
        tasks.append(asyncio.create_task(send(caller, body, headers, scheduled)))
    sent.last_sent = time.perf_counter()
    await asyncio.gather(*tasks)
    sent.ended = time.perf_counter()
    return sent


# ---------------------------------------------------------------- CPU accounting


PARTS = ("gunicorn", "worker", "postgres", "redis", "stub", "agents", "sender")


class Probe:
    """CPU seconds so far of every part of the bench, and of the whole machine."""

    def __init__(self, pids: dict[str, list[int]], redis_client: redis.Redis) -> None:
        self.pids = pids
        self.redis = redis_client

    def snapshot(self) -> dict[str, float]:
        info = self.redis.info("cpu")
        result = {
            name: sum(tree_cpu_s(pid) for pid in self.pids[name])
            for name in ("gunicorn", "worker", "postgres", "stub", "agents")
        }
        result["redis"] = float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
        result["sender"] = time.process_time()
        result["machine"] = machine_busy_s()
        result["at"] = time.perf_counter()
        return result


def cpu_split(before: dict[str, float], after: dict[str, float], calls: int) -> dict:
    elapsed = after["at"] - before["at"]
    used = {k: after[k] - before[k] for k in (*PARTS, "machine")}
    ours = sum(used[k] for k in PARTS)
    result = {f"{k}_cores": round(used[k] / elapsed, 3) for k in PARTS}
    result["machine_cores"] = round(used["machine"] / elapsed, 3)
    result["other_cores"] = round(max(used["machine"] - ours, 0.0) / elapsed, 3)
    result["server_ms_per_call"] = round(
        sum(used[k] for k in ("gunicorn", "worker", "postgres", "redis", "stub"))
        * 1000
        / max(calls, 1),
        2,
    )
    result["gunicorn_ms_per_call"] = round(used["gunicorn"] * 1000 / max(calls, 1), 2)
    return result


# ---------------------------------------------------------------- phases


def latency_stats(values: list[tuple[float, bool]]) -> dict:
    """Percentiles of (seconds, is_lower_bound) pairs: a call never offered counts with the
    time it waited before hanging up, a lower bound of its latency."""
    ordered = sorted(values)

    def at(q: float) -> tuple[float | None, bool]:
        if not ordered:
            return None, False
        value, bound = ordered[min(len(ordered) - 1, int(q * len(ordered)))]
        return ms(value), bound

    result = {}
    for name, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0)):
        result[f"{name}_ms"], bound = at(q)
        if bound:
            result[f"{name}_is_lower_bound"] = True
    return result


@dataclass
class Bench:
    args: argparse.Namespace
    base_url: str
    calls: Calls
    agents: AgentProcesses
    probe: Probe
    server: subprocess.Popen
    connected: int
    offers_seen: dict[str, float] = field(default_factory=dict)  # caller -> offer arrival
    duplicates: int = 0
    free: int = 0

    def collect(self) -> dict:
        """Gather what the agent processes saw since the last collect."""
        total = {"accept_s": [], "errors": Counter(), "min_free": 0, "disconnects": 0}
        total["lag_max"], self.free = 0.0, 0
        for reply in self.agents.ask():
            for caller, arrived in reply["offers"]:
                if caller in self.offers_seen:
                    self.duplicates += 1
                else:
                    self.offers_seen[caller] = arrived
            total["accept_s"] += reply["accept_s"]
            total["errors"].update(reply["errors"])
            total["min_free"] += reply["min_free"]
            total["disconnects"] += reply["disconnects"]
            total["lag_max"] = max(total["lag_max"], reply["lag_max"])
            self.free += reply["free"]
        return total

    async def phase(self, session, name: str, rate: float, seconds: float) -> dict:
        args = self.args
        self.collect()  # start afresh
        count = max(1, round(rate * seconds))
        if args.hold and count > self.free:
            print(f"{name}: {count} calls wanted, {self.free} agents free: sending {self.free}")
            count, seconds = self.free, self.free / rate
        if count <= 0:
            raise RuntimeError("no free agent left: hold mode needs more --agents")
        calls = [self.calls.make() for _ in range(count)]
        duplicates_before = self.duplicates
        before = self.probe.snapshot()
        sent = await send_calls(session, self.base_url, calls, rate)
        after = self.probe.snapshot()
        stats = {"accept_s": [], "errors": Counter(), "disconnects": 0, "lag_max": 0.0}
        min_free: int | None = None

        def gather_stats() -> None:
            nonlocal min_free
            total = self.collect()
            for key in ("accept_s", "errors", "disconnects"):
                stats[key] += total[key]
            stats["lag_max"] = max(stats["lag_max"], total["lag_max"])
            min_free = total["min_free"] if min_free is None else min(min_free, total["min_free"])

        # The last offers; callers still waiting after --drain-s hang up (as they would).
        deadline = sent.ended + args.drain_s
        while True:
            gather_stats()
            waiting = [c for c in sent.ok if c not in self.offers_seen]
            if not waiting or time.perf_counter() > deadline:
                break
            await asyncio.sleep(0.1)
        gave_up = time.perf_counter()
        hangups = await asyncio.gather(
            *(post(session, self.base_url + STATUS_PATH, *self.calls.hang_up(c)) for c in waiting)
        )
        stats["errors"].update(
            f"hang-up:{h}" for h in hangups if not (isinstance(h, int) and h < 300)
        )
        # Every agent free again (unless holding), so the next phase starts level.
        settle = time.perf_counter() + args.drain_s
        while not args.hold and self.free < self.connected and time.perf_counter() < settle:
            await asyncio.sleep(0.2)
            gather_stats()
        if not args.hold and self.free < self.connected:
            print(f"  {self.connected - self.free} agents still busy: the next phase inherits them")
        if self.server.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {self.server.returncode}")
        latencies = [
            (self.offers_seen[c] - sent.scheduled[c], False)
            if c not in waiting
            else (gave_up - sent.scheduled[c], True)
            for c in sent.ok
        ]
        answers = sorted(sent.answer_s)
        accept_s = sorted(stats["accept_s"])
        result = {
            "phase": name,
            "rate_per_s": rate,
            "seconds": round(seconds, 2),
            "calls": count,
            "webhook_2xx": len(sent.ok),
            "offered": len(sent.ok) - len(waiting),
            "lost": len(waiting),
            "duplicate_offers": self.duplicates - duplicates_before,
            "errors": dict(sent.errors + stats["errors"]),
            **latency_stats(latencies),
            "webhook_p50_ms": ms(percentile(answers, 0.5)),
            "webhook_p99_ms": ms(percentile(answers, 0.99)),
            "accept_p50_ms": ms(percentile(accept_s, 0.5)),
            "accept_p99_ms": ms(percentile(accept_s, 0.99)),
            "achieved_rate_per_s": round((count - 1) / max(sent.last_sent - sent.started, 1e-3), 1),
            "max_send_lag_ms": ms(sent.max_send_lag),
            "agent_loop_lag_max_ms": ms(stats["lag_max"]),
            "fewest_free_agents": min_free,
            "free_agents_after": self.free,
            "disconnects": stats["disconnects"],
            "cpu": cpu_split(before, after, count),
        }
        print(describe(result), flush=True)
        return result


def describe(r: dict) -> str:
    cpu = r["cpu"]
    parts = ", ".join(f"{k} {cpu[f'{k}_cores']:.2f}" for k in PARTS)
    return (
        f"{r['phase']}: {r['rate_per_s']:g} calls/s for {r['seconds']:g} s -> {r['offered']} "
        f"offered of {r['webhook_2xx']} 2xx ({r['calls']} sent), lost {r['lost']}, duplicate "
        f"offers {r['duplicate_offers']}, errors {r['errors'] or 0}\n"
        f"  send -> offer p50 {r['p50_ms']} ms, p90 {r['p90_ms']} ms, p99 {r['p99_ms']} ms"
        f"{' (at least: calls lost)' if r.get('p99_is_lower_bound') else ''}, "
        f"max {r['max_ms']} ms; webhook answer p50 {r['webhook_p50_ms']} / p99 "
        f"{r['webhook_p99_ms']} ms; accept ack p50 {r['accept_p50_ms']} / p99 "
        f"{r['accept_p99_ms']} ms\n"
        f"  achieved {r['achieved_rate_per_s']}/s, latest send {r['max_send_lag_ms']} ms late, "
        f"agent loop lag max {r['agent_loop_lag_max_ms']} ms, fewest free agents "
        f"{r['fewest_free_agents']}, disconnects {r['disconnects']}\n"
        f"  cores: {parts}; machine {cpu['machine_cores']:.2f} of {os.cpu_count()} "
        f"({cpu['other_cores']:.2f} by other processes); server CPU {cpu['server_ms_per_call']} "
        f"ms per call (gunicorn {cpu['gunicorn_ms_per_call']})"
    )


def saturated(r: dict, limit_ms: float) -> bool:
    return r["p99_ms"] is None or r["p99_ms"] > limit_ms


# ---------------------------------------------------------------- services


def logged_exceptions(log: Path) -> Counter:
    """The last line of each traceback in a log (the exception), counted."""
    found: Counter = Counter()
    inside = False
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("Traceback (most recent call last)"):
            inside = True
        elif inside and line and not line[0].isspace():
            found[line[:160]] += 1
            inside = False
    return found


def create_agents(env: dict, count: int) -> list[str]:
    """`count` agents (voice capacity 1) with an API token each; returns the tokens."""
    sys.path.insert(0, str(ROOT))
    from werkzeug.security import generate_password_hash

    from contact_center import create_app
    from contact_center.agents.models import User
    from contact_center.agents.services import issue_token
    from contact_center.extensions import db

    keys = ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN")
    app = create_app({key: env[key] for key in keys})
    password_hash = generate_password_hash(secrets.token_urlsafe(16))  # nobody signs in
    with app.app_context():
        users = [
            User(
                username=f"bench-agent-{index:05d}",
                display_name=f"Bench agent {index}",
                password_hash=password_hash,
                role="agent",
                capacity={"voice": 1},
            )
            for index in range(count)
        ]
        db.session.add_all(users)
        db.session.commit()
        db.session().expire_on_commit = False  # each token's commit would reload every user
        tokens = [issue_token(user)[0] for user in users]
        db.session.remove()
        db.engine.dispose()
    return tokens


def first_call(base_url: str, calls: Calls) -> int:
    _caller, body, headers = calls.make()
    host, port = urlparse(base_url).netloc.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    conn.request("POST", VOICE_PATH, body, headers)
    status = conn.getresponse().status
    conn.close()
    return status


# ---------------------------------------------------------------- main


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=50.0, help="target phase, calls/s")
    parser.add_argument("--seconds", type=float, default=20.0, help="target phase length")
    parser.add_argument("--ladder", default=LADDER, help="saturation search rates, calls/s")
    parser.add_argument("--step-seconds", type=float, default=10.0)
    parser.add_argument("--saturation-ms", type=float, default=100.0)
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds at up to 10/s")
    parser.add_argument("--workers", type=int, default=1, help="gunicorn gevent workers")
    parser.add_argument("--worker-connections", type=int, default=None)
    parser.add_argument("--client-procs", type=int, default=2, help="agent processes")
    parser.add_argument("--connect-concurrency", type=int, default=50)
    parser.add_argument("--talk-s", type=float, default=1.0, help="accept -> complete")
    parser.add_argument(
        "--hold", action="store_true", help="agents never answer: one offer each, offers only"
    )
    parser.add_argument("--drain-s", type=float, default=30.0)
    parser.add_argument("--max-in-flight", type=int, default=1000, help="webhooks at once")
    parser.add_argument("--app", default="wsgi:app", help="the WSGI app gunicorn serves")
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/12")
    args = parser.parse_args()
    if urlparse(args.redis_url).path.strip("/") in ("", "0"):
        parser.error("--redis-url must name a dedicated DB other than 0 (it is flushed)")
    if min(args.agents, args.rate, args.seconds, args.workers, args.client_procs) <= 0:
        parser.error("--agents, --rate, --seconds, --workers and --client-procs must be positive")
    args.ladder = [float(r) for r in args.ladder.split(",") if r.strip()]
    if args.worker_connections is None:
        args.worker_connections = args.agents + 1000
    return args


async def run(bench: Bench) -> tuple[dict, list[dict]]:
    """Warm-up, the target phase, then the saturation search; returns (target, every step)."""
    import aiohttp

    args = bench.args
    connector = aiohttp.TCPConnector(limit=args.max_in_flight)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        if args.warmup > 0:  # gently: a saturated warm-up would leave a backlog behind
            await bench.phase(session, "warm-up", min(args.rate, WARMUP_RATE), args.warmup)
        target = await bench.phase(session, "target", args.rate, args.seconds)
        steps = [target]
        # Up from the target while it holds, else up from the bottom to find where it breaks.
        below = saturated(target, args.saturation_ms)
        for rate in (r for r in args.ladder if (r < args.rate if below else r > args.rate)):
            if args.hold and bench.free == 0:
                print("hold mode: no free agent left, the search ends here")
                break
            step = await bench.phase(session, f"step {rate:g}/s", rate, args.step_seconds)
            steps.append(step)
            if saturated(step, args.saturation_ms):
                break
    return target, sorted(steps, key=lambda step: step["rate_per_s"])


def main() -> int:
    args = parse_args()
    db_name = f"cc_bench_offer_{os.getpid()}"
    admin_url = with_db(args.pg_url, "postgres")
    database_url = with_db(args.pg_url, db_name)
    account_sid = "AC" + secrets.token_hex(16)
    auth_token = secrets.token_hex(16)
    stub_port, port = free_port(), free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": args.redis_url,
        "SECRET_KEY": secrets.token_hex(32),
        "SOCKETIO_ASYNC_MODE": "gevent",
        "TWILIO_ACCOUNT_SID": account_sid,
        "TWILIO_AUTH_TOKEN": auth_token,
        "TWILIO_API_BASE_URL": f"http://127.0.0.1:{stub_port}",
        "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
    }
    env.pop("SOCKETIO_MESSAGE_QUEUE", None)  # defaults to REDIS_URL, as in production
    if args.hold:
        env["OFFER_TIMEOUT_S"] = str(HOLD_OFFER_TIMEOUT_S)
    rclient = redis.Redis.from_url(args.redis_url, decode_responses=True)
    log_dir = Path(tempfile.mkdtemp(prefix="cc_bench_offer_"))
    logs = {name: log_dir / f"{name}.log" for name in ("gunicorn", "worker", "stub")}
    procs: dict[str, subprocess.Popen] = {}
    agents: AgentProcesses | None = None
    created = False
    result: dict = {}
    try:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db_name)))
            created = True
            pg_version = conn.execute("SHOW server_version").fetchone()[0]
            postmaster_pid = int(proc_stat(conn.info.backend_pid)[1])  # the backend's parent
        rclient.flushdb()
        redis_version = rclient.info("server")["redis_version"]
        subprocess.run(
            [str(VENV_BIN / "flask"), "--app", "wsgi", "db", "upgrade"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            check=True,
            timeout=180,
        )
        started = time.perf_counter()
        tokens = create_agents(env, args.agents)
        print(f"{args.agents} agents with API tokens in {time.perf_counter() - started:.1f} s")

        procs["stub"] = start(
            [
                str(VENV_BIN / "python"),
                "-m",
                "contact_center.simulate.twilio_stub",
                "--account-sid",
                account_sid,
                "--auth-token",
                auth_token,
                "--port",
                str(stub_port),
            ],
            env,
            logs["stub"],
        )
        procs["gunicorn"] = start(
            [
                str(VENV_BIN / "gunicorn"),
                "-k",
                "gevent",
                "-w",
                str(args.workers),
                "--worker-connections",
                str(args.worker_connections),
                "-b",
                f"127.0.0.1:{port}",
                "--graceful-timeout",
                "10",
                args.app,
            ],
            env,
            logs["gunicorn"],
        )
        procs["worker"] = start(
            [str(VENV_BIN / "flask"), "--app", "wsgi", "worker"], env, logs["worker"]
        )
        wait_http(procs["stub"], stub_port, "/", logs["stub"], 30)
        ready_s = wait_http(procs["gunicorn"], port, "/login", logs["gunicorn"], 60)
        base_url = f"http://127.0.0.1:{port}"
        calls = Calls(account_sid, auth_token)
        status = first_call(base_url, calls)  # creates the default queue
        if args.hold:
            with psycopg.connect(database_url, autocommit=True) as conn:
                conn.execute("UPDATE queues SET offer_timeout_s = %s", (HOLD_OFFER_TIMEOUT_S,))
        print(
            f"gunicorn -k gevent -w {args.workers} --worker-connections "
            f"{args.worker_connections} answered in {ready_s:.1f} s (first call: {status}); "
            f"PostgreSQL {pg_version} ({db_name}), Redis {redis_version} at {args.redis_url} "
            f"(also the Socket.IO message queue); Twilio stub on port {stub_port}"
        )

        started = time.perf_counter()
        talk_s = None if args.hold else args.talk_s
        agents = AgentProcesses(
            base_url, tokens, args.client_procs, talk_s, args.connect_concurrency
        )
        replies = agents.ready(timeout=300)
        connected = sum(r["connected"] for r in replies)
        setup_errors = sum((Counter(r["errors"]) for r in replies), Counter())
        print(
            f"{connected} of {args.agents} agents connected (websocket) and available in "
            f"{time.perf_counter() - started:.1f} s over {args.client_procs} processes; "
            f"errors {dict(setup_errors) or 0}"
        )
        if connected == 0:
            raise RuntimeError(f"no agent connected:\n{tail(logs['gunicorn'])}")
        pids = {
            "gunicorn": [procs["gunicorn"].pid],
            "worker": [procs["worker"].pid],
            "postgres": [postmaster_pid],
            "stub": [procs["stub"].pid],
            "agents": agents.pids(),
        }
        bench = Bench(
            args, base_url, calls, agents, Probe(pids, rclient), procs["gunicorn"], connected
        )
        print(
            f"{os.cpu_count()} cores shared by gunicorn, the worker, PostgreSQL, Redis, the "
            f"stub, {args.client_procs} agent processes and this sender (and anything else)",
            flush=True,
        )
        target, steps = asyncio.run(run(bench))
        over = next((s for s in steps if saturated(s, args.saturation_ms)), None)
        under = [
            s
            for s in steps
            if not saturated(s, args.saturation_ms)
            and (over is None or s["rate_per_s"] < over["rate_per_s"])
        ]
        exceptions = logged_exceptions(logs["gunicorn"])
        tracebacks = sum(exceptions.values())
        if tracebacks:
            print(f"gunicorn logged {tracebacks} tracebacks, ending in:")
            for line, count in exceptions.most_common(5):
                print(f"  {count} x {line}")
        print(
            "saturation search (p99 send -> offer): "
            + ", ".join(f"{s['rate_per_s']:g}/s {s['p99_ms']} ms" for s in steps)
        )
        print(
            f"target: {args.agents} agents at {args.rate:g} calls/s: p50 {target['p50_ms']} ms, "
            f"p99 {target['p99_ms']} ms (target p99 < 50 ms: "
            f"{'met' if target['p99_ms'] is not None and target['p99_ms'] < 50 else 'not met'}); "
            f"p99 passes {args.saturation_ms:g} ms at "
            f"{over['rate_per_s'] if over else 'none of the rates tried'} calls/s "
            f"(last under: {under[-1]['rate_per_s'] if under else None})"
        )
        result = {
            "agents": args.agents,
            "agents_connected": connected,
            "rate_per_s": args.rate,
            "p50_ms": target["p50_ms"],
            "p99_ms": target["p99_ms"],
            "max_ms": target["max_ms"],
            "offered": target["offered"],
            "lost": target["lost"],
            "errors": sum(target["errors"].values()),
            "mode": "hold" if args.hold else "cycle",
            "p99_target_met": target["p99_ms"] is not None and target["p99_ms"] < 50,
            "saturation_rate_per_s": over["rate_per_s"] if over else None,
            "last_rate_under_per_s": under[-1]["rate_per_s"] if under else None,
            "saturation_ms": args.saturation_ms,
            "cpu": target["cpu"],
            "webhook_p99_ms": target["webhook_p99_ms"],
            "accept_p99_ms": target["accept_p99_ms"],
            "steps": [
                {
                    k: s[k]
                    for k in (
                        "rate_per_s",
                        "achieved_rate_per_s",
                        "p50_ms",
                        "p99_ms",
                        "offered",
                        "lost",
                        "errors",
                        "fewest_free_agents",
                        "agent_loop_lag_max_ms",
                    )
                }
                | {"machine_cores": s["cpu"]["machine_cores"]}
                for s in steps
            ],
            "server_tracebacks": tracebacks,
            "server_exceptions": dict(exceptions.most_common(5)),
            "workers": args.workers,
            "worker_connections": args.worker_connections,
            "client_procs": args.client_procs,
            "talk_s": args.talk_s,
            "seconds": args.seconds,
            "step_seconds": args.step_seconds,
            "cores": os.cpu_count(),
            "postgres_version": pg_version,
            "redis_version": redis_version,
        }
    finally:
        if agents is not None:
            agents.stop()
        for name in ("gunicorn", "worker", "stub"):
            code = stop(procs.get(name))
            if not result and name in procs:
                print(f"{name} exit code {code}; its log:\n{tail(logs[name], 40)}", file=sys.stderr)
        try:
            rclient.flushdb()
            rclient.close()
        finally:
            if created:
                with psycopg.connect(admin_url, autocommit=True) as conn:
                    conn.execute(
                        sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                            sql.Identifier(db_name)
                        )
                    )
            for path in logs.values():
                path.unlink(missing_ok=True)
            log_dir.rmdir()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
