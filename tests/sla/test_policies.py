"""SLA policies on tickets: which applies, pauses per metric, channel-neutral fulfilment,
replays after a calendar change, and escalation ladders run once by the timer jobs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from contact_center.agents.services import issue_token
from contact_center.customers.services import create_customer
from contact_center.db_types import utcnow
from contact_center.extensions import db, socketio
from contact_center.redis_client import get_redis
from contact_center.routing import services as routing
from contact_center.routing.models import Interaction
from contact_center.sla import services as sla
from contact_center.sla import timers
from contact_center.sla.models import SlaEvent, SlaPolicy
from contact_center.tickets import services as tickets
from contact_center.tickets.models import Ticket, TicketStatusChange

ENGLAND = {
    "name": "England office",
    "timezone": "Europe/London",
    "windows": {day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")},
    "country": "GB",
    "subdivision": "ENG",
}


def wall(minutes: int) -> dict:
    return {"minutes": minutes, "business": False}


@pytest.fixture
def admin(auth_header, create_user):
    return auth_header(create_user("ada", role="admin"))


@pytest.fixture
def agent(auth_header, create_user):
    return auth_header(create_user("alice"))


def add_policy(client, headers, name="Standard", **fields) -> dict:
    body = {"name": name, "targets": {"normal": {"first_response": wall(240)}}, **fields}
    response = client.post("/api/v1/sla/policies", json=body, headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def open_ticket(client, headers, **fields) -> int:
    """A ticket opened over the API for a customer with an email address."""
    if "customer_id" not in fields:
        email = f"mei{utcnow().timestamp()}@example.org"
        fields["customer_id"] = create_customer({"name": "Mei Chen", "emails": [email]}).id
    response = client.post(
        "/api/v1/tickets", json={"subject": "Card blocked", **fields}, headers=headers
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def sla_of(client, headers, ticket_id) -> dict:
    response = client.get(f"/api/v1/sla/tickets/{ticket_id}", headers=headers)
    assert response.status_code == 200
    return response.get_json()


def clock(view: dict, metric: str, cycle: int = 0) -> dict:
    return next(c for c in view["clocks"] if c["metric"] == metric and c["cycle"] == cycle)


def kinds(view: dict) -> list[str]:
    return [e["kind"] for e in view["events"]]


def backdate(ticket_id: int, by: timedelta) -> None:
    """Move a ticket's history into the past (as if it arrived `by` ago), then replay it."""
    ticket = db.session.get(Ticket, ticket_id)
    ticket.created_at -= by
    for change in db.session.scalars(
        sa.select(TicketStatusChange).where(TicketStatusChange.ticket_id == ticket_id)
    ):
        change.at -= by
    for message in ticket.messages:
        message.created_at -= by
    db.session.commit()
    sla.replay([ticket_id])


def late_ticket(client, admin, agent) -> int:
    """A ticket a minute past its first-response target, under a policy tagging it late."""
    add_policy(
        client,
        admin,
        targets={"normal": {"first_response": wall(60)}},
        escalations=[{"after_breach_minutes": 0, "actions": [{"kind": "tag", "tag": "late"}]}],
    )
    ticket_id = open_ticket(client, agent)
    backdate(ticket_id, timedelta(minutes=61))
    return ticket_id


def tags_of(ticket_id: int) -> list[str]:
    ticket = db.session.get(Ticket, ticket_id)
    db.session.refresh(ticket)
    return ticket.tags


