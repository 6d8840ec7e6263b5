"""Signed incoming-call webhooks per second under gunicorn, next to a bare endpoint of the app.

    .venv/bin/python bench/webhooks.py [--seconds 20] [--workers 2] [--concurrency 16]
        [--rate 100] [--pg-url postgresql://postgres@127.0.0.1:5432]
        [--redis-url redis://127.0.0.1:6379/13] [--bare-path /login] [--app wsgi:app]

Runs the app as production does (`gunicorn -k gevent -w N wsgi:app`, SOCKETIO_ASYNC_MODE
gevent) on a throwaway PostgreSQL database (`cc_bench_<pid>`, migrated with `flask db
upgrade`, dropped at the end) and a dedicated Redis DB (flushed before and after), with the
load generator in this process: threads, one keep-alive `http.client` connection each.

Phases, each `--seconds` long, after a short warm-up (one call first, alone: it creates the
default queue and the routing state, as the first call of a fresh deployment does):
- bare: `--concurrency` closed-loop clients on `GET --bare-path` (default /login: a small
  template and a session cookie, no database, no Redis) -> hello_rps (2xx/s).
- voice: the same on `POST /webhooks/twilio/voice`, signed like Twilio signs
  (X-Twilio-Signature over PUBLIC_BASE_URL + path and the form), every request a new call
  (a new CallSid, a GB number) -> recorded, caller looked up, committed, queued in Redis.
  No agent is signed in and no IVR flow is active, so every call waits in the default
  queue -> voice_rps; ratio = voice_rps / hello_rps.
- fixed: voice webhooks open-loop at `--rate` per second; latency counts from each request's
  scheduled send time (no coordinated omission) -> p50_ms, p99_ms.
Every non-2xx answer or transport error is an error. At the end the interactions in the
database must equal the 2xx voice answers (a 2xx means committed): `lost` should be 0.
A connection the server closed while idle is reopened and the request sent once more (the
same CallSid: the webhook is idempotent, so this cannot create a second call).

CPU per phase (from /proc and Redis INFO) shows where the machine's cores went: gunicorn
(master and workers), PostgreSQL (the whole server, including backends that exited),
Redis, and this load generator; "other" is the rest of the machine's busy time. Everything
shares the machine's cores. `--app` serves another WSGI app (e.g. one that patches a change
in) to measure a change before making it.
Human-readable lines first, then one JSON object as the last line.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode, urlparse

import psycopg
import redis
from bench_common import (
    ROOT,
    children_of,
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
from twilio.request_validator import RequestValidator

VENV_BIN = ROOT / ".venv" / "bin"
VOICE_PATH = "/webhooks/twilio/voice"
PUBLIC_BASE_URL = "http://bench.local"  # what both sides sign against; never resolved
TO_NUMBER = "+441632960000"  # Ofcom drama range
RETRYABLE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


# ---------------------------------------------------------------- requests


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    body: bytes | None
    headers: dict[str, str]


class VoiceCalls:
    """New signed incoming calls, as Twilio posts them."""

    def __init__(self, account_sid: str, auth_token: str) -> None:
        self.account_sid = account_sid
        self.validator = RequestValidator(auth_token)
        self.url = PUBLIC_BASE_URL + VOICE_PATH
        self.lock = threading.Lock()
        self.sent_sids: set[str] = set()

    def __call__(self) -> Request:
        call_sid = "CA" + secrets.token_hex(16)
        caller = f"+4477009{secrets.randbelow(100_000):05d}"
        params = {
            "AccountSid": self.account_sid,
            "ApiVersion": "2010-04-01",
            "CallSid": call_sid,
            "CallStatus": "ringing",
            "Called": TO_NUMBER,
            "Caller": caller,
            "Direction": "inbound",
            "From": caller,
            "FromCountry": "GB",
            "To": TO_NUMBER,
            "ToCountry": "GB",
        }
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": self.validator.compute_signature(self.url, params),
            "User-Agent": "TwilioProxy/1.1",
        }
        return Request("POST", VOICE_PATH, urlencode(params).encode(), headers)


def bare_request(path: str):
    request = Request("GET", path, None, {"Accept": "text/html"})
    return lambda: request


class Connection:
    """One keep-alive HTTP/1.1 connection, reopened when the server closed it."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.conn: http.client.HTTPConnection | None = None
        self.used = False
        self.reconnects = 0

    def _open(self) -> http.client.HTTPConnection:
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        self.conn.connect()
        self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.used = False
        return self.conn

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.conn = None

    def send(self, request: Request) -> int:
        """The response status (the body is read, so the connection can be reused)."""
        for attempt in range(2):
            conn = self.conn or self._open()
            reused = self.used
            try:
                conn.request(request.method, request.path, request.body, request.headers)
                response = conn.getresponse()
                response.read()
            except RETRYABLE:
                self.close()
                if reused and attempt == 0:  # closed while idle: the request never arrived
                    self.reconnects += 1
                    continue
                raise
            except Exception:
                self.close()
                raise
            self.used = True
            if response.will_close:
                self.close()
            return response.status
        raise AssertionError("unreachable")


