"""Live board: routing's board events to `board_delta` on 100 supervisors' websockets.

    .venv/bin/python bench/board.py [--clients 100] [--rate 50] [--seconds 30] [--workers 2]
        [--client-procs 2] [--pg-url postgresql://postgres@127.0.0.1:5432]
        [--redis-url redis://127.0.0.1:6379/11]

The server runs as production runs it: `gunicorn -k gevent -w N wsgi:app` with
SOCKETIO_ASYNC_MODE=gevent and REDIS_URL set, so the Socket.IO message queue is Redis.
Throwaway PostgreSQL database `cc_bench_board_<pid>` (migrated with `flask db upgrade`,
dropped at the end); Redis DB `--redis-url` (11 by default) flushed before and after.
`--queues` queues, 20 agents and `--clients` supervisors with an API token each are
inserted through the app in this process; `--client-procs` spawned processes hold the
supervisors as python-socketio AsyncClients on `/supervisor` (websocket transport,
`auth={"token": ...}`), each getting the `board` snapshot on connect.

Events: `--rate` per second for `--seconds`, open-loop from this process: event i is due at
start + i / rate, and this process calls the real board function (`live.wait_started`,
`live.wait_ended` answered, `live.handled`) inside an app built with the same REDIS_URL and
DATABASE_URL, so its `board_delta` goes through the Redis message queue to the gunicorn
processes, as routing's does. Event i goes to queue i mod `--queues`; each queue repeats
start, start, answered end (its oldest waiting), handled, so calls pile up slowly as on a
busy day.

Matching (exact): every delta carries its queue's figures read back in the same Redis
transaction as the change. This process is the only source of changes, so it knows each
queue's (waiting, today's answered, today's handled) after each event; waiting +
2 x answered + handled grows by exactly one per event of the queue, so the tuple
(queue id, waiting, answered, handled) names one event. A client records the first arrival
(`time.perf_counter`: CLOCK_MONOTONIC, shared by every process on the machine) of each
tuple it sees. The server merges deltas (BOARD_FLUSH_MS), so a board may skip a tuple: an
event counts as shown at the first arrival of its tuple or of any later one of its queue
(a larger waiting + 2 x answered + handled: figures that include it). `update_*_ms` is,
over every (event, connected client) pair, that arrival minus
the event's scheduled time (no coordinated omission). After the phase the bench waits up
to `--drain-s` for the last deliveries; pairs never received are `lost` and count in the
percentiles with the time waited (a lower bound). A run that crosses midnight UTC resets
today's counters and would count the events after it as lost.

Redis pub/sub channels are not scoped by DB number. The app's channel is named after its
Redis database (SOCKETIO_CHANNEL, `contact-center-db11` here), so only a deployment on the
same database number would share it; in case one does, the bench's queues get ids of their
own (QUEUE_ID_BASE up), deltas for other queues are counted as `foreign_deltas` and never
matched, and the figure says how much foreign traffic shared the run.

`db_queries_per_event`: PostgreSQL's committed plus rolled-back transactions in the
throwaway database (`pg_stat_database`, read over a connection to the `postgres` database,
so the reading adds nothing) from before the first event to after the drain, per event.
Every statement runs in a transaction, so 0 means no statement; more than 0 is a lower
bound of statements (pg_stat_statements, which counts statements, needs
shared_preload_libraries: the bench says whether it is loaded). A backend that reported its
counters less than a second ago reports the next ones only after 10 s idle (PostgreSQL 15's
PGSTAT_IDLE_INTERVAL): so each reading waits `--settle-s` (11 s) first, or the connects'
token and snapshot queries would land in the phase (a 2.5 s wait showed 25 of them). Setup
is followed by VACUUM ANALYZE so autovacuum has nothing to do in the bench database.
CPU from /proc and Redis INFO over the same window: gunicorn and Redis per event, the
clients, this sender, the machine. Human-readable lines, then one JSON object last.
Target (issue #9): update_p99_ms < 1000 and db_queries_per_event < 1.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
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
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse

import psycopg
import redis
from bench_common import (
    ROOT,
    free_port,
    machine_busy_s,
    ms,
    start,
    stop,
    tail,
    tree_cpu_s,
    wait_http,
    with_db,
)
from psycopg import sql

VENV_BIN = ROOT / ".venv" / "bin"
AGENTS = 20
QUEUE_ID_BASE = 7_770_000  # far from any real deployment's queue ids (see the docstring)
THRESHOLD_S = 20
KINDS = ("start", "start", "answered", "handled")  # each queue's cycle

# ---------------------------------------------------------------- boards (client processes)


class Boards:
    """One process's share of the supervisors: AsyncClients in one event loop."""

    def __init__(self, url: str, tokens: list[str], queue_ids: list[int]) -> None:
        self.url, self.tokens, self.ours = url, tokens, set(queue_ids)
        self.clients: list = []
        self.seen: list[dict[tuple, float]] = []  # per client: (queue, w, a, h) -> arrival
        self.errors: Counter = Counter()
        self.snapshots = self.duplicates = self.disconnects = self.foreign = 0
        self.lag_max = 0.0

    async def start(self) -> None:
        import aiohttp

        self.http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0), cookie_jar=aiohttp.DummyCookieJar()
        )
        limit = asyncio.Semaphore(20)
        await asyncio.gather(*(self._connect(token, limit) for token in self.tokens))
        self.lag_task = asyncio.create_task(self._watch_lag())

    async def _connect(self, token: str, limit: asyncio.Semaphore) -> None:
        import socketio

        sio = socketio.AsyncClient(reconnection=False, handle_sigint=False, http_session=self.http)
        seen: dict[tuple, float] = {}

        def on_delta(data: dict) -> None:
            arrived = time.perf_counter()
            queues = [q for q in data.get("queues") or () if q["id"] in self.ours]
            if not queues:
                self.foreign += 1  # another deployment's, through the shared channel
            for queue in queues:
                today = queue["today"]
                key = (queue["id"], queue["waiting"], today["answered"], today["handled"])
                if key in seen:
                    self.duplicates += 1
                else:
                    seen[key] = arrived

        def on_board(_data: dict) -> None:
            self.snapshots += 1

        def on_disconnect(_reason=None) -> None:
            self.disconnects += 1

        sio.on("board_delta", on_delta, namespace="/supervisor")
        sio.on("board", on_board, namespace="/supervisor")
        sio.on("disconnect", on_disconnect, namespace="/supervisor")
        async with limit:
            try:
                await sio.connect(
                    self.url,
                    transports=["websocket"],
                    namespaces=["/supervisor"],
                    auth={"token": token},
                    wait_timeout=60,
                )
            except Exception as exc:
                self.errors[f"connect:{type(exc).__name__}"] += 1
                return
        self.clients.append(sio)
        self.seen.append(seen)

    async def _watch_lag(self) -> None:
        """How late this loop wakes up: a busy client process delays what it records."""
        while True:
            before = time.perf_counter()
            await asyncio.sleep(0.01)
            self.lag_max = max(self.lag_max, time.perf_counter() - before - 0.01)

    def answer(self, command: str) -> dict:
        result = {
            "connected": len(self.clients),
            "received": sum(len(seen) for seen in self.seen),
            "snapshots": self.snapshots,
            "errors": dict(self.errors),
        }
        if command == "collect":
            result.update(
                seen=self.seen,
                duplicates=self.duplicates,
                disconnects=self.disconnects,
                foreign=self.foreign,
                lag_max=self.lag_max,
            )
        return result

    async def stop(self) -> None:
        self.lag_task.cancel()
        await asyncio.gather(*(sio.disconnect() for sio in self.clients), return_exceptions=True)
        await self.http.close()


