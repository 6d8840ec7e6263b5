"""The live board: figures kept in Redis as routing works, equal to a hand computation."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from contact_center.agents.services import issue_token
from contact_center.board import live
from contact_center.extensions import db, socketio
from contact_center.routing import services as routing
from tests.routing.conftest import fire_timers, pending


@pytest.fixture
def board(app, client, create_user):
    """A supervisor's board: a /supervisor socket, and its latest view of every queue."""
    token, _ = issue_token(create_user("sue", role="supervisor"))
    socket = socketio.test_client(
        app, namespace="/supervisor", auth={"token": token}, flask_test_client=client
    )
    assert socket.is_connected("/supervisor")
    yield socket
    socket.disconnect("/supervisor")


def latest(socket) -> tuple[dict, dict]:
    """(queues by id, agents by id) after the snapshot and every delta received so far."""
    queues: dict = {}
    agents: dict = {}
    for packet in socket.get_received("/supervisor"):
        payload = packet["args"][0]
        if packet["name"] == "board":
            queues = {q["id"]: q for q in payload["queues"]}
            agents = {a["id"]: a for a in payload["agents"]}
        elif packet["name"] == "board_delta":
            for q in payload.get("queues", []):
                queues.setdefault(q["id"], {}).update(q)
            for a in payload.get("agents", []) + payload.get("agent_counts", []):
                agents.setdefault(a["id"], {}).update(a)
    return queues, agents


def backdate(interaction, seconds: int) -> None:
    interaction.enqueued_at -= timedelta(seconds=seconds)
    db.session.commit()


def test_the_board_counts_a_scripted_day_as_by_hand(board, make_queue, agent, arrive):
    queue = make_queue("Billing", channels=["email"], service_level_threshold_s=20, wrapup_s=0)
    late, quick, gave_up_late, gave_up_early = (arrive(queue) for _ in range(4))
    queues, _ = latest(board)
    assert queues[queue.id]["waiting"] == 4
    for interaction, waited in ((late, 30), (quick, 5), (gave_up_late, 25), (gave_up_early, 3)):
        backdate(interaction, waited)

    routing.abandon(gave_up_late)  # after the threshold: counts against the service level
    routing.abandon(gave_up_early)  # within it: left out of the service level
    sam = agent("sam", capacity={"email": 1})
    offer = pending(sam)
    assert offer.interaction_id == late.id
    routing.accept(sam, offer.id)
    routing.complete(sam, late.id)
    routing.accept(sam, pending(sam).id)  # quick, 5 s
    routing.complete(sam, quick.id)

    queues, agents = latest(board)
    today = queues[queue.id]["today"]
    assert queues[queue.id]["waiting"] == 0
    assert (today["offered"], today["answered"], today["abandoned"]) == (4, 2, 2)
    assert (today["answered_within"], today["abandoned_within"]) == (1, 1)
    assert today["service_level"] == pytest.approx(1 / (4 - 1), abs=1e-4)  # 1 / (4 - 1)
    waits = {}
    for interaction in (late, quick, gave_up_late, gave_up_early):
        db.session.refresh(interaction)
        end = interaction.answered_at or interaction.ended_at
        waits[interaction.id] = (end - interaction.enqueued_at).total_seconds()
    # The recorded waits: 30, 5, 25 and 3 s plus however long the steps above took.
    assert today["asa_s"] == pytest.approx((waits[late.id] + waits[quick.id]) / 2, abs=0.1)
    assert today["abandon_rate"] == 0.5
    # Patience: every caller's wait over the abandons, about (30 + 5 + 25 + 3) / 2.
    assert today["patience_s"] == pytest.approx(sum(waits.values()) / 2, abs=0.1)
    assert today["handled"] == 2
    assert queues[queue.id]["interval"]["offered"] == 4  # all in this quarter hour
    assert agents[sam.id]["handled_today"] == 2
    assert agents[sam.id]["status"] == "available"


