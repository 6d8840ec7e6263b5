"""The busy hour: the whole deployment on one machine under the traffic simulator (issue #10).

    .venv/bin/python bench/busy_hour.py [--agents 500] [--base-rate 20] [--peak-rate 40]
        [--duration 180] [--burst-start 60] [--burst-length 60] [--drain 60] [--seed 1]
        [--ladder 5,10,15,20,30,40,60,80] [--step-seconds 20] [--step-drain 10]
        [--skip-saturation] [--pg-url postgresql://postgres@127.0.0.1:5432]
        [--redis-url redis://127.0.0.1:6379/4]

Everything runs as production runs it, on real PostgreSQL and Redis: two web processes
(`gunicorn -k gevent -w 1`, SOCKETIO_ASYNC_MODE=gevent, the Socket.IO Redis message queue),
two `flask worker` processes (RQ jobs and the routing timers), and the traffic simulator
(`flask simulate`, which also plays Twilio with its stub) driving both web processes:
requests and agent sockets go round them. Throwaway PostgreSQL database
`cc_bench_busy_<pid>` (migrated, dropped at the end, also on Ctrl-C or SIGTERM); Redis DB
`--redis-url` (4 by default) flushed before and after.

Setup: an always-open copy of the shipped IVR flow (its business-hours node is taken out,
so the run does not depend on the clock), and the flow's two queues created up front
("General", the default queue for voice and email, and "Cards": the flow's enqueue node
would otherwise send cards callers to the default queue) with a wrap-up of
`--queue-wrapup-s` that the agents end themselves (`wrapup_done`), and no callback on
abandon (the simulator does not model callbacks).

The busy-hour run: `--base-rate` calls/s with a burst at `--peak-rate` for
`--burst-length` s, `--agents` simulated agents, callers who wait `--patience` s on
average, talks of `--handle` s, agents who think `--think` s and wrap up `--wrapup` s,
`--email-share` emails per call. At 20 calls/s that is 20 x (1 + 15 + 2) = 360 erlangs on
500 agents; the burst's 720 builds a queue and callers abandon, which is the point.
Then the saturation ladder: short constant-rate runs (`--step-seconds`, same agents and
behaviour), upwards from the bottom of `--ladder`, stopping at the first rate whose webhook
p99 passes 100 ms (`saturation_calls_per_s`; `last_rate_under_per_s` is the one before).

Figures: the simulator's (calls_per_s, webhook and offer p99 from each request's or
contact's scheduled time, double offers, the board's difference over the run against the
simulator's ground truth), and the database's after the run: `lost` counts the calls a
webhook accepted (2xx) that are neither answered, abandoned (or ended otherwise, e.g. in
the IVR) nor still queued: missing rows, calls stuck offered/connecting/active/wrap-up, or
ended without an outcome. `rss_mb_per_web` is each gunicorn worker's VmRSS at the end. CPU
per part (from /proc and Redis INFO) over the run's sending window. Human-readable lines
first (the simulator's own report passes through), then one JSON object as the last line.
"""

from __future__ import annotations

import argparse
import copy
import ctypes
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

import bench_common
import psycopg
import redis
from bench_common import (
    ROOT,
    children_of,
    free_port,
    machine_busy_s,
    proc_stat,
    stop,
    tail,
    tree_cpu_s,
    wait_http,
    with_db,
)
from psycopg import sql

VENV_BIN = ROOT / ".venv" / "bin"
FLASK = [str(VENV_BIN / "flask"), "--app", "wsgi"]
PUBLIC_BASE_URL = "http://bench.local"  # what both sides sign against; never resolved
SATURATION_MS = 100.0
PARTS = ("web", "worker", "postgres", "redis", "simulator")
# How a voice interaction may legitimately stand once the simulator is done with it.
FINAL_OUTCOMES = (
    "answered",
    "abandoned",
    "voicemail",
    "callback",
    "self_service",
    "transferred",
    "hung_up_in_ivr",
    "busy",
    "no_answer",
    "closed",
)
PR_SET_PDEATHSIG = 1


