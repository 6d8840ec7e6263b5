"""The ACD, rule by rule: skills, selection, priority, capacity, offers, overflow, wrap-up."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

from contact_center.agents.models import User
from contact_center.extensions import db
from contact_center.routing import policy
from contact_center.routing import services as routing
from contact_center.routing.models import Interaction, Reservation
from tests.routing.conftest import fire_timers, offered_to, pending


def test_only_qualified_agents_get_offers(make_queue, agent, arrive):
    queue = make_queue("Mandarin", required_skills={"lang:zh": 3})
    novice = agent("novice", skills={"lang:zh": 2})
    interaction = arrive(queue)
    assert offered_to(interaction) is None
    expert = agent("expert", skills={"lang:zh": 4})
    assert offered_to(interaction) == expert.id
    assert pending(novice) is None


def test_interaction_skills_add_to_the_queue_skills(make_queue, agent, arrive):
    queue = make_queue("General")
    english = agent("english", skills={"lang:en": 5})
    interaction = arrive(queue, required_skills={"lang:de": 2})
    assert offered_to(interaction) is None
    german = agent("german", skills={"lang:de": 3})
    assert offered_to(interaction) == german.id
    plain = arrive(queue)
    assert offered_to(plain) == english.id


def test_longest_idle_agent_first(make_queue, agent, arrive):
    queue = make_queue()
    first, second = agent("first"), agent("second")
    assert offered_to(arrive(queue, channel="voice")) == first.id
    assert offered_to(arrive(queue, channel="voice")) == second.id


def test_round_robin_rotates_by_last_offer(make_queue, agent, arrive):
    queue = make_queue(strategy="round_robin", channels=["email"])
    a, b = agent("a"), agent("b")
    winners = []
    for _ in range(4):
        winner = db.session.get(User, offered_to(arrive(queue)))
        winners.append(winner.id)
        routing.accept(winner, pending(winner).id)
    assert winners == [a.id, b.id, a.id, b.id]


def test_least_occupied_prefers_the_agent_with_less_work(make_queue, agent, arrive):
    queue = make_queue(strategy="least_occupied", channels=["email"])
    busy, free = agent("busy"), agent("free")
    first = arrive(queue)
    assert offered_to(first) == busy.id
    routing.accept(busy, pending(busy).id)
    # busy still has email capacity (3) but holds one; free holds none.
    assert offered_to(arrive(queue)) == free.id


def test_free_agent_takes_best_waiting_across_queues(make_queue, agent, arrive):
    sales = make_queue("Sales", channels=["email"])
    support = make_queue("Support", channels=["email"])
    older = arrive(support)
    time.sleep(0.01)
    newer = arrive(sales)
    sam = agent("sam")
    assert offered_to(older) == sam.id
    assert offered_to(newer) is None


def test_queue_weight_breaks_ties(make_queue, agent, arrive):
    low = make_queue("Low", channels=["email"], weight=0)
    high = make_queue("High", channels=["email"], weight=5)
    a = arrive(low)
    b = arrive(high)
    # Same place in line: the heavier queue wins.
    for interaction in (a, b):
        interaction.queue_score = 1000.0
    db.session.commit()
    routing.rebuild_state(force=True)
    sam = agent("sam")
    assert offered_to(b) == sam.id


def test_vip_jumps_ahead_but_time_still_counts(make_queue, agent, arrive):
    queue = make_queue(channels=["email"])
    regular = arrive(queue)
    vip = arrive(queue, customer_tier="A")
    complaint = arrive(queue, complaint=True)
    assert vip.queue_score < complaint.queue_score < regular.queue_score
    # Credit is bounded: someone who has waited longer than the credit still goes first.
    now = regular.enqueued_at
    ancient = policy.queue_score(now.replace(year=now.year - 1))
    assert ancient < policy.queue_score(now, customer_tier="A", priority=10, complaint=True)
    sam = agent("sam")
    assert offered_to(vip) == sam.id


def test_email_capacity_three_and_never_more(make_queue, agent, arrive):
    queue = make_queue(channels=["email"])
    sam = agent("sam")
    emails = [arrive(queue) for _ in range(5)]
    accepted = []
    for _ in range(5):
        reservation = pending(sam)
        if reservation is None:
            break
        routing.accept(sam, reservation.id)
        accepted.append(reservation.interaction_id)
    assert accepted == [e.id for e in emails[:3]]
    assert routing.get_store().load(sam.id, "email") == 3
    routing.complete(sam, emails[0].id)
    assert pending(sam).interaction_id == emails[3].id


def test_no_other_offers_while_on_voice(make_queue, agent, arrive):
    queue = make_queue(channels=["voice", "email"])
    sam = agent("sam")
    call = arrive(queue, channel="voice")
    routing.accept(sam, pending(sam).id)
    email = arrive(queue, channel="email")
    assert offered_to(email) is None
    relaxed = make_queue("Relaxed", channels=["email"], allow_during_voice=True)
    allowed = arrive(relaxed, channel="email")
    assert offered_to(allowed) == sam.id
    assert call.id != allowed.id


def test_offer_timeout_returns_to_place_and_tries_next_agent(make_queue, agent, arrive):
    queue = make_queue(channels=["email"])
    first = agent("first")
    interaction = arrive(queue)
    later = arrive(queue)
    assert offered_to(interaction) == first.id
    second = agent("second")
    assert offered_to(later) == second.id
    routing.accept(second, pending(second).id)  # second has email capacity left
    fire_timers(queue.offer_timeout_s + 1)
    reservation = db.session.scalar(sa.select(Reservation).where(Reservation.agent_id == first.id))
    assert reservation.status == "timeout"
    # Back in its place and offered to the next agent: first went to the back of the line.
    assert offered_to(interaction) == second.id
    assert pending(first) is None


def test_two_missed_offers_set_the_agent_away(make_queue, agent, arrive):
    queue = make_queue(channels=["email"], max_missed_offers=2)
    sam = agent("sam")
    interaction = arrive(queue)
    fire_timers(queue.offer_timeout_s + 1)
    assert offered_to(interaction) == sam.id  # missed once, still available
    fire_timers(2 * queue.offer_timeout_s + 2)
    db.session.refresh(sam)
    assert sam.presence == "away"
    assert "missed 2 offers" in sam.status_reason
    assert offered_to(interaction) is None
    assert routing.get_store().location(interaction.id) is not None


def test_reject_keeps_the_place(make_queue, agent, arrive):
    queue = make_queue(channels=["email"])
    sam = agent("sam")
    first = arrive(queue)
    second = arrive(queue)
    routing.reject(sam, pending(sam).id, "not now")
    # Sam is the only agent: the first interaction (still first in line) comes back.
    assert pending(sam).interaction_id == first.id
    assert second.id != first.id


def test_disconnect_returns_offer_at_once_and_goes_offline_after_grace(make_queue, agent, arrive):
    queue = make_queue(channels=["email"])
    sam = agent("sam")
    routing.agent_connected(sam)
    interaction = arrive(queue)
    assert offered_to(interaction) == sam.id
    routing.agent_disconnected(sam)
    reservation = db.session.scalar(sa.select(Reservation))
    assert reservation.status == "revoked" and reservation.reason == "agent disconnected"
    fire_timers(routing.DISCONNECT_GRACE_S + 1)
    db.session.refresh(sam)
    assert sam.presence == "offline"


def test_a_silent_web_process_loses_its_consoles(app, make_queue, agent, arrive):
    queue = make_queue(channels=["email"])
    sam, kim = agent("sam"), agent("kim")
    routing.web_process_beat("web-a")
    routing.agent_connected(sam)
    routing.agent_connected(kim)
    routing.web_process_beat("web-b")
    routing.agent_connected(kim)  # kim also has a console on b
    interaction = arrive(queue)
    holder = offered_to(interaction)
    store = routing.get_store()
    silent_s = app.config["WEB_PROCESS_SILENT_S"]
    # b beats on; a falls silent (killed): only a's sockets come off.
    store.process_alive("web-b", time.time() + silent_s)
    assert routing.reap_silent_web_processes(now=time.time() + silent_s + 1) == 1
    assert store.sockets(sam.id, 0) == 0 and store.sockets(kim.id, 0) == 1
    assert store.silent_processes(float("inf")) == ["web-b"]  # a is gone from the list
    reservation = db.session.scalar(sa.select(Reservation).where(Reservation.agent_id == sam.id))
    if holder == sam.id:  # sam's ringing offer went back, as when a console closes
        assert reservation.status == "revoked" and reservation.reason == "agent disconnected"
    fire_timers(routing.DISCONNECT_GRACE_S + 1)
    db.session.refresh(sam)
    db.session.refresh(kim)
    assert sam.presence == "offline" and kim.presence == "available"


def test_reconnect_within_grace_keeps_presence(make_queue, agent):
    make_queue()
    sam = agent("sam")
    routing.agent_connected(sam)
    routing.agent_disconnected(sam)
    routing.agent_connected(sam)
    fire_timers(routing.DISCONNECT_GRACE_S + 1)
    db.session.refresh(sam)
    assert sam.presence == "available"


def test_overflow_relaxes_skills_keeping_the_place(make_queue, agent, arrive):
    queue = make_queue(
        "Mandarin",
        channels=["email"],
        required_skills={"lang:zh": 4},
        overflow_steps=[{"after_s": 30, "relax": {"lang:zh": 2}}],
    )
    learner = agent("learner", skills={"lang:zh": 2})
    interaction = arrive(queue)
    assert offered_to(interaction) is None
    fire_timers(31)
    assert offered_to(interaction) == learner.id
    decision = pending(learner).decision
    assert decision["step"] == "tier 1"


def test_overflow_adds_teams(make_queue, agent, arrive):
    queue = make_queue(
        "Cards",
        channels=["email"],
        teams=["Cards"],
        overflow_steps=[{"after_s": 10, "add_teams": ["General"]}],
    )
    general = agent("general", team="General")
    interaction = arrive(queue)
    assert offered_to(interaction) is None
    fire_timers(11)
    assert offered_to(interaction) == general.id


def test_overflow_moves_to_another_queue_keeping_the_place(make_queue, agent, arrive):
    backup = make_queue("Backup", channels=["email"], required_skills={"tier:2": 1})
    queue = make_queue(
        "Front",
        channels=["email"],
        required_skills={"tier:1": 1},
        overflow_steps=[{"after_s": 20, "queue": "Backup"}],
    )
    moved = arrive(queue)
    already_waiting = arrive(backup)
    fire_timers(21)
    db.session.refresh(moved)
    assert moved.queue_id == backup.id
    backstop = agent("backstop", skills={"tier:2": 1})
    # The moved interaction arrived first, so it is still ahead.
    assert offered_to(moved) == backstop.id
    assert offered_to(already_waiting) is None


def test_wrapup_ends_by_timer_or_early(make_queue, agent, arrive):
    queue = make_queue(channels=["voice"], wrapup_s=30)
    sam = agent("sam")
    call = arrive(queue, channel="voice")
    routing.accept(sam, pending(sam).id)
    routing.complete(sam, call.id, disposition="resolved")
    db.session.refresh(sam)
    assert sam.status == "wrapup"
    waiting = arrive(queue, channel="voice")
    assert offered_to(waiting) is None
    fire_timers(31)
    db.session.refresh(call)
    assert call.status == "ended"
    assert offered_to(waiting) == sam.id
    routing.accept(sam, pending(sam).id)
    routing.complete(sam, waiting.id)
    routing.wrapup_done(sam, waiting.id)
    db.session.refresh(sam)
    assert sam.status == "available"


def test_preferred_agent_first_then_anyone(make_queue, agent, arrive):
    queue = make_queue(channels=["email"])
    owner = agent("owner")
    other = agent("other")
    # The owner is busy with something else, so the preferred interaction waits for them.
    arrive(queue)
    routing.accept(owner, pending(owner).id)
    routing.set_agent_status(owner, "away")
    interaction = arrive(queue, preferred_agent_id=owner.id, preferred_for_s=20)
    assert offered_to(interaction) is None
    routing.set_agent_status(owner, "available")
    assert offered_to(interaction) == owner.id
    routing.reject(owner, pending(owner).id)
    assert offered_to(interaction) == owner.id  # still within the preference window
    routing.set_agent_status(owner, "away")
    fire_timers(21)
    assert offered_to(interaction) == other.id


def test_decision_record_through_the_api(
    client, make_queue, agent, arrive, create_user, auth_header
):
    queue = make_queue(channels=["email"])
    a, b = agent("a"), agent("b")
    interaction = arrive(queue)
    winner = offered_to(interaction)
    assert winner == a.id
    supervisor = create_user("sup", role="supervisor")
    body = client.get(
        f"/api/v1/interactions/{interaction.id}", headers=auth_header(supervisor)
    ).get_json()
    decision = body["reservations"][0]["decision"]
    assert decision["strategy"] == "longest_idle" and decision["queue"] == "General"
    assert {c["id"] for c in decision["candidates"]} >= {a.id}
    assert "waited_s" in decision and "score" in decision
    # Agents see only interactions offered to them.
    assert (
        client.get(f"/api/v1/interactions/{interaction.id}", headers=auth_header(b)).status_code
        == 404
    )
    assert (
        client.get(f"/api/v1/interactions/{interaction.id}", headers=auth_header(a)).status_code
        == 200
    )


def test_events_stream_records_the_story(
    client, make_queue, agent, arrive, create_user, auth_header
):
    queue = make_queue(channels=["email"])
    sam = agent("sam")
    interaction = arrive(queue)
    routing.reject(sam, pending(sam).id)
    routing.accept(sam, pending(sam).id)
    routing.complete(sam, interaction.id)
    supervisor = create_user("sup", role="supervisor")
    events = client.get("/api/v1/routing/events", headers=auth_header(supervisor)).get_json()
    kinds = [e["type"] for e in events["events"] if e.get("interaction") == str(interaction.id)]
    assert kinds == ["enqueued", "offered", "rejected", "offered", "accepted", "completed"]
    assert client.get("/api/v1/routing/events", headers=auth_header(sam)).status_code == 403


def test_rebuild_restores_queues_agents_and_loads(app, make_queue, agent, arrive):
    queue = make_queue(channels=["email"])
    sam = agent("sam")
    first = arrive(queue)
    routing.accept(sam, pending(sam).id)
    second = arrive(queue)  # offered to sam (capacity 3)
    third = arrive(queue)
    app.extensions["redis"].flushdb()
    counts = routing.rebuild_state(force=True)
    assert counts["revoked_offers"] == 1
    store = routing.get_store()
    assert store.load(sam.id, "email") == 1 + (1 if pending(sam) else 0)
    assert pending(sam).interaction_id == second.id
    assert store.location(third.id) is not None
    assert db.session.get(Interaction, first.id).status == "active"  # email: live at once


def test_estimated_wait(client, make_queue, agent, arrive, create_user, auth_header):
    queue = make_queue(channels=["email"])
    waiting = [arrive(queue) for _ in range(3)]
    estimate = routing.estimate(queue, waiting[2])
    assert estimate["position"] == 3 and estimate["waiting"] == 3
    assert estimate["estimated_wait_s"] == -1  # nobody staffed
    sam = agent("sam")  # takes the first one; two wait
    body = client.get(f"/api/v1/queues/{queue.id}/estimate", headers=auth_header(sam)).get_json()
    assert body["agents_staffed"] == 1
    assert body["waiting"] == 2 and body["position"] == 3
    # (3 - 0.5) rounds of the default 180 s handle time for one agent.
    assert body["estimated_wait_s"] == 450


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "Q", "strategy": "random"}, "strategy"),
        ({"name": "Q", "channels": ["fax"]}, "channels"),
        ({"name": "Q", "required_skills": {"lang:en": 9}}, "required_skills"),
        ({"name": "Q", "overflow_steps": [{"after_s": 5}]}, "overflow_steps"),
        ({"name": "Q", "offer_timeout_s": 1}, "offer_timeout_s"),
    ],
)
def test_queue_create_validation(client, create_user, auth_header, payload, field):
    admin = create_user("admin", role="admin")
    response = client.post("/api/v1/queues", json=payload, headers=auth_header(admin))
    assert response.status_code == 422
    assert field in response.get_json()["error"]["fields"]


def test_queue_create_and_list(client, create_user, auth_header):
    admin = create_user("admin", role="admin")
    agent_user = create_user("agent1")
    created = client.post(
        "/api/v1/queues",
        headers=auth_header(admin),
        json={
            "name": "Cards",
            "channels": ["voice"],
            "required_skills": {"product:cards": 2},
            "overflow_steps": [{"after_s": 30, "relax": {"product:cards": 1}}],
        },
    )
    assert created.status_code == 201
    assert (
        client.post(
            "/api/v1/queues", headers=auth_header(admin), json={"name": "Cards"}
        ).status_code
        == 409
    )
    assert (
        client.post(
            "/api/v1/queues", headers=auth_header(agent_user), json={"name": "X"}
        ).status_code
        == 403
    )
    listed = client.get("/api/v1/queues", headers=auth_header(agent_user)).get_json()
    assert [q["name"] for q in listed] == ["Cards"]
    assert listed[0]["estimate"]["waiting"] == 0


def test_preferred_window_ending_while_the_offer_rings_still_falls_back(make_queue, agent, arrive):
    queue = make_queue(channels=["email"])
    owner = agent("owner")
    other = agent("other")
    interaction = arrive(queue, preferred_agent_id=owner.id, preferred_for_s=5)
    assert offered_to(interaction) == owner.id
    fire_timers(6)  # the preference ends while the owner's offer is still ringing
    routing.reject(owner, pending(owner).id)
    routing.set_agent_status(owner, "away")
    fire_timers(6 + routing.STEP_RETRY_S)
    assert offered_to(interaction) == other.id


def test_a_match_in_the_middle_of_another_process_closing_an_offer_loses_nothing(
    make_queue, agent, arrive
):
    """Process A has put a rejected interaction back in Redis but not yet committed it as
    queued; process B matches it then. B must give it back, not drop it."""
    queue = make_queue(channels=["email"])
    sam = agent("sam")
    interaction = arrive(queue)
    reservation = pending(sam)
    store = routing.get_store()
    # A's first half: the Redis side of the reject (the database still says "offered").
    store.resolve(reservation.id, "rejected", time.time(), requeue=True)
    other = agent("other")  # B: a free agent matches the interaction now
    db.session.expire_all()
    assert db.session.get(Interaction, interaction.id).status == "offered"
    assert store.location(interaction.id) is not None, "the interaction must still be waiting"
    assert pending(other) is None


def test_concurrent_first_calls_create_one_default_queue(app):
    import threading

    from contact_center.routing.models import Queue

    barrier = threading.Barrier(4)
    names, errors = [], []

    def first_call():
        with app.app_context():
            try:
                barrier.wait(timeout=10)
                names.append(routing.default_queue().name)
                db.session.commit()
            except Exception as exc:  # a failure here is what the test is looking for
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=first_call) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert names == ["General"] * 4
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Queue)) == 1


def test_overflow_steps_apply_in_time_order_whatever_order_they_are_listed(
    make_queue, agent, arrive
):
    make_queue("Backup", channels=["email"], required_skills={"tier:2": 1})
    queue = make_queue(
        "Mandarin",
        channels=["email"],
        required_skills={"lang:zh": 4},
        overflow_steps=[
            {"after_s": 90, "queue": "Backup"},
            {"after_s": 30, "relax": {"lang:zh": 2}},
        ],
    )
    learner = agent("learner", skills={"lang:zh": 2})
    interaction = arrive(queue)
    fire_timers(31)  # the relaxation comes first in time, though listed second
    assert offered_to(interaction) == learner.id


def test_an_offer_goes_out_from_the_rows_it_wrote(make_queue, agent, monkeypatch):
    """Nothing is read back between the offer's commit and the `offer` event: the
    reservation, interaction, queue and agent are as the transaction wrote them (reading
    them again cost four round trips before the agent's phone rang)."""
    queue = make_queue(channels=["voice"])
    alice = agent("alice")
    interaction = routing.stage_interaction(channel="voice", queue=queue, external_id="CA1")
    db.session.commit()
    log: list[tuple[str, str]] = []
    monkeypatch.setattr(
        routing, "emit_to_agent", lambda agent_id, event, payload: log.append((event, payload))
    )

    def statement(conn, cursor, text, *args):
        log.append(("sql", text))

    def commit(conn):
        log.append(("commit", ""))

    sa.event.listen(db.engine, "before_cursor_execute", statement)
    sa.event.listen(db.engine, "commit", commit)
    try:
        [reservation] = routing.enqueue(interaction)
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", statement)
        sa.event.remove(db.engine, "commit", commit)
    assert not sa.inspect(reservation).expired  # kept as written, not read back
    events = [kind for kind, _ in log]
    offer_at = events.index("offer")
    committed_at = max(i for i, kind in enumerate(events[:offer_at]) if kind == "commit")
    # No caller number, so the screen pop needs no query either.
    assert events[committed_at:offer_at] == ["commit"]
    offer, status = log[offer_at][1], log[offer_at + 1]
    assert offer["reservation_id"] == reservation.id
    assert offer["interaction"]["id"] == interaction.id
    assert offer["interaction"]["status"] == "offered"
    assert offer["interaction"]["queue"] == queue.name
    assert status[0] == "status" and status[1]["status"] == "reserved"
    assert reservation.status == "pending" and reservation.agent_id == alice.id


def test_an_offer_records_its_queue_timeout_the_wait_and_what_the_agent_is_doing(
    make_queue, agent, arrive
):
    """The offer's writes: it rings for the queue's own timeout, logs the time waited, and
    the agent reads reserved when idle but stays busy when it comes during a live call."""
    queue = make_queue("Relaxed", channels=["voice", "email"], allow_during_voice=True)
    queue.offer_timeout_s = 45
    email = arrive(queue, channel="email")
    email.enqueued_at -= timedelta(seconds=90)  # nobody free for a minute and a half
    db.session.commit()
    sam = agent("sam")  # going available, sam is offered the email waiting
    ringing = pending(sam)
    assert ringing.interaction_id == email.id
    assert ringing.expires_at - ringing.created_at == timedelta(seconds=45)
    assert 90 <= ringing.decision["waited_s"] <= 92
    assert (ringing.decision["queue"], ringing.decision["strategy"]) == ("Relaxed", "longest_idle")
    db.session.refresh(sam)
    assert (sam.status, sam.status_since) == ("reserved", ringing.created_at)

    kim = agent("kim")
    call = arrive(queue, channel="voice")
    routing.accept(kim, pending(kim).id)
    db.session.refresh(kim)
    busy_since = kim.status_since
    assert kim.status == "busy"
    another = arrive(queue, channel="email")
    assert offered_to(another) == kim.id
    db.session.refresh(kim)
    assert (kim.status, kim.status_since) == ("busy", busy_since)
    assert call.status != "queued"