# ---------------------------------------------------------------- load


@dataclass
class Tally:
    """One client thread's results in one phase."""

    latencies: list[float] = field(default_factory=list)  # seconds, 2xx answers
    ok: int = 0
    ok_in_window: int = 0
    statuses: Counter = field(default_factory=Counter)  # non-2xx statuses
    errors: Counter = field(default_factory=Counter)  # transport errors by type
    reconnects: int = 0
    last_end: float = 0.0
    max_send_lag: float = 0.0


@dataclass
class PhaseResult:
    name: str
    seconds: float
    tallies: list[Tally]
    cpu: dict[str, float]
    sessions: int
    spread: list[int] = field(default_factory=list)  # client connections per gunicorn worker

    @property
    def ok(self) -> int:
        return sum(t.ok for t in self.tallies)

    @property
    def ok_in_window(self) -> int:
        return sum(t.ok_in_window for t in self.tallies)

    @property
    def statuses(self) -> Counter:
        return sum((t.statuses for t in self.tallies), Counter())

    @property
    def errors(self) -> Counter:
        return sum((t.errors for t in self.tallies), Counter())

    @property
    def error_count(self) -> int:
        return sum(self.statuses.values()) + sum(self.errors.values())

    @property
    def reconnects(self) -> int:
        return sum(t.reconnects for t in self.tallies)

    def latencies(self) -> list[float]:
        return sorted(itertools.chain.from_iterable(t.latencies for t in self.tallies))


def _record(tally: Tally, status: int | None, error: Exception | None, latency: float) -> None:
    if error is not None:
        tally.errors[type(error).__name__] += 1
    elif 200 <= status < 300:
        tally.ok += 1
        tally.latencies.append(latency)
    else:
        tally.statuses[str(status)] += 1


def _attempt(conn: Connection, request: Request) -> tuple[int | None, Exception | None]:
    try:
        return conn.send(request), None
    except (OSError, http.client.HTTPException) as exc:
        return None, exc


def closed_loop(conn, make, go, clock, tally: Tally) -> None:
    """Send the next request as soon as the previous answer is in, until the deadline."""
    go.wait()
    start, deadline = clock
    time.sleep(max(start - time.perf_counter(), 0))
    while time.perf_counter() < deadline:
        request = make()
        sent = time.perf_counter()
        status, error = _attempt(conn, request)
        end = time.perf_counter()
        _record(tally, status, error, end - sent)
        if error is None and 200 <= status < 300 and end <= deadline:
            tally.ok_in_window += 1
        tally.last_end = end
        if error is not None:
            time.sleep(0.01)  # do not spin on a refused connection
    tally.reconnects = conn.reconnects


def open_loop(conn, make, go, clock, counter, rate: float, tally: Tally) -> None:
    """Send request i at start + i / rate; latency counts from that scheduled time."""
    go.wait()
    start, deadline = clock
    while True:
        scheduled = start + next(counter) / rate
        if scheduled >= deadline:
            break
        request = make()
        delay = scheduled - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        else:
            tally.max_send_lag = max(tally.max_send_lag, -delay)
        status, error = _attempt(conn, request)
        end = time.perf_counter()
        _record(tally, status, error, end - scheduled)
        tally.ok_in_window += int(error is None and 200 <= status < 300)
        tally.last_end = end
    tally.reconnects = conn.reconnects