# ---------------------------------------------------------------- processes


def _die_with_parent() -> None:
    """In the child: SIGTERM it when the bench dies, even by SIGKILL (no orphaned servers)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def start(command: list[str], env: dict, log: Path) -> subprocess.Popen:
    """bench_common.start, plus: the child gets SIGTERM if this process dies."""
    return bench_common.start(command, env, log, preexec_fn=_die_with_parent)


def vm_kb(pid: int, field: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


class Probe:
    """CPU seconds so far of each part of the deployment, and of the whole machine."""

    def __init__(self, pids: dict[str, list[int]], redis_client: redis.Redis) -> None:
        self.pids = pids
        self.redis = redis_client

    def snapshot(self) -> dict[str, float]:
        result = {
            name: sum(tree_cpu_s(pid) for pid in self.pids.get(name, []))
            for name in ("web", "worker", "postgres", "simulator")
        }
        info = self.redis.info("cpu")
        result["redis"] = float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
        result["machine"] = machine_busy_s()
        result["at"] = time.perf_counter()
        return result


def cpu_split(before: dict[str, float] | None, after: dict[str, float] | None) -> dict:
    if not before or not after or after["at"] <= before["at"]:
        return {}
    elapsed = after["at"] - before["at"]
    used = {k: after[k] - before[k] for k in (*PARTS, "machine")}
    result = {f"{k}_cores": round(used[k] / elapsed, 3) for k in PARTS}
    result["machine_cores"] = round(used["machine"] / elapsed, 3)
    result["other_cores"] = round(
        max(used["machine"] - sum(used[k] for k in PARTS), 0) / elapsed, 3
    )
    result["window_s"] = round(elapsed, 1)
    return result


# ---------------------------------------------------------------- setup


def always_open_flow(path: Path) -> dict:
    """The shipped flow with its business-hours check taken out: welcome -> language."""
    flow = json.loads((ROOT / "contact_center" / "ivr" / "default_flow.json").read_text())
    flow = copy.deepcopy(flow)
    nodes = flow["nodes"]
    hours = nodes.pop("hours")
    nodes["welcome"]["next"] = hours["open"]
    closed = hours["closed"]
    others = json.dumps({k: v for k, v in nodes.items() if k != closed})
    if closed in nodes and f'"{closed}"' not in others and flow["start"] != closed:
        nodes.pop(closed)  # only the hours node led there
    flow["name"] = "busy-hour"
    path.write_text(json.dumps(flow, indent=2))
    return flow


def create_queues(env: dict, wrapup_s: int) -> list[str]:
    """The flow's queues, up front: General (the default, voice and email) and Cards."""
    sys.path.insert(0, str(ROOT))
    from contact_center import create_app
    from contact_center.extensions import db
    from contact_center.routing import services as routing

    keys = ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN")
    app = create_app({key: env[key] for key in keys})
    common = {"wrapup_s": wrapup_s, "callback_on_abandon": False}
    with app.app_context():
        routing.create_queue(name="General", channels=["voice", "email"], is_default=True, **common)
        routing.create_queue(name="Cards", channels=["voice"], **common)
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    return ["General", "Cards"]


# ---------------------------------------------------------------- one simulator run