def test_only_admins_write_policies_and_bad_ones_change_nothing(app, client, admin, agent):
    good = {"name": "Standard", "targets": {"normal": {"first_response": wall(60)}}}
    assert client.post("/api/v1/sla/policies", json=good, headers=agent).status_code == 403
    bad_policies = [
        {**good, "targets": {"normal": {"first_response": {"minutes": 60}}}},  # no calendar
        {**good, "targets": {"whenever": {"first_response": wall(60)}}},
        {**good, "targets": {"normal": {"first_response": wall(0)}}},
        {**good, "calendar_id": 999},
        {**good, "pauses": {"resolution": ["solved"]}},
        {
            **good,
            "escalations": [
                {"percent": 50, "after_breach_minutes": 0, "actions": [{"kind": "notify"}]}
            ],
        },
        {**good, "escalations": [{"percent": 50, "actions": [{"kind": "explode"}]}]},
        {**good, "escalations": [{"after_breach_minutes": 0, "actions": [{"kind": "tag"}]}]},
        {**good, "conditions": {"priority": ["sometimes"]}},
    ]
    for bad in bad_policies:
        response = client.post("/api/v1/sla/policies", json=bad, headers=admin)
        assert response.status_code == 422, bad
        assert response.get_json()["error"]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(SlaPolicy)) == 0
    assert client.post("/api/v1/sla/policies", json=good, headers=admin).status_code == 201
    assert client.post("/api/v1/sla/policies", json=good, headers=admin).status_code == 409


def test_the_first_matching_policy_applies_and_is_reapplied_when_the_ticket_changes(
    app, client, admin, agent
):
    add_policy(client, admin, "Standard", position=10)
    urgent = add_policy(
        client,
        admin,
        "Urgent",
        position=1,
        conditions={"priority": ["urgent"]},
        targets={"urgent": {"first_response": wall(30), "resolution": wall(480)}},
    )
    ticket_id = open_ticket(client, agent)
    view = sla_of(client, agent, ticket_id)
    assert [c["metric"] for c in view["clocks"]] == ["first_response"]
    assert clock(view, "first_response")["target_minutes"] == 240
    assert clock(view, "first_response")["state"] == "running"
    assert 239 <= clock(view, "first_response")["remaining_minutes"] <= 240

    patched = client.patch(
        f"/api/v1/tickets/{ticket_id}", json={"priority": "urgent"}, headers=agent
    )
    assert patched.status_code == 200
    view = sla_of(client, agent, ticket_id)
    assert view["policy_id"] == urgent["id"]
    assert [c["metric"] for c in view["clocks"]] == ["first_response", "resolution"]
    assert clock(view, "first_response")["target_minutes"] == 30
    assert kinds(view).count("applied") == 2
    detail = client.get(f"/api/v1/tickets/{ticket_id}", headers=agent).get_json()
    assert detail["next_breach_at"] == clock(view, "first_response")["due_at"]


def test_a_ticket_no_policy_matches_has_no_clocks(app, client, admin, agent):
    add_policy(client, admin, "Complaints only", conditions={"type": ["complaint"]})
    ticket_id = open_ticket(client, agent)
    assert sla_of(client, agent, ticket_id)["clocks"] == []
    complaint_id = open_ticket(client, agent, type="complaint")
    assert len(sla_of(client, agent, complaint_id)["clocks"]) == 1


def test_pending_pauses_resolution_only_and_resume_moves_the_deadline(app, client, admin, agent):
    add_policy(
        client,
        admin,
        targets={"normal": {"first_response": wall(60), "resolution": wall(600)}},
        pauses={"resolution": ["pending"]},
    )
    ticket_id = open_ticket(client, agent)
    before = sla_of(client, agent, ticket_id)
    client.patch(f"/api/v1/tickets/{ticket_id}", json={"status": "pending"}, headers=agent)
    view = sla_of(client, agent, ticket_id)
    assert clock(view, "resolution")["state"] == "paused"
    assert clock(view, "resolution")["due_at"] is None
    assert clock(view, "resolution")["paused"] is True
    assert clock(view, "first_response")["state"] == "running"
    assert clock(view, "first_response")["due_at"] == clock(before, "first_response")["due_at"]

    backdate(ticket_id, timedelta(minutes=30))  # it has been pending since 30 minutes ago
    client.patch(f"/api/v1/tickets/{ticket_id}", json={"status": "open"}, headers=agent)
    view = sla_of(client, agent, ticket_id)
    resolution = clock(view, "resolution")
    assert resolution["state"] == "running"
    due = datetime.fromisoformat(resolution["due_at"])
    # 600 minutes from arrival, plus the ~30 minutes it spent pending.
    created = db.session.get(Ticket, ticket_id).created_at
    assert timedelta(minutes=629) <= due - created <= timedelta(minutes=631)
    assert {"paused", "resumed"} <= set(kinds(view))