def run_phase(
    name: str,
    target: tuple[str, int],
    make,
    *,
    threads: int,
    seconds: float,
    rate: float | None,
    probe: Probe,
    timeout: float,
) -> PhaseResult:
    """Run one phase with `threads` client threads; rate None = closed loop at saturation."""
    conns = [Connection(*target, timeout=timeout) for _ in range(threads)]
    for conn in conns:
        conn._open()
    spread = balance(conns, target[1], children_of(probe.gunicorn_pid))
    tallies = [Tally() for _ in range(threads)]
    go = threading.Event()
    clock: list[float] = []
    counter = itertools.count()
    workers = []
    for conn, tally in zip(conns, tallies, strict=True):
        if rate is None:
            args = (conn, make, go, clock, tally)
            workers.append(threading.Thread(target=closed_loop, args=args, daemon=True))
        else:
            args = (conn, make, go, clock, counter, rate, tally)
            workers.append(threading.Thread(target=open_loop, args=args, daemon=True))
    for worker in workers:
        worker.start()
    before = probe.snapshot()
    start = time.perf_counter() + 0.05
    clock.extend((start, start + seconds))
    go.set()
    for worker in workers:
        worker.join(timeout=seconds + timeout + 30)
        if worker.is_alive():
            raise RuntimeError(f"{name}: a client thread did not finish in time")
    elapsed = max([t.last_end for t in tallies] + [start + seconds]) - start
    after = probe.snapshot()
    for conn in conns:
        conn.close()
    cpu = {k: after[k] - before[k] for k in before if k != "sessions"}
    cpu["elapsed"] = elapsed
    sessions = int(after["sessions"] - before["sessions"])
    return PhaseResult(name, seconds, tallies, cpu, sessions, spread)


def first_call(target: tuple[str, int], make, timeout: float) -> PhaseResult:
    """One request on its own (CPU not measured)."""
    conn = Connection(*target, timeout=timeout)
    tally = Tally()
    sent = time.perf_counter()
    status, error = _attempt(conn, make())
    _record(tally, status, error, time.perf_counter() - sent)
    conn.close()
    return PhaseResult("first call", 0.0, [tally], {}, 0)


def _accepted(port: int, pids: list[int]) -> dict[int, int]:
    """Client port -> the gunicorn worker that accepted that connection to `port`."""
    owner = {}
    for pid in pids:
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                link = os.readlink(fd)
            except OSError:
                continue
            if link.startswith("socket:["):
                owner[link[8:-1]] = pid
    result = {}
    with open("/proc/net/tcp") as table:
        next(table)
        for line in table:
            parts = line.split()
            local, remote, state, inode = parts[1], parts[2], parts[3], parts[9]
            if state == "01" and int(local.split(":")[1], 16) == port and inode in owner:
                result[int(remote.split(":")[1], 16)] = owner[inode]
    return result


def balance(conns: list[Connection], port: int, pids: list[int], limit_s: float = 5.0):
    """Reopen connections until the workers hold equal shares (keep-alive makes them sticky).

    The kernel hands a new connection to whichever worker accepts first, so 16 connections
    can land 12/4; production spreads them with a load balancer. Returns the counts.
    """
    deadline = time.monotonic() + limit_s
    counts: list[int] = []
    while time.monotonic() < deadline:
        owners = _accepted(port, pids)
        by_worker: dict[int, list[Connection]] = {pid: [] for pid in pids}
        missing = False
        for conn in conns:
            pid = owners.get(conn.conn.sock.getsockname()[1])
            if pid is None:
                missing = True  # not accepted yet
                break
            by_worker[pid].append(conn)
        if missing:
            time.sleep(0.005)
            continue
        counts = sorted((len(v) for v in by_worker.values()), reverse=True)
        if not counts or counts[0] - counts[-1] <= 1:
            break
        busiest = max(by_worker.values(), key=len)
        busiest[0].close()
        busiest[0]._open()
    return counts


# ---------------------------------------------------------------- CPU accounting