def simulate(
    args: argparse.Namespace,
    env: dict,
    urls: list[str],
    profile: str,
    duration: float,
    drain: float,
    probe: Probe,
    log: Path,
) -> tuple[dict, dict, float]:
    """One `flask simulate` run; its output passes through. Returns (its JSON result, the
    CPU split over its traffic, the wall time)."""
    command = [
        *FLASK,
        "simulate",
        *(part for url in urls for part in ("--url", url)),
        "--agents",
        str(args.agents),
        "--profile",
        profile,
        "--duration",
        str(duration),
        "--drain",
        str(drain),
        "--seed",
        str(args.seed),
        "--patience",
        str(args.patience),
        "--handle",
        str(args.handle),
        "--think",
        str(args.think),
        "--wrapup",
        str(args.wrapup),
        "--reject-share",
        str(args.reject_share),
        "--miss-share",
        str(args.miss_share),
        "--email-share",
        str(args.email_share),
        "--json",
    ]
    env = {**env, "PYTHONUNBUFFERED": "1"}  # its progress lines as they come
    print(f"$ flask --app wsgi simulate {' '.join(command[4:])}", flush=True)
    started = time.perf_counter()
    with open(log, "ab") as errors:
        proc = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=errors,
            start_new_session=True,
            preexec_fn=_die_with_parent,  # noqa: PLW1509
            text=True,
        )
    before = after = None
    result: dict = {}
    try:
        probe.pids["simulator"] = [proc.pid]
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip("\n")
            if line.startswith("{"):
                after = probe.snapshot()
                result = json.loads(line)
                continue
            if line.startswith("simulator:") and "agents connected" in line:
                before = probe.snapshot()
            print(f"  | {line}", flush=True)
        proc.wait(timeout=60)
    finally:
        stop(proc)
        probe.pids.pop("simulator", None)
    if not result:
        raise RuntimeError(f"flask simulate exited with {proc.returncode}:\n{tail(log)}")
    return result, cpu_split(before, after), time.perf_counter() - started


# ---------------------------------------------------------------- the database's view


