"""The screen pop (customer history) under a large database: p50/p99 against a primary-key read.

    .venv/bin/python bench/screen_pop.py --backend postgresql|sqlite
        [--customers 1000000] [--interactions 10000000] [--samples 2000]
        [--pg-url postgresql://postgres@127.0.0.1:5432] [--sqlite-dir instance]

Loads (once; a later run with the same sizes reuses it) a database migrated with the real
migrations: N customers with one phone each, M interactions spread uniformly over them and
the last two years, a ticket for one customer in five (a fifth of those open), a note for
one in ten, a few queues and agents. Rows are generated inside the database
(`generate_series` on PostgreSQL, a recursive CTE on SQLite), then ANALYZE.

Then, in this process through the app's own code: `customers.services.history()` for
`--samples` random customer ids, as the history endpoint calls it (the screen pop: profile,
identities, open tickets with SLA state, complaints with their clocks, last interactions,
notes, satisfaction), each on a fresh session so nothing is cached, timed from call to dict;
and the floor, a primary-key read of one customer (`session.get`: the customer and its owner,
then its identities) on a fresh session, timed the same way. It also counts the statements
the screen pop sends.
Prints the figures, then one JSON line: p50_ms, p99_ms, pk_p99_ms, ratio (p99 / pk_p99),
statements, customers, interactions, backend, load_s (0 when reused).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

import psycopg
import sqlalchemy as sa
from flask_migrate import upgrade
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from contact_center import create_app  # noqa: E402
from contact_center.customers.models import Customer  # noqa: E402
from contact_center.customers.services import history  # noqa: E402
from contact_center.extensions import db  # noqa: E402
from contact_center.system_settings import SystemSetting  # noqa: E402

MARKER = "bench.screen_pop.loaded"
QUEUES = ("General", "Cards", "Payments", "Fraud")
AGENTS = 50


def _series(backend: str, n: int) -> str:
    """A row source of x = 1..n inside the database."""
    if backend == "postgresql":
        return f"generate_series(1, {n}) AS g(x)"
    return (
        f"(WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM s WHERE x < {n}) "
        "SELECT x FROM s) AS g"
    )


def _rand_int(backend: str, n: int) -> str:
    """A random integer 1..n per row."""
    if backend == "postgresql":
        return f"(1 + floor(random() * {n}))::int"
    return f"(1 + abs(random()) % {n})"


def _ago(backend: str, max_days: int) -> str:
    """A random moment in the last max_days (naive UTC, as the models store it)."""
    if backend == "postgresql":
        return f"(now() AT TIME ZONE 'UTC') - random() * interval '{max_days} days'"
    return f"datetime('now', '-' || (abs(random()) % {max_days * 86400}) || ' seconds')"


def load(backend: str, customers: int, interactions: int) -> None:
    """Generate the data set inside the database."""
    now = "(now() AT TIME ZONE 'UTC')" if backend == "postgresql" else "datetime('now')"
    json_empty_list, json_empty_obj = (
        ("'[]'::json", "'{}'::json") if backend == "postgresql" else ("'[]'", "'{}'")
    )
    false, true = ("false", "true") if backend == "postgresql" else ("0", "1")
    value = (
        "round((random() * 100000)::numeric, 2)"
        if backend == "postgresql"
        else "abs(random()) % 10000000 / 100.0"
    )
    statements = []
    for index, name in enumerate(QUEUES, start=1):
        statements.append(
            f"INSERT INTO queues (id, name, channels, required_skills, ordering, strategy, weight, "
            f"teams, overflow_steps, allow_during_voice, max_missed_offers, callback_on_abandon, "
            f"max_wait_s, max_wait_action, wrapup_s, service_level_threshold_s, offer_timeout_s, "
            f"record_calls, is_default, created_at) VALUES ({index}, '{name}', "
            '\'["voice", "email"]\', '
            f"{json_empty_obj}, 'fifo', 'longest_idle', 0, {json_empty_list}, {json_empty_list}, "
            f"{false}, 2, {true}, 0, 'voicemail', 0, 20, 15, {false}, "
            f"{true if index == 1 else false}, {now})"
        )
    statements += [
        f"INSERT INTO users (id, username, password_hash, display_name, role, capacity, presence, "
        f"status, status_since, is_active_user, session_epoch, created_at) SELECT x, "
        f"'agent' || x, 'x', 'Agent ' || x, 'agent', {json_empty_obj}, 'offline', 'offline', "
        f"{now}, {true}, 0, {now} FROM {_series(backend, AGENTS)}",
        f"INSERT INTO customers (id, name, type, status, region, tier, lifetime_value, "
        f"marketing_opt_out, tags, created_at, updated_at) SELECT x, 'Customer ' || x, "
        f"'end_customer', 'active', 'UK', 'C', {value}, {false}, {json_empty_list}, {now}, {now} "
        f"FROM {_series(backend, customers)}",
        f"INSERT INTO customer_identities (customer_id, kind, value) SELECT x, 'phone', "
        f"'+447' || (100000000 + x) FROM {_series(backend, customers)}",
        f"INSERT INTO customer_notes (customer_id, text, created_at) SELECT x * 10, "
        f"'Prefers email.', {now} FROM {_series(backend, customers // 10)}",
        f"INSERT INTO tickets (number, subject, status, priority, type, channel, customer_id, "
        f"tags, custom_fields, created_at, updated_at) SELECT 't' || x, 'Question ' || x, "
        f"CASE WHEN x % 5 = 0 THEN 'open' ELSE 'solved' END, 'normal', 'question', 'email', "
        f"x * 5, {json_empty_list}, {json_empty_obj}, {now}, {now} "
        f"FROM {_series(backend, customers // 5)}",
        f"INSERT INTO interactions (channel, direction, customer_id, queue_id, agent_id, priority, "
        f"required_skills, is_complaint, overflow_step, recording_paused, on_hold, hold_s, status, "
        f"created_at, outcome, duration_s, satisfaction) SELECT "
        f"CASE WHEN x % 3 = 0 THEN 'email' ELSE 'voice' END, 'inbound', "
        f"{_rand_int(backend, customers)}, 1 + x % {len(QUEUES)}, 1 + x % {AGENTS}, 0, "
        f"{json_empty_obj}, {false}, 0, {false}, {false}, 0, 'ended', {_ago(backend, 730)}, "
        f"'answered', x % 600, CASE WHEN x % 7 = 0 THEN 1 + x % 5 END "
        f"FROM {_series(backend, interactions)}",
    ]
    for statement in statements:
        db.session.execute(sa.text(statement))
    if backend == "postgresql":
        for table in ("queues", "users", "customers"):
            db.session.execute(
                sa.text(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT max(id) FROM {table}))"
                )
            )
    db.session.add(
        SystemSetting(key=MARKER, value={"customers": customers, "interactions": interactions})
    )
    db.session.commit()
    db.session.execute(sa.text("ANALYZE"))
    db.session.commit()


def _timed(fn, samples: list[int]) -> list[float]:
    times = []
    for customer_id in samples:
        db.session.remove()  # a fresh session: no identity-map cache between samples
        start = time.perf_counter()
        fn(customer_id)
        times.append((time.perf_counter() - start) * 1000)
    db.session.remove()
    return times


def _statements_per_call(fn, customer_id: int) -> int:
    sent = []

    def count(*args) -> None:
        sent.append(args[2])

    db.session.remove()
    sa.event.listen(db.engine, "before_cursor_execute", count)
    fn(customer_id)
    sa.event.remove(db.engine, "before_cursor_execute", count)
    db.session.remove()
    return len(sent)


def _pct(values: list[float], q: float) -> float:
    return (
        statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]
        if len(values) > 1
        else values[0]
    )


def _database_url(args: argparse.Namespace) -> str:
    suffix = f"{args.customers}_{args.interactions}"
    if args.backend == "sqlite":
        directory = Path(args.sqlite_dir)
        directory.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{(directory / f'bench_screen_pop_{suffix}.db').resolve()}"
    name = f"cc_bench_screen_pop_{suffix}"
    with psycopg.connect(f"{args.pg_url}/postgres", autocommit=True) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
        ).fetchone()
        if not exists:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return f"{args.pg_url}/{name}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("postgresql", "sqlite"), required=True)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--interactions", type=int, default=10_000_000)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--sqlite-dir", default=str(ROOT / "instance"))
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    url = _database_url(args)
    app = create_app(
        {"DATABASE_URL": url, "REDIS_URL": None, "TESTING": True, "SECRET_KEY": "bench"}
    )
    with app.app_context():
        upgrade()
        load_s = 0.0
        if db.session.get(SystemSetting, MARKER) is None:
            print(
                f"loading {args.customers:,} customers and {args.interactions:,} interactions...",
                flush=True,
            )
            start = time.perf_counter()
            load(args.backend, args.customers, args.interactions)
            load_s = time.perf_counter() - start
            print(f"loaded in {load_s:.0f} s", flush=True)
        rng = random.Random(args.seed)
        samples = [rng.randint(1, args.customers) for _ in range(args.samples)]
        # Warm-up: the first queries pay for connections and statement caches.
        _timed(history, samples[:50])
        statements = _statements_per_call(history, samples[0])
        pop = _timed(history, samples)
        pk = _timed(lambda cid: db.session.get(Customer, cid), samples)
        counts = (
            db.session.scalar(sa.select(sa.func.count()).select_from(Customer)),
            db.session.scalar(sa.text("SELECT count(*) FROM interactions")),
        )
    result = {
        "p50_ms": round(_pct(pop, 50), 3),
        "p99_ms": round(_pct(pop, 99), 3),
        "pk_p99_ms": round(_pct(pk, 99), 3),
        "ratio": round(_pct(pop, 99) / _pct(pk, 99), 2),
        "statements": statements,
        "customers": counts[0],
        "interactions": counts[1],
        "backend": args.backend,
        "load_s": round(load_s, 1),
    }
    print(
        f"screen pop over {args.samples} customers: p50 {result['p50_ms']} ms, "
        f"p99 {result['p99_ms']} ms ({statements} statement(s) each); "
        f"primary-key read p99 {result['pk_p99_ms']} ms"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