class Probe:
    """CPU seconds so far of everything the bench runs on, and PostgreSQL sessions opened."""

    def __init__(self, gunicorn_pid: int, postmaster_pid: int, redis_client, admin_url, db):
        self.gunicorn_pid = gunicorn_pid
        self.postmaster_pid = postmaster_pid
        self.redis = redis_client
        self.admin_url = admin_url
        self.db = db

    def snapshot(self) -> dict[str, float]:
        info = self.redis.info("cpu")
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            sessions = conn.execute(
                "SELECT sessions FROM pg_stat_database WHERE datname = %s", (self.db,)
            ).fetchone()[0]
        return {
            "gunicorn": tree_cpu_s(self.gunicorn_pid),
            "postgres": tree_cpu_s(self.postmaster_pid),
            "redis": float(info["used_cpu_user"]) + float(info["used_cpu_sys"]),
            "client": time.process_time(),
            "machine": machine_busy_s(),
            "sessions": float(sessions or 0),
        }


# ---------------------------------------------------------------- services


def describe(phase: PhaseResult) -> str:
    lat = phase.latencies()
    cpu = phase.cpu
    done = max(phase.ok + phase.error_count, 1)
    per_req = ", ".join(
        f"{k} {cpu[k] * 1000 / done:.2f}" for k in ("gunicorn", "postgres", "redis", "client")
    )
    errors = dict(phase.statuses) | dict(phase.errors)
    ours = sum(cpu[k] for k in ("gunicorn", "postgres", "redis", "client"))
    others = max(cpu["machine"] - ours, 0.0)
    return (
        f"  {phase.ok} 2xx ({phase.ok_in_window} inside the {phase.seconds:.0f} s window), "
        f"errors {errors or 0}, reconnects {phase.reconnects}; latency p50 "
        f"{ms(percentile(lat, 0.5))} ms, p99 {ms(percentile(lat, 0.99))} ms, max "
        f"{ms(lat[-1] if lat else None)} ms\n"
        f"  CPU ms per request: {per_req}; machine busy {cpu['machine'] / cpu['elapsed']:.2f} "
        f"of {os.cpu_count()} cores ({others / cpu['elapsed']:.2f} by other processes); "
        f"new PostgreSQL sessions {phase.sessions}; client connections per worker "
        f"{phase.spread}"
    )


def cpu_summary(phase: PhaseResult) -> dict[str, float]:
    done = max(phase.ok + phase.error_count, 1)
    result = {
        f"{k}_ms_per_req": round(phase.cpu[k] * 1000 / done, 3)
        for k in ("gunicorn", "postgres", "redis", "client")
    }
    elapsed = phase.cpu["elapsed"]
    ours = sum(phase.cpu[k] for k in ("gunicorn", "postgres", "redis", "client"))
    result["machine_cores_busy"] = round(phase.cpu["machine"] / elapsed, 2)
    result["other_cores_busy"] = round(max(phase.cpu["machine"] - ours, 0.0) / elapsed, 2)
    result["pg_sessions_opened"] = phase.sessions
    result["connections_per_worker"] = phase.spread
    return result


# ---------------------------------------------------------------- main


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="per phase")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn gevent workers")
    parser.add_argument("--concurrency", type=int, default=16, help="closed-loop clients")
    parser.add_argument("--rate", type=float, default=100.0, help="fixed-rate requests/s")
    parser.add_argument("--rate-threads", type=int, default=32, help="senders at fixed rate")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds, split over both")
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/13")
    parser.add_argument("--bare-path", default="/login")
    parser.add_argument("--app", default="wsgi:app", help="the WSGI app gunicorn serves")
    parser.add_argument("--timeout", type=float, default=30.0, help="per request, seconds")
    parser.add_argument("--startup-timeout", type=float, default=60.0)
    args = parser.parse_args()
    if urlparse(args.redis_url).path.strip("/") in ("", "0"):
        parser.error("--redis-url must name a dedicated DB other than 0 (it is flushed)")
    if min(args.seconds, args.rate, args.workers, args.concurrency, args.rate_threads) <= 0:
        parser.error("--seconds, --rate, --workers and the thread counts must be positive")
    return args


