"""Configuration changes reach routing at once: an agent's skills, team and capacity
(`PATCH /api/v1/users/<id>`), a queue's settings (`PATCH /api/v1/queues/<id>`)."""

from __future__ import annotations

import pytest

from contact_center import audit
from contact_center.extensions import db
from contact_center.routing import services as routing
from contact_center.routing.models import Queue
from tests.routing.conftest import fire_timers, offered_to, pending


@pytest.fixture
def admin_headers(create_user, auth_header):
    return auth_header(create_user("ada", "admin"))


@pytest.fixture
def supervisor_headers(create_user, auth_header):
    return auth_header(create_user("sam", "supervisor"))


def _patch_user(client, headers, user, body):
    response = client.patch(f"/api/v1/users/{user.id}", json=body, headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


# ---------------------------------------------------------------- agent changes


def test_a_skill_raised_gets_the_waiting_work_at_once(
    client, admin_headers, make_queue, agent, arrive
):
    queue = make_queue("Mandarin", required_skills={"lang:zh": 3})
    lee = agent("lee", skills={"lang:zh": 2})
    interaction = arrive(queue)
    assert offered_to(interaction) is None
    _patch_user(client, admin_headers, lee, {"skills": {"lang:zh": 4}})
    assert offered_to(interaction) == lee.id


def test_a_skill_lowered_or_removed_stops_offers_of_that_queue(
    client, admin_headers, make_queue, agent, arrive
):
    queue = make_queue("Mandarin", required_skills={"lang:zh": 3})
    general = make_queue("General")
    lee = agent("lee", skills={"lang:zh": 4})
    _patch_user(client, admin_headers, lee, {"skills": {"lang:zh": 1}})
    interaction = arrive(queue)
    assert offered_to(interaction) is None  # lee left the Mandarin pool's idle set
    other = arrive(general)
    assert offered_to(other) == lee.id  # and still takes what they qualify for
    _patch_user(client, admin_headers, lee, {"skills": {}})
    routing.reject(lee, pending(lee).id)
    db.session.expire_all()
    assert offered_to(interaction) is None


def test_a_team_change_moves_the_agent_between_team_queues(
    client, admin_headers, make_queue, agent, arrive
):
    cards = make_queue("Cards", teams=["Cards"])
    loans = make_queue("Loans", teams=["Loans"])
    kim = agent("kim", team="Cards")
    _patch_user(client, admin_headers, kim, {"team": "Loans"})
    for_cards = arrive(cards)
    assert offered_to(for_cards) is None
    for_loans = arrive(loans)
    assert pending(kim).interaction_id in (for_loans.id, for_cards.id)
    assert offered_to(for_loans) == kim.id


def test_capacity_changes_reach_the_matcher(client, supervisor_headers, make_queue, agent, arrive):
    queue = make_queue(channels=["email"])
    pat = agent("pat")
    first = arrive(queue)
    routing.accept(pat, pending(pat).id)
    _patch_user(client, supervisor_headers, pat, {"capacity": {"email": 1}})
    second = arrive(queue)
    assert offered_to(second) is None  # one email in hand, capacity now one
    assert routing.get_store().redis.hget("{cc}:cap", f"{pat.id}:email") == "1"
    body = _patch_user(client, supervisor_headers, pat, {"capacity": {"email": 2}})
    assert body["capacity"] == {"voice": 1, "email": 2, "callback": 1}
    assert offered_to(second) == pat.id
    assert first.id != second.id


def test_an_unavailable_agent_changed_gets_nothing_until_available(
    client, admin_headers, make_queue, agent, arrive
):
    queue = make_queue("Mandarin", required_skills={"lang:zh": 3})
    lee = agent("lee", available=False)
    interaction = arrive(queue)
    _patch_user(client, admin_headers, lee, {"skills": {"lang:zh": 5}})
    assert offered_to(interaction) is None
    routing.set_agent_status(lee, "available")
    assert offered_to(interaction) == lee.id


# ---------------------------------------------------------------- queue changes


def test_queue_patch_roles_validation_and_audit(
    client, create_user, auth_header, supervisor_headers, make_queue
):
    queue = make_queue("Cards")
    url = f"/api/v1/queues/{queue.id}"
    assert client.patch(url, json={"wrapup_s": 30}).status_code == 401
    agent_headers = auth_header(create_user("alice"))
    assert client.patch(url, json={"wrapup_s": 30}, headers=agent_headers).status_code == 403
    for body, field in [
        ({"wrapup_s": -1}, "wrapup_s"),
        ({"strategy": "random"}, "strategy"),
        ({"offer_timeout_s": 1}, "offer_timeout_s"),
        ({"required_skills": {"lang:en": 6}}, "required_skills"),
        ({"overflow_steps": [{"relax": {"lang:en": 1}}]}, "overflow_steps"),
        ({"overflow_steps": [{"after_s": 5}]}, "overflow_steps"),
        ({"service_level_target": 1.5}, "service_level_target"),
        ({"service_level_threshold_s": 0}, "service_level_threshold_s"),
        ({"name": ""}, "name"),
    ]:
        response = client.patch(url, json=body, headers=supervisor_headers)
        assert response.status_code == 422, body
        assert field in response.get_json()["error"]["fields"], body
    make_queue("Loans")
    taken = client.patch(url, json={"name": "Loans"}, headers=supervisor_headers)
    assert taken.status_code == 409 and "name" in taken.get_json()["error"]["fields"]
    db.session.expire_all()
    assert (queue.wrapup_s, queue.strategy, queue.name) == (0, "longest_idle", "Cards")
    assert audit.trail("queue", queue.id) == []
    missing = client.patch("/api/v1/queues/99999", json={"wrapup_s": 1}, headers=supervisor_headers)
    assert missing.status_code == 404

    ok = client.patch(
        url,
        json={
            "wrapup_s": 30,
            "strategy": "round_robin",
            "offer_timeout_s": 20,
            "service_level_threshold_s": 30,
            "service_level_target": 0.9,
        },
        headers=supervisor_headers,
    )
    assert ok.status_code == 200, ok.get_json()
    body = ok.get_json()
    assert body["service_level_target"] == 0.9 and body["wrapup_s"] == 30
    assert body["name"] == "Cards"  # untouched
    (event,) = audit.trail("queue", queue.id)
    assert event.action == "queue.updated"
    assert event.before == {
        "wrapup_s": 0,
        "strategy": "longest_idle",
        "offer_timeout_s": 15,
        "service_level_threshold_s": 20,
        "service_level_target": 0.8,
    }
    listed = client.get("/api/v1/queues", headers=supervisor_headers).get_json()
    assert listed[0]["service_level_target"] == 0.9


def test_new_queue_skills_move_waiting_work_and_idle_agents(
    client, supervisor_headers, make_queue, agent, arrive
):
    queue = make_queue("Cards", required_skills={"product:cards": 4})
    novice = agent("novice", skills={"product:cards": 2})
    waiting = arrive(queue)
    assert offered_to(waiting) is None
    response = client.patch(
        f"/api/v1/queues/{queue.id}",
        json={"required_skills": {"product:cards": 1}},
        headers=supervisor_headers,
    )
    assert response.status_code == 200
    assert offered_to(waiting) == novice.id
    routing.accept(novice, pending(novice).id)
    routing.complete(novice, waiting.id)

    client.patch(
        f"/api/v1/queues/{queue.id}",
        json={"required_skills": {"product:cards": 5}},
        headers=supervisor_headers,
    )
    later = arrive(queue)
    assert offered_to(later) is None  # novice left the pool when the bar went up
    expert = agent("expert", skills={"product:cards": 5})
    assert offered_to(later) == expert.id


def test_overflow_steps_changed_while_work_waits(
    client, supervisor_headers, make_queue, agent, arrive
):
    queue = make_queue(
        "Mandarin",
        required_skills={"lang:zh": 3},
        overflow_steps=[{"after_s": 30, "relax": {"lang:zh": 1}}],
    )
    novice = agent("novice", skills={"lang:zh": 1})
    waiting = arrive(queue)
    response = client.patch(
        f"/api/v1/queues/{queue.id}",
        json={"overflow_steps": [], "offer_timeout_s": 30},
        headers=supervisor_headers,
    )
    assert response.status_code == 200
    fire_timers(60)  # the old step's timer is gone (or does nothing): no relaxing now
    assert offered_to(waiting) is None
    client.patch(
        f"/api/v1/queues/{queue.id}",
        json={"overflow_steps": [{"after_s": 5, "relax": {"lang:zh": 1}}]},
        headers=supervisor_headers,
    )
    fire_timers(10)
    assert offered_to(waiting) == novice.id
    assert db.session.get(Queue, queue.id).offer_timeout_s == 30