def test_a_board_opened_later_gets_the_same_figures_from_redis_alone(
    app, client, board, make_queue, agent, arrive, create_user
):
    queue = make_queue("Sales", channels=["email"])
    waiting = arrive(queue)
    backdate(waiting, 12)
    sam = agent("sam", capacity={"email": 1})
    routing.accept(sam, pending(sam).id)
    arrive(queue)  # waits: sam is at capacity
    live_view, _ = latest(board)

    token, _ = issue_token(create_user("viv", role="supervisor"))
    later = socketio.test_client(
        app, namespace="/supervisor", auth={"token": token}, flask_test_client=client
    )
    [snapshot] = [p["args"][0] for p in later.get_received("/supervisor") if p["name"] == "board"]
    opened = {q["id"]: q for q in snapshot["queues"]}[queue.id]
    assert opened["waiting"] == live_view[queue.id]["waiting"] == 1
    assert opened["today"] == live_view[queue.id]["today"]
    assert opened["today"]["answered"] == 1
    assert opened["formula"] == "answered within 20 s / (offered - abandoned within 20 s)"
    assert {a["id"] for a in snapshot["agents"]} >= {sam.id}
    later.disconnect("/supervisor")


def test_agents_cannot_open_the_board_page(client, create_user):
    create_user("agnes", role="agent")
    client.post("/login", data={"username": "agnes", "password": "correct horse battery"})
    assert client.get("/supervisor").status_code in (302, 403)


def test_occupancy_is_time_busy_over_time_busy_or_available_by_hand():
    """Busy 3 s, reserved 0.5 s, wrap-up 1 s, available 4 s, away 5 s (left out), and 2 s more
    available up to now: (3 + 0.5 + 1) / (3 + 0.5 + 1 + 4 + 2) = 4.5 / 10.5."""
    now = 1_700_000_000.0
    day = {b"busy_ms": b"3000", b"reserved_ms": b"500", b"wrapup_ms": b"1000"}
    day |= {b"available_ms": b"4000", b"away_ms": b"5000", b"handled": b"2", b"missed": b"1"}
    state = [b"available", str(int(now * 1000) - 2000).encode()]
    figures = live._agent_figures([day, state, {b"7:voice", b"12:email"}, b"9"], now)
    assert figures["version"] == 9
    assert figures["occupancy"] == round(4.5 / 10.5, 4)
    assert (figures["handled_today"], figures["missed_today"]) == (2, 1)
    assert figures["work"] == [
        {"interaction_id": 7, "channel": "voice"},
        {"interaction_id": 12, "channel": "email"},
    ]


def test_an_agents_row_shows_work_in_hand_and_offers_missed(board, make_queue, agent, arrive):
    queue = make_queue("Support", channels=["email"], wrapup_s=0)
    sam = agent("sam", capacity={"email": 1})
    first = arrive(queue)
    fire_timers(queue.offer_timeout_s + 1)  # rings out: missed
    routing.set_agent_status(sam, "available")
    routing.accept(sam, pending(sam).id)
    _, agents = latest(board)
    assert agents[sam.id]["missed_today"] == 1
    assert agents[sam.id]["work"] == [{"interaction_id": first.id, "channel": "email"}]
    assert agents[sam.id]["status"] == "busy"
    assert 0 <= agents[sam.id]["occupancy"] <= 1
    routing.complete(sam, first.id)
    _, agents = latest(board)
    assert agents[sam.id]["work"] == []
    assert agents[sam.id]["handled_today"] == 1


@pytest.fixture
def merged(app_config):
    app_config["BOARD_FLUSH_MS"] = 100


def test_deltas_are_merged_and_sent_at_most_every_flush_interval(merged, board, make_queue, arrive):
    """Ten arrivals within one flush interval reach the board as few deltas, the last with
    every arrival counted; versions only grow."""
    queue = make_queue("Busy", channels=["email"])
    board.get_received("/supervisor")  # the snapshot
    for _ in range(10):
        arrive(queue)
    deltas: list[dict] = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        deltas += [
            p["args"][0] for p in board.get_received("/supervisor") if p["name"] == "board_delta"
        ]
        figures = [q for d in deltas for q in d.get("queues", []) if q["id"] == queue.id]
        if figures and figures[-1]["waiting"] == 10:
            break
        time.sleep(0.05)
    assert figures[-1]["waiting"] == 10
    assert len(deltas) < 10  # merged, not one per arrival
    versions = [q["version"] for q in figures]
    assert versions == sorted(versions) and versions[-1] >= 10