async def _serve(conn, url: str, tokens: list[str], queue_ids: list[int]) -> None:
    boards = Boards(url, tokens, queue_ids)
    loop = asyncio.get_running_loop()
    await boards.start()
    conn.send(boards.answer("count"))
    while True:
        command = await loop.run_in_executor(None, conn.recv)
        if command == "stop":
            await boards.stop()
            conn.send({})
            return
        conn.send(boards.answer(command))


def board_process(conn, url: str, tokens: list[str], queue_ids: list[int]) -> None:
    """Entry point of a client process (spawned)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us
    asyncio.run(_serve(conn, url, tokens, queue_ids))


class BoardProcesses:
    def __init__(self, url: str, tokens: list[str], queue_ids: list[int], procs: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.conns, self.procs = [], []
        for index in range(procs):
            parent, child = ctx.Pipe()
            proc = ctx.Process(
                target=board_process,
                args=(child, url, tokens[index::procs], queue_ids),
                daemon=True,
            )
            proc.start()
            self.conns.append(parent)
            self.procs.append(proc)

    def ask(self, command: str, timeout: float = 120) -> list[dict]:
        if command != "ready":
            for conn in self.conns:
                conn.send(command)
        replies = []
        for conn in self.conns:
            if not conn.poll(timeout):
                raise RuntimeError(f"a client process did not answer {command!r}")
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


# ---------------------------------------------------------------- events (this process)


def plan(count: int, queue_ids: list[int], agent_ids: list[int]) -> list[tuple]:
    """(kind, queue, interaction, agent, expected (queue, waiting, answered, handled))."""
    state = {q: [0, 0, 0] for q in queue_ids}
    events = []
    for index in range(count):
        queue = queue_ids[index % len(queue_ids)]
        kind = KINDS[index // len(queue_ids) % len(KINDS)]
        figures = state[queue]
        figures[{"start": 0, "answered": 1, "handled": 2}[kind]] += 1
        if kind == "answered":
            figures[0] -= 1
        agent = agent_ids[index % len(agent_ids)]
        events.append((kind, queue, 1_000_000 + index, agent, (queue, *figures)))
    return events


def send(app, events: list[tuple], rate: float) -> tuple[list[float], float]:
    """Call the board function of each event at its due time; returns the due times and the
    latest an event was called after its due time."""
    from contact_center.board import live

    waiting: dict[int, list[tuple[int, float]]] = {}
    due_times, late_max = [], 0.0
    begin = time.perf_counter() + 0.05
    with app.app_context():
        for index, (kind, queue, interaction, agent, _key) in enumerate(events):
            due = begin + index / rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            else:
                late_max = max(late_max, -delay)
            due_times.append(due)
            if kind == "start":
                waiting.setdefault(queue, []).append((interaction, time.time()))
                live.wait_started(queue, interaction, datetime.now(UTC))
            elif kind == "answered":
                first, since = waiting[queue].pop(0)
                waited = time.time() - since
                live.wait_ended(
                    queue, first, outcome="answered", waited_s=waited, threshold_s=THRESHOLD_S
                )
            else:
                live.handled(queue, agent, handle_s=180.0)
    return due_times, late_max


# ---------------------------------------------------------------- setup and counters


def seed(app, clients: int, queues: int) -> tuple[list[str], list[int], list[int]]:
    """Queues, agents, and supervisors with an API token each: (tokens, queues, agents)."""
    from werkzeug.security import generate_password_hash

    from contact_center.agents.models import User
    from contact_center.agents.services import issue_token
    from contact_center.extensions import db
    from contact_center.routing.models import Queue

    password_hash = generate_password_hash(secrets.token_urlsafe(16))  # nobody signs in

    def users(role: str, count: int) -> list[User]:
        return [
            User(
                username=f"bench-{role}-{index:04d}",
                display_name=f"Bench {role} {index}",
                password_hash=password_hash,
                role=role,
                capacity={"voice": 1},
            )
            for index in range(count)
        ]

    with app.app_context():
        queue_rows = [
            Queue(id=QUEUE_ID_BASE + index, name=f"Bench queue {index:02d}")
            for index in range(queues)
        ]
        agents, supervisors = users("agent", AGENTS), users("supervisor", clients)
        db.session.add_all([*queue_rows, *agents, *supervisors])
        db.session.commit()
        db.session().expire_on_commit = False  # each token's commit would reload every user
        tokens = [issue_token(user)[0] for user in supervisors]
        result = tokens, [q.id for q in queue_rows], [a.id for a in agents]
        db.session.remove()
        db.engine.dispose()
    return result


def db_counters(admin: psycopg.Connection, db_name: str) -> dict[str, int]:
    row = admin.execute(
        "SELECT xact_commit + xact_rollback, tup_returned + tup_fetched"
        " FROM pg_stat_database WHERE datname = %s",
        (db_name,),
    ).fetchone()
    return {"transactions": int(row[0]), "rows": int(row[1])}


def cpu_snapshot(pids: dict[str, list[int]], rclient: redis.Redis) -> dict[str, float]:
    info = rclient.info("cpu")
    result = {name: sum(tree_cpu_s(pid) for pid in group) for name, group in pids.items()}
    result["redis"] = float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
    result["sender"] = time.process_time()
    result["machine"] = machine_busy_s()
    result["at"] = time.perf_counter()
    return result


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


def shown_by_queue(seen: dict[tuple, float]) -> dict[int, tuple[list[int], list[float]]]:
    """Per queue: the progress values a board received (waiting + 2 x answered + handled,
    which grows by one per event) in order, with the earliest arrival of that value or any
    later one (a merged delta carries the newest figures, which include the events before)."""
    by_queue: dict[int, list[tuple[int, float]]] = {}
    for (queue_id, waiting, answered, handled), arrived in seen.items():
        by_queue.setdefault(queue_id, []).append((waiting + 2 * answered + handled, arrived))
    shown = {}
    for queue_id, entries in by_queue.items():
        entries.sort()
        progress = [p for p, _ in entries]
        earliest, running = [], float("inf")
        for _p, arrived in reversed(entries):
            running = min(running, arrived)
            earliest.append(running)
        shown[queue_id] = (progress, earliest[::-1])
    return shown


def first_showing(shown: dict, key: tuple) -> float | None:
    """When a board first showed figures including the event `key` (None: never)."""
    queue_id, waiting, answered, handled = key
    if queue_id not in shown:
        return None
    progress, earliest = shown[queue_id]
    index = bisect.bisect_left(progress, waiting + 2 * answered + handled)
    return earliest[index] if index < len(progress) else None


def percentiles(values: list[tuple[float, bool]]) -> dict:
    """p50/p99/max of (seconds, is_lower_bound) pairs."""
    ordered = sorted(values) or [(None, False)]
    result: dict = {}
    for name, q in (("p50", 0.5), ("p99", 0.99), ("max", 1.0)):
        value, bound = ordered[min(len(ordered) - 1, int(q * len(ordered)))]
        result[f"update_{name}_ms"] = ms(value)
        if bound:
            result[f"update_{name}_is_lower_bound"] = True
    return result


# ---------------------------------------------------------------- main


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=100, help="supervisor boards")
    parser.add_argument("--rate", type=float, default=50.0, help="board events per second")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--queues", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn gevent workers")
    parser.add_argument("--client-procs", type=int, default=2)
    parser.add_argument("--drain-s", type=float, default=5.0)
    parser.add_argument("--settle-s", type=float, default=11.0, help="before each DB reading")
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/11")
    args = parser.parse_args()
    if urlparse(args.redis_url).path.strip("/") in ("", "0"):
        parser.error("--redis-url must name a dedicated DB other than 0 (it is flushed)")
    if min(args.clients, args.rate, args.seconds, args.queues, args.workers) <= 0:
        parser.error("--clients, --rate, --seconds, --queues and --workers must be positive")
    args.client_procs = max(1, min(args.client_procs, args.clients))
    return args


def main() -> int:
    args = parse_args()
    sys.path.insert(0, str(ROOT))
    from contact_center import create_app

    db_name = f"cc_bench_board_{os.getpid()}"
    admin_url = with_db(args.pg_url, "postgres")
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": with_db(args.pg_url, db_name),
        "REDIS_URL": args.redis_url,
        "SECRET_KEY": secrets.token_hex(32),
        "SOCKETIO_ASYNC_MODE": "gevent",
    }
    env.pop("SOCKETIO_MESSAGE_QUEUE", None)  # defaults to REDIS_URL, as in production
    rclient = redis.Redis.from_url(args.redis_url, decode_responses=True)
    log_dir = Path(tempfile.mkdtemp(prefix="cc_bench_board_"))
    log = log_dir / "gunicorn.log"
    server: subprocess.Popen | None = None
    boards: BoardProcesses | None = None
    admin: psycopg.Connection | None = None
    created = False
    result: dict = {}
    try:
        admin = psycopg.connect(admin_url, autocommit=True)
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db_name)))
        created = True
        preload = admin.execute("SHOW shared_preload_libraries").fetchone()[0]
        rclient.flushdb()
        subprocess.run(
            [str(VENV_BIN / "flask"), "--app", "wsgi", "db", "upgrade"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            check=True,
            timeout=180,
        )
        keys = ("DATABASE_URL", "REDIS_URL", "SECRET_KEY")
        app = create_app({key: env[key] for key in keys})  # threading mode: emits only
        tokens, queue_ids, agent_ids = seed(app, args.clients, args.queues)
        with psycopg.connect(env["DATABASE_URL"], autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")  # nothing left for autovacuum during the phase
        server = start(
            [
                str(VENV_BIN / "gunicorn"),
                *("-k", "gevent", "-w", str(args.workers), "-b", f"127.0.0.1:{port}"),
                *("--graceful-timeout", "10", "wsgi:app"),
            ],
            env,
            log,
        )
        ready_s = wait_http(server, port, "/login", log, 60)
        print(
            f"gunicorn -k gevent -w {args.workers} answered in {ready_s:.1f} s; PostgreSQL "
            f"({db_name}), Redis {args.redis_url} (also the Socket.IO message queue); "
            f"{args.queues} queues, {AGENTS} agents, {args.clients} supervisors"
        )
        started = time.perf_counter()
        boards = BoardProcesses(f"http://127.0.0.1:{port}", tokens, queue_ids, args.client_procs)
        replies = boards.ask("ready")
        connected = sum(r["connected"] for r in replies)
        errors = sum((Counter(r["errors"]) for r in replies), Counter())
        print(
            f"{connected} of {args.clients} supervisors connected (websocket) in "
            f"{time.perf_counter() - started:.1f} s over {args.client_procs} processes, "
            f"{sum(r['snapshots'] for r in replies)} `board` snapshots; errors {dict(errors) or 0}",
            flush=True,
        )
        if connected == 0:
            raise RuntimeError(f"no supervisor connected:\n{tail(log)}")

        events = plan(round(args.rate * args.seconds), queue_ids, agent_ids)
        pids = {"gunicorn": [server.pid], "clients": [p.pid for p in boards.procs]}
        time.sleep(args.settle_s)  # the connects' counters reach pg_stat_database
        db_before = db_counters(admin, db_name)
        cpu_before = cpu_snapshot(pids, rclient)
        due_times, late_max = send(app, events, args.rate)
        sent_s = time.perf_counter() - due_times[0]
        expected = len(events) * connected
        deadline = time.perf_counter() + args.drain_s
        while time.perf_counter() < deadline:
            if sum(r["received"] for r in boards.ask("count")) >= expected:
                break
            time.sleep(0.1)
        gave_up = time.perf_counter()
        cpu_after = cpu_snapshot(pids, rclient)
        time.sleep(args.settle_s)
        db_after = db_counters(admin, db_name)
        replies = boards.ask("collect")

        pairs: list[tuple[float, bool]] = []
        lost = 0
        shown_all = [shown_by_queue(seen) for reply in replies for seen in reply["seen"]]
        for (_kind, _q, _i, _a, key), due in zip(events, due_times, strict=True):
            for shown in shown_all:
                arrived = first_showing(shown, key)
                if arrived is None:
                    lost += 1
                    pairs.append((gave_up - due, True))
                else:
                    pairs.append((arrived - due, False))
        latency = percentiles(pairs)
        queries = db_after["transactions"] - db_before["transactions"]
        elapsed = cpu_after["at"] - cpu_before["at"]
        used = {k: cpu_after[k] - cpu_before[k] for k in cpu_before if k != "at"}
        n = len(events)
        cpu = {f"{k}_cores": round(v / elapsed, 3) for k, v in used.items()}
        cpu["gunicorn_ms_per_event"] = round(used["gunicorn"] * 1000 / n, 3)
        cpu["redis_ms_per_event"] = round(used["redis"] * 1000 / n, 3)
        exceptions = logged_exceptions(log)
        tracebacks = sum(exceptions.values())
        result = {
            "clients": args.clients,
            "clients_connected": connected,
            "events_per_s": round((n - 1) / max(due_times[-1] - due_times[0], 1e-9), 1),
            **latency,
            "db_queries_per_event": round(queries / n, 4),
            "events": n,
            "deliveries_expected": expected,
            "deliveries": expected - lost,
            "lost": lost,
            "duplicates": sum(r["duplicates"] for r in replies),
            "disconnects": sum(r["disconnects"] for r in replies),
            "foreign_deltas": sum(r["foreign"] for r in replies),
            "db_transactions": queries,
            "db_rows_read": db_after["rows"] - db_before["rows"],
            "db_counter": "pg_stat_statements preloaded, not used"
            if "pg_stat_statements" in preload
            else "pg_stat_database transactions (pg_stat_statements not preloaded)",
            "cpu": cpu,
            "sender_late_max_ms": ms(late_max),
            "client_loop_lag_max_ms": ms(max(r["lag_max"] for r in replies)),
            "server_tracebacks": tracebacks,
            "server_exceptions": dict(exceptions.most_common(5)),
            "update_p99_target_met": latency["update_p99_ms"] is not None
            and latency["update_p99_ms"] < 1000
            and lost == 0,
            "db_target_met": queries / n < 1,
            "seconds": round(sent_s, 1),
            "workers": args.workers,
            "client_procs": args.client_procs,
            "queues": args.queues,
            "cores": os.cpu_count(),
        }
        print(
            f"{n} events in {sent_s:.1f} s ({result['events_per_s']}/s, latest call "
            f"{result['sender_late_max_ms']} ms after its due time) -> {result['deliveries']} "
            f"of {expected} deltas received, lost {lost}, duplicates {result['duplicates']}, "
            f"disconnects {result['disconnects']}; other deployments' deltas on the shared "
            f"channel: {result['foreign_deltas']} (all boards)\n"
            f"  due -> board_delta p50 {latency['update_p50_ms']} ms, p99 "
            f"{latency['update_p99_ms']} ms, max {latency['update_max_ms']} ms; client loop lag "
            f"max {result['client_loop_lag_max_ms']} ms\n"
            f"  database: {queries} transactions, {result['db_rows_read']} rows read in "
            f"{db_name} during the phase: {result['db_queries_per_event']} per event "
            f"({result['db_counter']})\n"
            f"  cores: gunicorn {cpu['gunicorn_cores']}, redis {cpu['redis_cores']}, clients "
            f"{cpu['clients_cores']}, sender {cpu['sender_cores']}; machine "
            f"{cpu['machine_cores']} of {os.cpu_count()}; per event: gunicorn "
            f"{cpu['gunicorn_ms_per_event']} ms, redis {cpu['redis_ms_per_event']} ms CPU\n"
            f"  targets: update_p99_ms < 1000 "
            f"{'met' if result['update_p99_target_met'] else 'NOT met'}, db_queries_per_event "
            f"< 1 {'met' if result['db_target_met'] else 'NOT met'}; gunicorn tracebacks "
            f"{tracebacks}"
        )
        for line, count in exceptions.most_common(5):
            print(f"  {count} x {line}")
    finally:
        if boards is not None:
            boards.stop()
        code = stop(server)
        if not result and server is not None:
            print(f"gunicorn exit code {code}; its log:\n{tail(log, 40)}", file=sys.stderr)
        try:
            rclient.flushdb()
            rclient.close()
        finally:
            if admin is not None:
                if created:
                    admin.execute(
                        sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                            sql.Identifier(db_name)
                        )
                    )
                admin.close()
            log.unlink(missing_ok=True)
            log_dir.rmdir()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