def test_a_reply_fulfils_first_response_and_a_customer_message_starts_next_response(
    app, client, admin, agent
):
    add_policy(
        client,
        admin,
        targets={"normal": {"first_response": wall(60), "next_response": wall(120)}},
    )
    ticket_id = open_ticket(client, agent)
    reply = client.post(
        f"/api/v1/tickets/{ticket_id}/replies", json={"body": "On it."}, headers=agent
    )
    assert reply.status_code == 201
    view = sla_of(client, agent, ticket_id)
    assert clock(view, "first_response")["state"] == "fulfilled"
    assert [c["metric"] for c in view["clocks"]] == ["first_response"]  # nobody asked since

    ticket = db.session.get(Ticket, ticket_id)
    tickets.add_message(ticket, "inbound", "Any news?")
    db.session.commit()
    view = sla_of(client, agent, ticket_id)
    assert clock(view, "next_response")["state"] == "running"
    assert "fulfilled" in kinds(view) and "started" in kinds(view)


def test_an_answered_call_counts_as_a_response(app, client, admin, agent):
    add_policy(client, admin, targets={"normal": {"first_response": wall(60)}})
    ticket_id = open_ticket(client, agent, channel="email")
    call = Interaction(
        channel="callback",
        direction="outbound",
        status="ended",
        ticket_id=ticket_id,
        connected_at=utcnow(),
    )
    db.session.add(call)
    db.session.commit()
    assert clock(sla_of(client, agent, ticket_id), "first_response")["state"] == "fulfilled"


def test_a_calendar_change_recomputes_the_open_tickets_on_it(app, client, admin, agent, run_jobs):
    calendar = client.post("/api/v1/calendars", json=ENGLAND, headers=admin).get_json()
    add_policy(
        client,
        admin,
        calendar_id=calendar["id"],
        targets={"normal": {"resolution": {"minutes": 10 * 8 * 60, "business": True}}},
    )
    ticket_id = open_ticket(client, agent)
    ticket = db.session.get(Ticket, ticket_id)
    arrived = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # a Monday, 09:00 in London
    backdate(ticket_id, ticket.created_at - arrived)
    view = sla_of(client, agent, ticket_id)
    assert clock(view, "resolution")["due_at"] == "2026-12-04T17:00:00Z"  # ten working days

    closed = {**ENGLAND, "closed_dates": ["2026-12-01"]}
    assert (
        client.put(f"/api/v1/calendars/{calendar['id']}", json=closed, headers=admin).status_code
        == 200
    )
    run_jobs()
    view = sla_of(client, agent, ticket_id)
    assert clock(view, "resolution")["due_at"] == "2026-12-07T17:00:00Z"


def supervisor_board(app, client, user):
    token, _ = issue_token(user)
    return socketio.test_client(
        app, namespace="/supervisor", auth={"token": token}, flask_test_client=client
    )


def test_only_supervisors_open_the_supervisor_namespace(app, client, create_user):
    refused = supervisor_board(app, client, create_user("agnes"))
    assert not refused.is_connected("/supervisor")
    board = supervisor_board(app, client, create_user("sam", role="supervisor"))
    assert board.is_connected("/supervisor")
    board.disconnect("/supervisor")