def max_interaction_id(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT coalesce(max(id), 0) FROM interactions").fetchone()[0]


def accepted_calls(result: dict) -> int:
    """Calls whose incoming-call webhook got a 2xx (the simulator counts the others)."""
    refused = sum(
        n for key, n in result["errors"].items() if key.startswith("/webhooks/twilio/voice:")
    )
    return result["calls"] - refused


def settle(database_url: str, after_id: int, quiet_s: float = 5.0, limit_s: float = 180.0) -> float:
    """Wait until the run's interactions stop changing (a saturated server may still be
    working through requests the simulator gave up on); returns the seconds waited."""
    query = (
        "SELECT count(*), coalesce(sum(hashtext(status || coalesce(outcome, ''))), 0) "
        "FROM interactions WHERE id > %s"
    )
    started = time.perf_counter()
    last, since = None, started
    with psycopg.connect(database_url, autocommit=True) as conn:
        while time.perf_counter() - started < limit_s:
            now = conn.execute(query, (after_id,)).fetchone()
            if now != last:
                last, since = now, time.perf_counter()
            elif time.perf_counter() - since >= quiet_s:
                break
            time.sleep(0.5)
    return time.perf_counter() - started


def database_view(database_url: str, after_id: int, result: dict) -> dict:
    """The run's voice interactions in the database against what the simulator saw."""
    with psycopg.connect(database_url) as conn:
        # Offers of one interaction to two agents whose ringing overlapped, by the server's
        # own record: an offer rings from its creation until answered or expired, whichever
        # is first (the timer may record a timeout late). The timestamps come from different
        # processes, so a few milliseconds of overlap are noise; seconds are not.
        overlapping = conn.execute(
            "SELECT count(DISTINCT a.interaction_id) FROM reservations a JOIN reservations b "
            "ON a.interaction_id = b.interaction_id AND a.id < b.id "
            "AND a.agent_id <> b.agent_id "
            "AND a.created_at < least(coalesce(b.responded_at, b.expires_at), b.expires_at) "
            "AND b.created_at < least(coalesce(a.responded_at, a.expires_at), a.expires_at) "
            "WHERE a.interaction_id > %s",
            (after_id,),
        ).fetchone()[0]
        rows = conn.execute(
            "SELECT channel, status, coalesce(outcome, ''), count(*) FROM interactions "
            "WHERE id > %s GROUP BY 1, 2, 3",
            (after_id,),
        ).fetchall()
        pending = conn.execute(
            "SELECT count(*) FROM reservations r JOIN interactions i ON i.id = r.interaction_id "
            "WHERE i.id > %s AND r.status = 'pending'",
            (after_id,),
        ).fetchone()[0]
    voice = {(status, outcome): n for channel, status, outcome, n in rows if channel == "voice"}
    by_channel: dict[str, dict[str, int]] = {}
    for channel, status, outcome, n in rows:
        key = f"{status}/{outcome}" if outcome else status
        by_channel.setdefault(channel, {})[key] = n
    rows_voice = sum(voice.values())
    # Answered and in the agent's wrap-up is answered (the wrap-up ends by its timer).
    ended_ok = sum(
        n
        for (s, o), n in voice.items()
        if o in FINAL_OUTCOMES and (s == "ended" or (s, o) == ("wrapup", "answered"))
    )
    queued = sum(n for (s, _o), n in voice.items() if s == "queued")
    stuck = rows_voice - ended_ok - queued
    accepted = accepted_calls(result)
    missing = max(0, accepted - rows_voice)
    counts = result["counts"]
    sim_answered = counts.get("answered", 0) - counts.get("emails_answered", 0)
    db_answered = sum(n for (s, o), n in voice.items() if o == "answered")
    db_abandoned = sum(n for (s, o), n in voice.items() if o == "abandoned")
    return {
        "lost": stuck + missing,
        "accepted_calls": accepted,
        "voice_rows": rows_voice,
        "missing_rows": missing,
        "stuck": stuck,
        "queued_at_end": queued,
        "pending_reservations_at_end": pending,
        "double_offers": overlapping,
        "answered": {"simulator": sim_answered, "database": db_answered},
        "abandoned": {"simulator": counts.get("abandoned", 0), "database": db_abandoned},
        "statuses": by_channel,
    }


# ---------------------------------------------------------------- main


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=500)
    parser.add_argument("--base-rate", type=float, default=20.0, help="calls/s")
    parser.add_argument("--peak-rate", type=float, default=40.0, help="calls/s in the burst")
    parser.add_argument("--duration", type=float, default=180.0, help="seconds of arrivals")
    parser.add_argument("--burst-start", type=float, default=60.0)
    parser.add_argument("--burst-length", type=float, default=60.0)
    parser.add_argument("--drain", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--patience", type=float, default=30.0)
    parser.add_argument("--handle", type=float, default=15.0)
    parser.add_argument("--think", type=float, default=1.0)
    parser.add_argument("--wrapup", type=float, default=2.0)
    parser.add_argument("--reject-share", type=float, default=0.02)
    parser.add_argument("--miss-share", type=float, default=0.02)
    parser.add_argument("--email-share", type=float, default=0.05)
    parser.add_argument(
        "--queue-wrapup-s", type=int, default=120, help="the queues' wrap-up (agents end it)"
    )
    parser.add_argument("--ladder", default="5,10,15,20,30,40,60,80", help="calls/s, upwards")
    parser.add_argument("--step-seconds", type=float, default=20.0)
    parser.add_argument("--step-drain", type=float, default=10.0)
    parser.add_argument("--skip-saturation", action="store_true")
    parser.add_argument("--web", type=int, default=2, help="gunicorn processes")
    parser.add_argument("--workers", type=int, default=2, help="flask worker processes")
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/4")
    parser.add_argument("--keep-logs", action="store_true", help="print where the logs are")
    parser.add_argument(
        "--keep-db", action="store_true", help="keep the database (its name is printed)"
    )
    args = parser.parse_args()
    if urlparse(args.redis_url).path.strip("/") in ("", "0"):
        parser.error("--redis-url must name a dedicated DB other than 0 (it is flushed)")
    if min(args.agents, args.base_rate, args.duration, args.web, args.workers) <= 0:
        parser.error("--agents, --base-rate, --duration, --web and --workers must be positive")
    args.ladder = [float(r) for r in args.ladder.split(",") if r.strip()]
    return args


def _interrupt(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> int:
    args = parse_args()
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGHUP, _interrupt)
    db_name = f"cc_bench_busy_{os.getpid()}"
    admin_url = with_db(args.pg_url, "postgres")
    database_url = with_db(args.pg_url, db_name)
    account_sid = "AC" + secrets.token_hex(16)
    auth_token = secrets.token_hex(16)
    stub_port = free_port()
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
        "EMAIL_INBOUND_SECRET": secrets.token_hex(16),
    }
    env.pop("SOCKETIO_MESSAGE_QUEUE", None)  # defaults to REDIS_URL, as in production
    env.pop("DEMO_SIMULATOR", None)
    rclient = redis.Redis.from_url(args.redis_url, decode_responses=True)
    log_dir = Path(tempfile.mkdtemp(prefix="cc_bench_busy_"))
    logs = {f"web{i}": log_dir / f"web{i}.log" for i in range(args.web)}
    logs |= {f"worker{i}": log_dir / f"worker{i}.log" for i in range(args.workers)}
    logs["simulator"] = log_dir / "simulator.log"
    procs: dict[str, subprocess.Popen] = {}
    created = False
    result: dict = {}
    bench_started = time.perf_counter()
    try:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db_name)))
            created = True
            pg_version = conn.execute("SHOW server_version").fetchone()[0]
            postmaster_pid = int(proc_stat(conn.info.backend_pid)[1])  # the backend's parent
        rclient.flushdb()
        redis_version = rclient.info("server")["redis_version"]
        subprocess.run(
            [*FLASK, "db", "upgrade"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            check=True,
            timeout=180,
        )
        flow_path = log_dir / "flow.json"
        flow = always_open_flow(flow_path)
        loaded = subprocess.run(
            [*FLASK, "ivr", "load", str(flow_path)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        queues = create_queues(env, args.queue_wrapup_s)
        print(
            f"{loaded.stdout.strip()} Always open: {flow['start']} -> "
            f"{flow['nodes'][flow['start']]['next']}; queues {', '.join(queues)} "
            f"(wrap-up {args.queue_wrapup_s} s, ended by the agents; no callbacks)"
        )

        ports = [free_port() for _ in range(args.web)]
        for i, port in enumerate(ports):
            procs[f"web{i}"] = start(
                [
                    str(VENV_BIN / "gunicorn"),
                    "-c",
                    "gunicorn.conf.py",  # as the Procfile runs it
                    "-k",
                    "gevent",
                    "-w",
                    "1",
                    "--worker-connections",
                    str(args.agents + 1000),
                    "-b",
                    f"127.0.0.1:{port}",
                    "--graceful-timeout",
                    "10",
                    "wsgi:app",
                ],
                env,
                logs[f"web{i}"],
            )
        for i in range(args.workers):
            procs[f"worker{i}"] = start([*FLASK, "worker"], env, logs[f"worker{i}"])
        for i, port in enumerate(ports):
            wait_http(procs[f"web{i}"], port, "/login", logs[f"web{i}"], 60)
        time.sleep(1.0)
        for i in range(args.workers):
            if procs[f"worker{i}"].poll() is not None:
                raise RuntimeError(f"worker {i} exited:\n{tail(logs[f'worker{i}'])}")
        urls = [f"http://127.0.0.1:{port}" for port in ports]
        print(
            f"{args.web} x gunicorn -k gevent -w 1 --worker-connections {args.agents + 1000} "
            f"({', '.join(urls)}), {args.workers} x flask worker; PostgreSQL {pg_version} "
            f"({db_name}), Redis {redis_version} at {args.redis_url} (also the Socket.IO "
            f"message queue); {os.cpu_count()} cores shared by all of it and the simulator",
            flush=True,
        )
        pids = {
            "web": [procs[f"web{i}"].pid for i in range(args.web)],
            "worker": [procs[f"worker{i}"].pid for i in range(args.workers)],
            "postgres": [postmaster_pid],
        }
        probe = Probe(pids, rclient)

        # ---- the busy hour
        profile = (
            f"burst:{args.base_rate:g},{args.peak_rate:g},{args.burst_start:g},"
            f"{args.burst_length:g}"
        )
        first_id = max_interaction_id(database_url)
        main_run, cpu, wall_s = simulate(
            args, env, urls, profile, args.duration, args.drain, probe, logs["simulator"]
        )
        settled_s = settle(database_url, first_id)
        database = database_view(database_url, first_id, main_run)
        database["settled_after_s"] = round(settled_s, 1)
        print(
            f"busy hour ({profile}, {args.duration:g} s, {wall_s:.0f} s in all): "
            f"{main_run['calls']} calls, {main_run['emails']} emails, "
            f"{main_run['calls_per_s']} calls/s; webhook p99 {main_run['webhook_p99_ms']} ms, "
            f"offer p99 {main_run['offer_p99_ms']} ms; double offers "
            f"{main_run['double_offers']}; board vs truth max error "
            f"{main_run['board_vs_truth']['max_error']}"
        )
        print(
            f"database (settled after {database['settled_after_s']} s): "
            f"{database['voice_rows']} voice interactions for "
            f"{database['accepted_calls']} accepted calls; lost {database['lost']} (missing "
            f"{database['missing_rows']}, stuck {database['stuck']}), still queued "
            f"{database['queued_at_end']}; answered sim/db {database['answered']}, abandoned "
            f"{database['abandoned']}; overlapping offers (reservations) "
            f"{database['double_offers']}; "
            f"statuses {database['statuses']}"
        )
        print(f"CPU (cores) over the run's traffic: {cpu}", flush=True)

        # ---- the saturation ladder
        steps: list[dict] = []
        if not args.skip_saturation:
            for rate in args.ladder:
                step_first = max_interaction_id(database_url)
                step, step_cpu, step_wall = simulate(
                    args,
                    env,
                    urls,
                    f"constant:{rate:g}",
                    args.step_seconds,
                    args.step_drain,
                    probe,
                    logs["simulator"],
                )
                settle(database_url, step_first)
                step_db = database_view(database_url, step_first, step)
                steps.append(
                    {
                        "rate_per_s": rate,
                        "calls_per_s": step["calls_per_s"],
                        "webhook_p50_ms": step["webhook_p50_ms"],
                        "webhook_p99_ms": step["webhook_p99_ms"],
                        "offer_p99_ms": step["offer_p99_ms"],
                        "double_offers": step["double_offers"],
                        "double_offers_db": step_db["double_offers"],
                        "lost": step_db["lost"],
                        "errors": sum(step["errors"].values()),
                        "board_vs_truth_max_error": step["board_vs_truth"]["max_error"],
                        "cpu": step_cpu,
                        "wall_s": round(step_wall, 1),
                    }
                )
                print(f"ladder {rate:g}/s: {json.dumps(steps[-1])}", flush=True)
                if (step["webhook_p99_ms"] or 0) > SATURATION_MS:
                    break
        over = next((s for s in steps if (s["webhook_p99_ms"] or 0) > SATURATION_MS), None)
        under = [s for s in steps if (s["webhook_p99_ms"] or 0) <= SATURATION_MS]

        # ---- memory of the web processes, at the end
        rss = []
        peak = []
        for pid in pids["web"]:
            for child in children_of(pid):  # the gunicorn worker(s)
                rss.append((vm_kb(child, "VmRSS") or 0) / 1024)
                peak.append((vm_kb(child, "VmHWM") or 0) / 1024)
        server_tracebacks = sum(
            tail(logs[f"web{i}"], 100000).count("Traceback (most recent call last)")
            for i in range(args.web)
        )
        worker_tracebacks = sum(
            tail(logs[f"worker{i}"], 100000).count("Traceback (most recent call last)")
            for i in range(args.workers)
        )
        targets = {
            "lost": database["lost"] == 0,
            "double_offers": main_run["double_offers"] == 0 and database["double_offers"] == 0,
            "webhook_p99_ms": (main_run["webhook_p99_ms"] or 0) < 100,
            "offer_p99_ms": main_run["offer_p99_ms"] is not None and main_run["offer_p99_ms"] < 100,
            "board_vs_truth": main_run["board_vs_truth"]["max_error"] == 0,
        }
        result = {
            "calls_per_s": main_run["calls_per_s"],
            "saturation_calls_per_s": over["rate_per_s"] if over else None,
            "last_rate_under_per_s": under[-1]["rate_per_s"] if under else None,
            "webhook_p50_ms": main_run["webhook_p50_ms"],
            "webhook_p99_ms": main_run["webhook_p99_ms"],
            "offer_p50_ms": main_run["offer_p50_ms"],
            "offer_p99_ms": main_run["offer_p99_ms"],
            "lost": database["lost"],
            "double_offers": main_run["double_offers"],
            "double_offers_db": database["double_offers"],
            "board_vs_truth_max_error": main_run["board_vs_truth"]["max_error"],
            "board_vs_truth": main_run["board_vs_truth"]["difference"],
            "rss_mb_per_web": {
                "max": round(max(rss, default=0), 1),
                "mean": round(sum(rss) / max(len(rss), 1), 1),
                "peak_max": round(max(peak, default=0), 1),
            },
            "targets_met": targets,
            "errors": main_run["errors"],
            "calls": main_run["calls"],
            "emails": main_run["emails"],
            "truth": main_run["truth"],
            "erlang": main_run["erlang"],
            "counts": main_run["counts"],
            "database": database,
            "cpu": cpu,
            "ladder": steps,
            "server_tracebacks": server_tracebacks,
            "worker_tracebacks": worker_tracebacks,
            "profile": profile,
            "duration_s": args.duration,
            "agents": args.agents,
            "behaviour": {
                k: getattr(args, k)
                for k in (
                    "patience",
                    "handle",
                    "think",
                    "wrapup",
                    "reject_share",
                    "miss_share",
                    "email_share",
                )
            },
            "web_processes": args.web,
            "worker_processes": args.workers,
            "cores": os.cpu_count(),
            "postgres_version": pg_version,
            "redis_version": redis_version,
            "bench_s": round(time.perf_counter() - bench_started, 1),
        }
        print(
            f"saturation (webhook p99 > {SATURATION_MS:g} ms): "
            + ", ".join(f"{s['rate_per_s']:g}/s {s['webhook_p99_ms']} ms" for s in steps)
            + f" -> {result['saturation_calls_per_s']} (last under "
            f"{result['last_rate_under_per_s']})"
        )
        print(
            f"web RSS MB per process {result['rss_mb_per_web']}; tracebacks logged: web "
            f"{server_tracebacks}, worker {worker_tracebacks}"
        )
        print(
            "targets: "
            + ", ".join(f"{name} {'met' if ok else 'NOT met'}" for name, ok in targets.items())
        )
    except KeyboardInterrupt as interrupt:
        print(f"interrupted ({interrupt}): cleaning up", file=sys.stderr)
    finally:
        for name, proc in procs.items():
            code = stop(proc)
            if not result:
                print(f"{name} exit code {code}; its log:\n{tail(logs[name], 30)}", file=sys.stderr)
        try:
            rclient.flushdb()
            rclient.close()
        finally:
            if created and args.keep_db:
                print(f"database kept: {db_name}", file=sys.stderr)
            elif created:
                with psycopg.connect(admin_url, autocommit=True) as conn:
                    conn.execute(
                        sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                            sql.Identifier(db_name)
                        )
                    )
            if args.keep_logs:
                print(f"logs kept in {log_dir}", file=sys.stderr)
            else:
                for path in log_dir.iterdir():
                    path.unlink(missing_ok=True)
                log_dir.rmdir()
    print(json.dumps(result))
    return 0 if result else 1


if __name__ == "__main__":
    sys.exit(main())