def main() -> int:
    args = parse_args()
    # Client threads wait for the GIL up to the switch interval each: keep the tail short.
    sys.setswitchinterval(0.0005)
    db_name = f"cc_bench_{os.getpid()}"
    admin_url = with_db(args.pg_url, "postgres")
    database_url = with_db(args.pg_url, db_name)
    account_sid = "AC" + secrets.token_hex(16)
    auth_token = secrets.token_hex(16)
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": args.redis_url,
        "SECRET_KEY": secrets.token_hex(32),
        "SOCKETIO_ASYNC_MODE": "gevent",
        "TWILIO_ACCOUNT_SID": account_sid,
        "TWILIO_AUTH_TOKEN": auth_token,
        "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
    }
    env.pop("SOCKETIO_MESSAGE_QUEUE", None)  # defaults to REDIS_URL, as in production
    rclient = redis.Redis.from_url(args.redis_url, decode_responses=True)
    log_dir = Path(tempfile.mkdtemp(prefix="cc_bench_"))
    log = log_dir / "gunicorn.log"
    proc: subprocess.Popen | None = None
    created = False
    failed = True
    try:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db_name)))
            created = True
            pg_version = conn.execute("SHOW server_version").fetchone()[0]
            settings = {
                name: conn.execute(sql.SQL("SHOW {}").format(sql.Identifier(name))).fetchone()[0]
                for name in ("synchronous_commit", "fsync", "shared_buffers", "max_connections")
            }
            postmaster_pid = int(proc_stat(conn.info.backend_pid)[1])  # the backend's parent
        rclient.flushdb()
        redis_version = rclient.info("server")["redis_version"]
        migrate = subprocess.run(
            [str(VENV_BIN / "flask"), "--app", "wsgi", "db", "upgrade"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        if migrate.returncode != 0:
            raise RuntimeError(f"migrations failed:\n{migrate.stdout}\n{migrate.stderr}")

        port = free_port()
        command = [
            str(VENV_BIN / "gunicorn"),
            "-k",
            "gevent",
            "-w",
            str(args.workers),
            "-b",
            f"127.0.0.1:{port}",
            "--graceful-timeout",
            "10",
            args.app,
        ]
        proc = start(command, env, log)
        ready_s = wait_http(proc, port, args.bare_path, log, args.startup_timeout, require_2xx=True)
        cores = os.cpu_count()
        print(
            f"gunicorn -k gevent -w {args.workers} {args.app} on 127.0.0.1:{port} answered in "
            f"{ready_s:.1f} s; PostgreSQL {pg_version} ({db_name}, synchronous_commit "
            f"{settings['synchronous_commit']}, fsync {settings['fsync']}), Redis "
            f"{redis_version} at {args.redis_url}"
        )
        print(
            f"{cores} cores shared by gunicorn, PostgreSQL, Redis and this load generator "
            f"(and anything else running on the machine)"
        )

        target = ("127.0.0.1", port)
        calls = VoiceCalls(account_sid, auth_token)
        bare = bare_request(args.bare_path)
        probe = Probe(proc.pid, postmaster_pid, rclient, admin_url, db_name)

        def phase(name, make, seconds, threads=args.concurrency, rate=None):
            result = run_phase(
                name,
                target,
                make,
                threads=threads,
                seconds=seconds,
                rate=rate,
                probe=probe,
                timeout=args.timeout,
            )
            if proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {proc.returncode}:\n{tail(log)}")
            return result

        # Warm-up: the first call alone (it creates the default queue and the routing
        # state, as on a fresh deployment), then both endpoints with every client.
        first = first_call(target, calls, args.timeout)
        warm = [
            phase("warm-up bare", bare, args.warmup / 2),
            phase("warm-up voice", calls, args.warmup / 2),
        ]
        print(
            f"warm-up: first call {first.ok} 2xx, then {warm[0].ok} bare and {warm[1].ok} "
            f"voice 2xx, errors {first.error_count + warm[0].error_count + warm[1].error_count}"
        )

        hello = phase("bare", bare, args.seconds)
        hello_rps = hello.ok_in_window / args.seconds
        print(f"bare GET {args.bare_path}, {args.concurrency} clients: {hello_rps:,.1f}/s")
        print(describe(hello))

        voice = phase("voice", calls, args.seconds)
        voice_rps = voice.ok_in_window / args.seconds
        print(f"voice webhook, {args.concurrency} clients: {voice_rps:,.1f}/s")
        print(describe(voice))

        fixed = phase("fixed", calls, args.seconds, threads=args.rate_threads, rate=args.rate)
        fixed_lat = fixed.latencies()
        fixed_elapsed = fixed.cpu["elapsed"]
        fixed_achieved = fixed.ok / fixed_elapsed
        max_lag = max(t.max_send_lag for t in fixed.tallies)
        print(
            f"voice webhook at a fixed {args.rate:g}/s ({args.rate_threads} senders): "
            f"{fixed_achieved:,.1f}/s achieved, latency from the scheduled send p50 "
            f"{ms(percentile(fixed_lat, 0.5))} ms, p99 {ms(percentile(fixed_lat, 0.99))} ms; "
            f"latest send {ms(max_lag)} ms behind schedule"
        )
        print(describe(fixed))

        # Nothing lost: every 2xx voice answer is a committed interaction, queued in Redis.
        voice_phases = [first, warm[1], voice, fixed]
        voice_ok = sum(p.ok for p in voice_phases)
        with psycopg.connect(database_url, autocommit=True) as conn:
            interactions = conn.execute("SELECT count(*) FROM interactions").fetchone()[0]
            queued = conn.execute(
                "SELECT count(*) FROM interactions WHERE status = 'queued'"
            ).fetchone()[0]
            queues = conn.execute("SELECT count(*) FROM queues").fetchone()[0]
        in_redis = rclient.hlen("{cc}:where")
        lost = max(voice_ok - interactions, 0)
        unconfirmed = max(interactions - voice_ok, 0)  # committed, but the answer was an error
        print(
            f"database: {interactions} interactions ({queued} queued, {queues} queue) for "
            f"{voice_ok} 2xx voice answers -> lost {lost}, committed without a 2xx "
            f"{unconfirmed}; waiting in Redis {in_redis}"
        )
        server_log = log.read_text(errors="replace")
        tracebacks = server_log.count("Traceback (most recent call last)")
        if tracebacks:
            print(f"gunicorn logged {tracebacks} tracebacks; the last lines:\n{tail(log, 15)}")

        phases = [first, *warm, hello, voice, fixed]
        errors = Counter()
        for p in phases:
            errors.update({f"{p.name}:{k}": v for k, v in (p.statuses + p.errors).items()})
        ratio = voice_rps / hello_rps if hello_rps else 0.0
        p99 = ms(percentile(fixed_lat, 0.99))
        hello_lat, voice_lat = hello.latencies(), voice.latencies()
        result = {
            "hello_rps": round(hello_rps, 1),
            "voice_rps": round(voice_rps, 1),
            "ratio": round(ratio, 3),
            "p50_ms": ms(percentile(fixed_lat, 0.5)),
            "p99_ms": p99,
            "max_ms": ms(fixed_lat[-1] if fixed_lat else None),
            "fixed_rate_rps": args.rate,
            "fixed_rate_rps_achieved": round(fixed_achieved, 1),
            "fixed_rate_max_send_lag_ms": ms(max_lag),
            "ratio_target_met": ratio >= 0.3,
            "p99_target_met": p99 is not None and p99 < 50,
            "hello_p50_ms": ms(percentile(hello_lat, 0.5)),
            "hello_p99_ms": ms(percentile(hello_lat, 0.99)),
            "voice_sat_p50_ms": ms(percentile(voice_lat, 0.5)),
            "voice_sat_p99_ms": ms(percentile(voice_lat, 0.99)),
            "errors": sum(p.error_count for p in phases),
            "errors_by_phase": dict(errors),
            "reconnects": sum(p.reconnects for p in phases),
            "voice_2xx": voice_ok,
            "interactions": interactions,
            "lost": lost,
            "committed_without_2xx": unconfirmed,
            "waiting_in_redis": in_redis,
            "server_tracebacks": tracebacks,
            "cpu_bare": cpu_summary(hello),
            "cpu_voice": cpu_summary(voice),
            "cpu_fixed": cpu_summary(fixed),
            "workers": args.workers,
            "concurrency": args.concurrency,
            "seconds": args.seconds,
            "bare_endpoint": f"GET {args.bare_path}",
            "app": args.app,
            "cores": cores,
            "shared_machine": "gunicorn, PostgreSQL, Redis and the load generator share the cores",
            "synchronous_commit": settings["synchronous_commit"],
            "postgres_version": pg_version,
            "redis_version": redis_version,
        }
        failed = False
    finally:
        code = stop(proc)
        if failed and proc is not None:
            print(f"gunicorn exit code {code}; its log:\n{tail(log, 40)}", file=sys.stderr)
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
            log.unlink(missing_ok=True)
            log_dir.rmdir()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