def test_escalation_ladder_runs_each_step_once(
    app, client, admin, agent, run_jobs, smtp_server, create_user
):
    board = supervisor_board(app, client, create_user("sam", role="supervisor"))
    queue = routing.create_queue(name="Escalations", channels=["voice", "email"])
    add_policy(
        client,
        admin,
        targets={
            "normal": {"first_response": wall(60)},
            "urgent": {"first_response": wall(60)},
        },
        escalations=[
            {"percent": 50, "actions": [{"kind": "notify", "emails": ["lead@desk.test"]}]},
            {
                "after_breach_minutes": 0,
                "actions": [
                    {"kind": "priority", "to": "urgent"},
                    {"kind": "tag", "tag": "sla-breached"},
                    {"kind": "reassign", "queue_id": queue.id},
                    {"kind": "boost", "by": 3},
                ],
            },
            {"after_breach_minutes": 600, "actions": [{"kind": "notify"}]},
        ],
    )
    ticket_id = open_ticket(client, agent)
    waiting = routing.create_interaction(channel="email", queue=queue, ticket_id=ticket_id)
    score = waiting.queue_score

    backdate(ticket_id, timedelta(minutes=90))  # half-way at -60 min, breached 30 min ago
    assert sla.poll_due() == 1
    assert sla.poll_due() == 0  # claimed: leased to this worker
    run_jobs()

    view = sla_of(client, agent, ticket_id)
    assert kinds(view).count("warned") == 1
    assert kinds(view).count("escalated") == 1
    assert "breached" in kinds(view)
    ticket = db.session.get(Ticket, ticket_id)
    db.session.refresh(ticket)
    assert ticket.priority == "urgent"
    assert "sla-breached" in ticket.tags
    assert ticket.queue_id == queue.id
    interaction = db.session.get(Interaction, waiting.id)
    db.session.refresh(interaction)
    assert interaction.priority == 3
    assert interaction.queue_score == pytest.approx(score - 90.0)
    assert [m.rcpt_tos for m in smtp_server.messages] == [["lead@desk.test"]]
    escalations = [
        e["args"][0] for e in board.get_received("/supervisor") if e["name"] == "sla.escalation"
    ]
    assert [(e["ticket_id"], e["metric"], e["kind"]) for e in escalations] == [
        (ticket_id, "first_response", "warned")
    ]
    board.disconnect("/supervisor")
    # The next step (10 hours after the breach) is armed; nothing runs twice meanwhile.
    wake = db.session.get(Ticket, ticket_id).sla_wake_at
    assert wake is not None and wake > utcnow() + timedelta(hours=9)
    assert get_redis().zscore(timers.TIMERS, str(ticket_id)) == pytest.approx(wake.timestamp())
    sla.replay([ticket_id])
    assert sla.poll_due() == 0
    assert sla.run_timers([ticket_id]) == "1 tickets, 0 notices"
    count = db.session.scalar(
        sa.select(sa.func.count()).select_from(SlaEvent).where(SlaEvent.once_key.is_not(None))
    )
    assert count == 2

    report = client.get(
        "/api/v1/sla/report",
        query_string={"start": "2026-01-01T00:00:00Z", "end": "2030-01-01T00:00:00Z"},
        headers=admin,
    )
    assert report.status_code == 200
    [row] = report.get_json()
    assert (row["metric"], row["breached"], row["achieved"]) == ("first_response", 1, 0)


def test_the_timer_set_is_rebuilt_from_the_database(app, client, admin, agent, run_jobs):
    ticket_id = late_ticket(client, admin, agent)
    get_redis().delete(timers.TIMERS, timers.BUILT)  # Redis lost it
    assert sla.poll_due() == 1
    run_jobs()
    assert tags_of(ticket_id) == ["late"]


