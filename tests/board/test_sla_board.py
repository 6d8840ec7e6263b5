"""The SLA board API: who may read it, its question, tickets by next breach, what is breached
now, compliance today by hand, the 5-second cache in Redis, and a bounded query count."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from contact_center.board import sla_board
from contact_center.db_types import isoformat, utcnow
from contact_center.extensions import db
from contact_center.redis_client import get_redis
from contact_center.tickets.models import Ticket
from tests.sla.test_policies import add_policy, backdate, open_ticket, wall

URL = "/api/v1/board/sla"


@pytest.fixture
def admin(auth_header, create_user):
    return auth_header(create_user("ada", role="admin"))


@pytest.fixture
def agent_headers(auth_header, create_user):
    return auth_header(create_user("alice"))


@pytest.fixture
def supervisor(auth_header, create_user):
    return auth_header(create_user("sam", role="supervisor"))


@contextmanager
def counted() -> Iterator[list[str]]:
    """The SQL statements the database receives inside the block."""
    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", count)


def forget_cache() -> None:
    """What 5 seconds do to the cached answers."""
    redis = get_redis()
    for key in redis.scan_iter(match=f"{sla_board.CACHE_PREFIX}*"):
        redis.delete(key)


def board(client, headers, **query) -> dict:
    response = client.get(URL, query_string=query, headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def reply(client, headers, ticket_id: int) -> None:
    response = client.post(
        f"/api/v1/tickets/{ticket_id}/replies", json={"body": "On it."}, headers=headers
    )
    assert response.status_code == 201, response.get_json()


def minutes_to(iso: str, now: datetime) -> float:
    return (datetime.fromisoformat(iso) - now).total_seconds() / 60


def test_only_supervisors_read_the_sla_board(client, agent_headers, supervisor, admin):
    assert client.get(URL).status_code == 401
    assert client.get(URL, headers={"Authorization": "Bearer nope"}).status_code == 401
    refused = client.get(URL, headers=agent_headers)
    assert refused.status_code == 403
    assert refused.get_json()["error"]["code"] == "forbidden"
    for headers in (supervisor, admin):
        answer = board(client, headers)
        assert answer["tickets"] == []
        assert answer["breached_now"] == {"count": 0, "tickets": []}
        assert answer["compliance_today"] == []
        assert (answer["limit"], answer["queue_id"], answer["cache_s"]) == (100, None, 5)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 501}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"queue_id": 0}, "queue_id"),
        ({"queue_id": "billing"}, "queue_id"),
    ],
)
def test_a_bad_question_gets_422_naming_the_field(client, supervisor, query, field):
    response = client.get(URL, query_string=query, headers=supervisor)
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "validation_error"
    assert field in str(error["fields"])
    assert list(get_redis().scan_iter(match=f"{sla_board.CACHE_PREFIX}*")) == []


def test_tickets_come_by_next_breach_with_every_open_clock(
    client, admin, agent_headers, supervisor
):
    add_policy(
        client,
        admin,
        conditions={"type": ["question"]},
        targets={"normal": {"first_response": wall(60), "resolution": wall(600)}},
        pauses={"resolution": ["pending"]},
    )
    fresh = open_ticket(client, agent_headers, subject="Fresh")  # first response in 60 min
    soon = open_ticket(client, agent_headers, subject="Soon")
    backdate(soon, timedelta(minutes=50))  # first response in 10 min
    late = open_ticket(client, agent_headers, subject="Late")
    backdate(late, timedelta(minutes=70))  # first response breached 10 min ago
    paused = open_ticket(client, agent_headers, subject="Paused")
    reply(client, agent_headers, paused)  # first response met; resolution paused below
    client.patch(f"/api/v1/tickets/{paused}", json={"status": "pending"}, headers=agent_headers)
    solved = open_ticket(client, agent_headers, subject="Solved")
    client.patch(f"/api/v1/tickets/{solved}", json={"status": "solved"}, headers=agent_headers)
    open_ticket(client, agent_headers, subject="No policy", type="incident")
    customer = db.session.get(Ticket, fresh).customer_id
    complaint = client.post(
        "/api/v1/complaints",
        json={
            "customer_id": customer,
            "category": "Fees",
            "channel_received": "email",
            "received_at": isoformat(utcnow()),
        },
        headers=agent_headers,
    )
    assert complaint.status_code == 201, complaint.get_json()
    complaint = complaint.get_json()

    now = utcnow()
    answer = board(client, supervisor)
    rows = answer["tickets"]
    assert [r["id"] for r in rows] == [late, soon, fresh, complaint["ticket_id"], paused]
    by_id = {r["id"]: r for r in rows}

    late_row = by_id[late]
    assert [(c["metric"], c["state"], c["breached"]) for c in late_row["clocks"]] == [
        ("first_response", "breached", True),
        ("resolution", "running", False),
    ]
    first = late_row["clocks"][0]
    assert first["remaining_s"] is None
    assert -11 <= minutes_to(first["breached_since"], now) <= -9
    assert 529 * 60 <= late_row["clocks"][1]["remaining_s"] <= 531 * 60

    soon_first = by_id[soon]["clocks"][0]
    assert soon_first["metric"] == "first_response" and not soon_first["breached"]
    assert 9 * 60 <= soon_first["remaining_s"] <= 10 * 60
    assert 9 <= minutes_to(soon_first["due_at"], now) <= 10
    assert by_id[soon]["next_breach_at"] == soon_first["due_at"]
    assert [c["metric"] for c in by_id[fresh]["clocks"]] == ["first_response", "resolution"]

    complaint_row = by_id[complaint["ticket_id"]]
    assert complaint_row["type"] == "complaint"
    assert complaint_row["complaint_id"] == complaint["id"]
    assert [c["metric"] for c in complaint_row["clocks"]] == [
        "complaint_acknowledge",
        "complaint_final_response",
    ]

    [pending] = by_id[paused]["clocks"]  # the met first response is not an open clock
    assert (pending["metric"], pending["state"], pending["paused"]) == (
        "resolution",
        "paused",
        True,
    )
    assert pending["due_at"] is None and by_id[paused]["next_breach_at"] is None
    assert 599 * 60 <= pending["remaining_s"] <= 600 * 60

    forget_cache()
    assert [r["id"] for r in board(client, supervisor, limit=2)["tickets"]] == [late, soon]


def test_breached_now_counts_every_breached_ticket_and_lists_the_longest_first(
    client, admin, agent_headers, supervisor, make_queue
):
    add_policy(
        client, admin, targets={"normal": {"first_response": wall(60), "resolution": wall(600)}}
    )
    billing = make_queue("Billing")
    cards = make_queue("Cards")
    recent = open_ticket(client, agent_headers, queue_id=billing.id)
    backdate(recent, timedelta(minutes=65))
    oldest = open_ticket(client, agent_headers, queue_id=cards.id)
    backdate(oldest, timedelta(minutes=90))
    fine = open_ticket(client, agent_headers, queue_id=billing.id)
    answer = board(client, supervisor)
    breached = answer["breached_now"]
    assert breached["count"] == 2
    assert [t["id"] for t in breached["tickets"]] == [oldest, recent]
    first = breached["tickets"][0]
    assert first["queue"] == "Cards"
    # Only the clocks past due are listed under breached_now.
    assert [c["metric"] for c in first["clocks"]] == ["first_response"]
    assert first["breached_since"] == first["clocks"][0]["breached_since"]
    assert -31 <= minutes_to(first["breached_since"], utcnow()) <= -29
    assert fine not in [t["id"] for t in breached["tickets"]]

    forget_cache()
    limited = board(client, supervisor, limit=1)["breached_now"]
    assert limited["count"] == 2 and [t["id"] for t in limited["tickets"]] == [oldest]
    one_queue = board(client, supervisor, queue_id=billing.id)
    assert one_queue["breached_now"]["count"] == 1
    assert [t["id"] for t in one_queue["breached_now"]["tickets"]] == [recent]
    assert {t["id"] for t in one_queue["tickets"]} == {recent, fine}

    # A running clock past its due time (its timer not run yet) counts as breached already.
    an_hour_on = sla_board.board(queue_id=billing.id, now=utcnow() + timedelta(minutes=61))
    assert an_hour_on["breached_now"]["count"] == 2
    assert [t["id"] for t in an_hour_on["breached_now"]["tickets"]] == [recent, fine]
    [clock] = [c for c in an_hour_on["breached_now"]["tickets"][1]["clocks"]]
    assert (clock["metric"], clock["state"], clock["breached"]) == (
        "first_response",
        "running",
        True,
    )


def test_compliance_today_per_queue_as_counted_by_hand(
    client, admin, agent_headers, supervisor, make_queue
):
    add_policy(client, admin, targets={"normal": {"first_response": wall(60)}})
    billing = make_queue("Billing")
    cards = make_queue("Cards")
    # Billing: one first response on time, one two hours late (met today and breached today).
    on_time = open_ticket(client, agent_headers, queue_id=billing.id)
    reply(client, agent_headers, on_time)
    late = open_ticket(client, agent_headers, queue_id=billing.id)
    backdate(late, timedelta(hours=2))
    reply(client, agent_headers, late)
    # Cards: two on time today; one met yesterday does not count.
    for _ in range(2):
        reply(client, agent_headers, open_ticket(client, agent_headers, queue_id=cards.id))
    yesterday = open_ticket(client, agent_headers, queue_id=cards.id)
    reply(client, agent_headers, yesterday)
    backdate(yesterday, timedelta(days=1, hours=1))
    # Still running: neither met nor breached yet.
    open_ticket(client, agent_headers, queue_id=cards.id)

    compliance = board(client, supervisor)["compliance_today"]
    assert [
        (q["queue"], q["met"], q["breached"], q["total"], q["met_pct"]) for q in compliance
    ] == [("Billing", 1, 1, 2, 50.0), ("Cards", 2, 0, 2, 100.0)]
    assert compliance[0]["metrics"] == [
        {"metric": "first_response", "met": 1, "breached": 1, "total": 2, "met_pct": 50.0}
    ]
    only_cards = board(client, supervisor, queue_id=cards.id)["compliance_today"]
    assert [(q["queue_id"], q["met"], q["breached"]) for q in only_cards] == [(cards.id, 2, 0)]


def test_a_second_call_within_five_seconds_is_answered_from_redis(
    client, admin, agent_headers, supervisor
):
    add_policy(client, admin, targets={"normal": {"first_response": wall(60)}})
    first_ticket = open_ticket(client, agent_headers)
    with counted() as statements:
        first = sla_board.cached_board(None, 100)
    assert len(statements) > 0
    key = sla_board.cache_key(None, 100)
    assert key.startswith("board:sla:") and "{cc" not in key
    assert 0 < get_redis().pttl(key) <= 5000
    with counted() as statements:
        second = sla_board.cached_board(None, 100)
    assert statements == []
    assert second["computed_at"] == first["computed_at"]
    assert second["tickets"] == first["tickets"]

    # Over the API too: a breach that happens meanwhile shows once the answer expires.
    api_first = board(client, supervisor)
    late = open_ticket(client, agent_headers)
    backdate(late, timedelta(minutes=70))
    cached = board(client, supervisor)
    assert [t["id"] for t in cached["tickets"]] == [first_ticket]
    assert cached["computed_at"] == api_first["computed_at"]
    assert cached["breached_now"]["count"] == 0
    assert cached["server_time"] >= api_first["server_time"]  # the clock is fresh each time
    board(client, supervisor, limit=5)  # another key: its own answer
    assert get_redis().exists(sla_board.cache_key(None, 5))
    forget_cache()
    fresh = board(client, supervisor)
    assert [t["id"] for t in fresh["tickets"]] == [late, first_ticket]
    assert fresh["breached_now"]["count"] == 1


def test_boards_arriving_while_one_computes_wait_for_its_answer(app, client, admin, agent_headers):
    add_policy(client, admin, targets={"normal": {"first_response": wall(60)}})
    open_ticket(client, agent_headers)
    key = sla_board.cache_key(None, 100)
    answer = sla_board.board()
    redis = get_redis()
    redis.set(f"{key}:lock", "1", ex=10)  # another request is computing

    def finish() -> None:
        time.sleep(0.3)
        redis.set(key, json.dumps({**answer, "computed_at": "theirs"}), px=5000)

    other = threading.Thread(target=finish)
    other.start()
    with counted() as statements:
        waited = sla_board.cached_board(None, 100)
    other.join()
    assert statements == []
    assert waited["computed_at"] == "theirs"

    # A computation that never finishes holds nobody up for long: they compute themselves.
    redis.delete(key)
    redis.set(f"{key}:lock", "1", ex=10)
    with counted() as statements:
        own = sla_board.cached_board(None, 100)
    assert len(statements) > 0 and own["computed_at"] != "theirs"
    assert not redis.exists(f"{key}:lock")


def test_the_query_count_does_not_grow_with_the_tickets(
    client, admin, agent_headers, supervisor, make_queue
):
    add_policy(
        client, admin, targets={"normal": {"first_response": wall(60), "resolution": wall(600)}}
    )
    queues = [make_queue("Billing"), make_queue("Cards")]

    def add(count: int, offset: int) -> None:
        for n in range(count):
            ticket_id = open_ticket(client, agent_headers, queue_id=queues[n % 2].id)
            if n % 3 == 0:
                backdate(ticket_id, timedelta(minutes=65 + offset + n))  # breached
            elif n % 3 == 1:
                reply(client, agent_headers, ticket_id)  # met today

    def statements_of_one_board() -> tuple[int, dict]:
        forget_cache()
        with counted() as statements:
            answer = board(client, supervisor)
        return len(statements), answer

    add(3, 0)
    few, small = statements_of_one_board()
    add(12, 100)
    many, large = statements_of_one_board()
    assert len(large["tickets"]) == 15 > len(small["tickets"]) == 3
    assert large["breached_now"]["count"] == 5 > small["breached_now"]["count"] == 1
    assert all(t["clocks"] for t in large["tickets"])
    assert many == few
    assert few <= 10


def test_listing_is_bounded_by_limit(client, admin, agent_headers, supervisor):
    add_policy(client, admin, targets={"normal": {"first_response": wall(60)}})
    made: list[int] = []
    for n in range(4):
        ticket_id = open_ticket(client, agent_headers)
        backdate(ticket_id, timedelta(minutes=10 * (n + 1)))  # later ones are nearer a breach
        made.append(ticket_id)
    answer = board(client, supervisor, limit=3)
    assert [t["id"] for t in answer["tickets"]] == made[::-1][:3]


def _names(rows: list[dict]) -> list[str]:
    return [r["subject"] for r in rows]


def test_a_queue_moved_ticket_follows_its_queue(
    client, admin, agent_headers, supervisor, make_queue
):
    add_policy(client, admin, targets={"normal": {"first_response": wall(60)}})
    billing = make_queue("Billing")
    cards = make_queue("Cards")
    ticket_id = open_ticket(client, agent_headers, queue_id=billing.id, subject="Moves")
    assert _names(board(client, supervisor, queue_id=billing.id)["tickets"]) == ["Moves"]
    client.patch(f"/api/v1/tickets/{ticket_id}", json={"queue_id": cards.id}, headers=admin)
    forget_cache()
    assert board(client, supervisor, queue_id=billing.id)["tickets"] == []
    [row] = board(client, supervisor, queue_id=cards.id)["tickets"]
    assert (row["queue_id"], row["queue"]) == (cards.id, "Cards")
