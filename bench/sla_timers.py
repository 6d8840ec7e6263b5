"""SLA timer timeliness: N breach deadlines due uniformly over a window, two `flask worker`s.

    .venv/bin/python bench/sla_timers.py [--timers 10000] [--window 60] [--workers 2]
        [--pg-url postgresql://postgres@127.0.0.1:5432] [--redis-url redis://127.0.0.1:6379/10]

On a throwaway PostgreSQL database (`cc_bench_sla_<pid>`, migrated with the real
migrations, dropped at the end) and a dedicated Redis DB (flushed before and after), this
starts `--workers` real `flask worker` processes (RQ jobs plus the timer poller each) and,
once all of them are up, writes `--timers` tickets whose first-response deadline falls due
uniformly over `--window` seconds starting ten seconds later (contact_center.simulate.
sla_load: calendar-time policy, one escalation step at breach that tags the ticket) and
rebuilds the timer set from the database. It waits until every step is recorded (or the
window plus two minutes passed).

Figures: timers, fired (steps recorded), duplicates (steps recorded more than once for one
ticket, plus tickets tagged more than once), lost (timers - distinct tickets fired), and
lateness = when the step ran (its log entry's time) - when it was due: p50, p99, max.
Targets: duplicates 0, lateness_p99_s < 2. Human-readable lines, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import psycopg
import redis
import sqlalchemy as sa
from psycopg import sql
from rq import Worker

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from contact_center import create_app  # noqa: E402
from contact_center.extensions import db  # noqa: E402
from contact_center.simulate.sla_load import fired_count, fired_steps, seed_due_tickets  # noqa: E402
from contact_center.tickets.models import Ticket  # noqa: E402

JOB_TIME = re.compile(r"run_timers\(.*?\) job in 0:00:([\d.]+)s")  # RQ's log line


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timers", type=int, default=10_000)
    parser.add_argument("--window", type=float, default=60.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/10")
    args = parser.parse_args()

    name = f"cc_bench_sla_{os.getpid()}"
    with psycopg.connect(f"{args.pg_url}/postgres", autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    database_url = f"{args.pg_url}/{name}"
    redis.Redis.from_url(args.redis_url).flushdb()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": args.redis_url,
        "SECRET_KEY": "bench-secret-not-used-for-anything",
    }
    logs = tempfile.TemporaryDirectory()
    workers: list[subprocess.Popen] = []
    try:
        subprocess.run(
            [sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
        )
        app = create_app(
            {
                "DATABASE_URL": database_url,
                "REDIS_URL": args.redis_url,
                "SECRET_KEY": env["SECRET_KEY"],
            }
        )
        with app.app_context():
            for index in range(args.workers):
                log = open(Path(logs.name) / f"worker{index}.log", "wb")  # noqa: SIM115
                workers.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "flask", "--app", "wsgi", "worker"],
                        cwd=ROOT,
                        env=env,
                        stdout=subprocess.DEVNULL,
                        stderr=log,
                    )
                )
            # The window starts once every worker is up (registered with RQ), so their
            # start-up time is not counted as lateness.
            raw = redis.Redis.from_url(args.redis_url)
            ready_by = time.monotonic() + 60
            while Worker.count(connection=raw) < args.workers and time.monotonic() < ready_by:
                time.sleep(0.2)
            lead_s = 10.0  # longer than writing the tickets takes
            started = time.perf_counter()
            dues = seed_due_tickets(args.timers, args.window, lead_s=lead_s)
            print(
                f"{Worker.count(connection=raw)} workers up; seeded {len(dues)} timers in "
                f"{time.perf_counter() - started:.1f} s, due {dues[0]:%H:%M:%S.%f} .. "
                f"{dues[-1]:%H:%M:%S.%f}"
            )
            deadline = time.monotonic() + lead_s + args.window + 120
            done = fired_count()
            while done < args.timers and time.monotonic() < deadline:
                time.sleep(1.0)
                done = fired_count()
                print(f"  fired {done}/{args.timers}", flush=True)
            time.sleep(2.0)  # a duplicate would be recorded by now
            fired = fired_steps()
            tags = db.session.scalars(sa.select(Ticket.tags)).all()
            db.session.rollback()
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        redis.Redis.from_url(args.redis_url).flushdb()
        with psycopg.connect(f"{args.pg_url}/postgres", autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    jobs = []
    for log in Path(logs.name).glob("worker*.log"):
        jobs += [float(m) for m in JOB_TIME.findall(log.read_text(errors="replace"))]
    logs.cleanup()
    per_ticket = Counter(ticket_id for ticket_id, _, _ in fired)
    duplicates = sum(n - 1 for n in per_ticket.values())
    duplicates += sum(1 for t in tags if t.count("late") > 1)
    lateness = [(recorded - due).total_seconds() for _, due, recorded in fired] or [0.0]
    result = {
        "timers": args.timers,
        "window_s": args.window,
        "workers": args.workers,
        "fired": len(per_ticket),
        "lost": args.timers - len(per_ticket),
        "duplicates": duplicates,
        "early": sum(1 for value in lateness if value < 0),
        "lateness_p50_s": round(statistics.median(lateness), 3),
        "lateness_p99_s": round(percentile(lateness, 0.99), 3),
        "lateness_max_s": round(max(lateness), 3),
        "jobs": len(jobs),
        "job_mean_s": round(statistics.mean(jobs), 3) if jobs else None,
    }
    by_due: dict[int, list[float]] = {}
    start = min(due for _, due, _ in fired) if fired else None
    for _, due, recorded in fired:
        bucket = int((due - start).total_seconds() // 10) * 10
        by_due.setdefault(bucket, []).append((recorded - due).total_seconds())
    for bucket, values in sorted(by_due.items()):
        print(
            f"  due at +{bucket:>3} s: {len(values):>5} timers, lateness p50 "
            f"{statistics.median(values):.2f} s, p99 {percentile(values, 0.99):.2f} s"
        )
    print(
        f"timers {result['timers']} over {args.window:.0f} s, {args.workers} workers: "
        f"fired {result['fired']}, lost {result['lost']}, duplicates {duplicates}"
    )
    print(
        f"lateness p50 {result['lateness_p50_s']} s, p99 {result['lateness_p99_s']} s, "
        f"max {result['lateness_max_s']} s (target p99 < 2 s, duplicates 0)"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