def test_report_counts_achieved_and_breached_per_metric(app, client, admin, agent):
    add_policy(client, admin, targets={"normal": {"first_response": wall(60)}})
    on_time = open_ticket(client, agent)
    client.post(f"/api/v1/tickets/{on_time}/replies", json={"body": "Hello"}, headers=agent)
    late = open_ticket(client, agent)
    backdate(late, timedelta(minutes=120))
    client.post(f"/api/v1/tickets/{late}/replies", json={"body": "Sorry"}, headers=agent)
    args = {"start": "2026-01-01T00:00:00Z", "end": "2100-01-01T00:00:00Z"}
    assert client.get("/api/v1/sla/report", query_string=args, headers=agent).status_code == 403
    [row] = client.get("/api/v1/sla/report", query_string=args, headers=admin).get_json()
    assert (row["metric"], row["achieved"], row["breached"], row["achieved_pct"]) == (
        "first_response",
        1,
        1,
        50.0,
    )
    daily = client.get(
        "/api/v1/sla/report", query_string={**args, "period": "week"}, headers=admin
    ).get_json()
    monday = utcnow().date() - timedelta(days=utcnow().weekday())
    assert [(r["period"], r["achieved"], r["breached"]) for r in daily] == [
        (monday.isoformat(), 1, 1)
    ]
    for bad in ({"start": "soon"}, {**args, "period": "fortnight"}):
        response = client.get("/api/v1/sla/report", query_string=bad, headers=admin)
        assert response.status_code == 422


def test_complaint_deadlines_are_clocks_with_the_policy_ladder(app, client, admin, agent, run_jobs):
    add_policy(
        client,
        admin,
        "Complaints",
        conditions={"type": ["complaint"]},
        targets={"high": {"first_response": wall(60)}},
        escalations=[
            {
                "metric": "complaint_acknowledge",
                "after_breach_minutes": 0,
                "actions": [{"kind": "tag", "tag": "ack-overdue"}],
            }
        ],
    )
    customer = create_customer({"name": "Mei Chen", "emails": ["mei@example.org"]})
    registered = client.post(
        "/api/v1/complaints",
        json={
            "customer_id": customer.id,
            "category": "Fees",
            "channel_received": "email",
            "received_at": "2026-11-02T10:00:00Z",
        },
        headers=agent,
    )
    assert registered.status_code == 201, registered.get_json()
    complaint = registered.get_json()
    view = sla_of(client, agent, complaint["ticket_id"])
    acknowledge = clock(view, "complaint_acknowledge")
    final = clock(view, "complaint_final_response")
    # Received Monday 2 Nov: acknowledge by close of business on Tuesday 3 Nov.
    assert acknowledge["due_at"] == "2026-11-03T17:00:00Z"
    assert acknowledge["state"] == "breached"
    assert final["state"] in ("running", "breached")
    assert sla.poll_due() == 1
    run_jobs()
    assert tags_of(complaint["ticket_id"]) == ["ack-overdue"]


def test_an_overdue_ticket_redis_forgot_is_swept_back(app, client, admin, agent, run_jobs):
    ticket_id = late_ticket(client, admin, agent)
    sla.rebuild_timers()
    # A worker wrote "nothing more to do" to Redis, then died before its commit: the
    # database still has the overdue time.
    get_redis().zrem(timers.TIMERS, str(ticket_id))
    get_redis().set(timers.SWEEP_TURN, 1)  # not this poll's turn to sweep
    assert sla.poll_due() == 0
    assert db.session.get(Ticket, ticket_id).sla_wake_at < utcnow() - timedelta(seconds=30)
    get_redis().delete(timers.SWEEP_TURN)
    assert sla.poll_due() == 1
    run_jobs()
    assert tags_of(ticket_id) == ["late"]


def test_deleting_the_policy_removes_its_clocks(app, client, admin, agent, run_jobs):
    policy = add_policy(client, admin)
    ticket_id = open_ticket(client, agent)
    assert len(sla_of(client, agent, ticket_id)["clocks"]) == 1
    deleted = client.delete(f"/api/v1/sla/policies/{policy['id']}", headers=admin)
    assert deleted.status_code == 204
    run_jobs()
    view = sla_of(client, agent, ticket_id)
    assert view["clocks"] == [] and view["policy_id"] is None
    assert kinds(view)[-1] == "removed"
    assert db.session.get(Ticket, ticket_id).next_breach_at is None
