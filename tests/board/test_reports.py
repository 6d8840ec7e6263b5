"""Reports from a scripted day: every figure equals the hand computation beside it.

The script (UTC, 2024-03-05) as routing leaves it in the record. Sales has a 20 s
service-level threshold, Support 30 s.

  Sales, 10:00-10:15                  wait   talk+wrap  CSAT  agent
    A1 answered                       15 s   100+10      5    alice   (alice transfers once)
    A2 answered (exactly at 20 s)     20 s   200+0       3    bob
    A3 answered                       50 s    60+30      -    alice
    B1 abandoned (before 20 s)        10 s
    B2 abandoned (after 20 s)         45 s
    B3 abandoned at 10:14:59.999      59.999 s
  Sales, 10:15-10:30
    A4 answered exactly at 10:15:00   11 s    30+0       4    bob
  Support, 11:00-11:15
    S1 answered (within 30, not 20)   25 s   120+20      2    alice
    S2 abandoned (before 30 s)        25 s
  Not counted: one still waiting, one left for a callback, one answered the day before,
  one without a queue (an outbound call).
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from contact_center import audit
from contact_center.board import metrics, reports
from contact_center.board.reports import Period
from contact_center.extensions import db
from contact_center.routing import services as routing
from contact_center.routing.models import Interaction, Reservation

DAY = date(2024, 3, 5)
UTC_DAY = Period(DAY, DAY, ZoneInfo("UTC"))


def at(text: str) -> datetime:
    """2024-03-05 at HH:MM:SS[.fff], UTC."""
    return datetime.fromisoformat(f"2024-03-05T{text}").replace(tzinfo=UTC)


def answered(queue, agent, enqueued, wait_s, talk_s, wrap_s=0, csat=None, **extra):
    answered_at = enqueued + timedelta(seconds=wait_s)
    ended = answered_at + timedelta(seconds=talk_s)
    return Interaction(
        channel="voice",
        queue_id=queue.id if queue else None,
        agent_id=agent.id if agent else None,
        status="ended",
        outcome="answered",
        created_at=enqueued,
        enqueued_at=enqueued,
        answered_at=answered_at,
        ended_at=ended,
        duration_s=talk_s,
        wrapup_until=ended + timedelta(seconds=wrap_s) if wrap_s else None,
        satisfaction=csat,
        **extra,
    )


def abandoned(queue, enqueued, wait_s):
    return Interaction(
        channel="voice",
        queue_id=queue.id,
        status="ended",
        outcome="abandoned",
        created_at=enqueued,
        enqueued_at=enqueued,
        ended_at=enqueued + timedelta(seconds=wait_s),
    )


@pytest.fixture
def day(app, create_user):
    """The scripted day; returns the queues and agents."""
    sales = routing.create_queue(name="Sales", service_level_threshold_s=20)
    support = routing.create_queue(name="Support", service_level_threshold_s=30)
    alice = create_user("alice", display_name="Alice")
    bob = create_user("bob", display_name="Bob")
    a1 = answered(sales, alice, at("09:59:50"), 15, 100, 10, csat=5)
    db.session.add_all(
        [
            a1,
            answered(sales, bob, at("10:00:00"), 20, 200, csat=3),
            answered(sales, alice, at("10:00:00"), 50, 60, 30),
            abandoned(sales, at("10:01:00"), 10),
            abandoned(sales, at("10:02:00"), 45),
            abandoned(sales, at("10:14:00"), 59.999),
            answered(sales, bob, at("10:14:49"), 11, 30, csat=4),
            answered(support, alice, at("11:00:00"), 25, 120, 20, csat=2),
            abandoned(support, at("11:01:00"), 25),
            # Not counted:
            Interaction(channel="voice", queue_id=sales.id, status="queued",
                        enqueued_at=at("10:05:00")),
            Interaction(channel="voice", queue_id=sales.id, status="ended", outcome="callback",
                        leave_reason="callback", enqueued_at=at("10:05:00"),
                        ended_at=at("10:06:00")),
            answered(sales, alice, at("09:00:00") - timedelta(days=1), 5, 60, csat=1),
            answered(None, alice, at("12:00:00"), 5, 60, csat=1),
        ]
    )  # fmt: skip
    db.session.flush()
    audit.record(
        reports.TRANSFER_ACTION,
        "interaction",
        a1.id,
        actor_id=alice.id,
        before={"queue_id": sales.id, "agent_id": alice.id},
        after={"queue_id": support.id, "agent_id": None, "kind": "blind"},
    ).at = at("10:03:00")
    for status in ("accepted", "timeout"):
        db.session.add(
            Reservation(
                id=str(uuid.uuid4()),
                interaction_id=a1.id,
                agent_id=alice.id,
                status=status,
                created_at=at("10:00:00"),
                expires_at=at("10:00:15"),
            )
        )
    db.session.commit()
    return sales, support, alice, bob


def _row(rows, period, queue):
    matches = [r for r in rows if r["period"] == period and r["queue"] == queue]
    assert len(matches) == 1, (period, queue, rows)
    return matches[0]


def test_metric_formulas_by_hand():
    assert metrics.service_level(2, 6, 1) == 2 / 5
    assert metrics.service_level(0, 3, 3) is None  # every call abandoned early: nothing to judge
    assert metrics.abandon_rate(3, 6) == 0.5 and metrics.abandon_rate(0, 0) is None
    assert metrics.average(85, 3) == 85 / 3 and metrics.average(0, 0) is None
    assert metrics.occupancy(2700, 3600) == 0.75 and metrics.occupancy(10, 0) is None


def test_sl_threshold_comes_from_the_queue_or_twenty_seconds():
    class Bare:
        pass

    class Old:
        service_level_threshold_s = 45

    class New(Old):
        sl_threshold_s = 15

    assert metrics.sl_threshold_s(Bare()) == 20
    assert metrics.sl_threshold_s(Old()) == 45
    assert metrics.sl_threshold_s(New()) == 15


def test_interval_report_matches_the_hand_computation(day):
    rows, totals = reports.queue_report(UTC_DAY, None, daily=False)
    assert len([r for r in rows if r["queue"] == reports.ALL_QUEUES]) == 96

    first = _row(rows, "2024-03-05 10:00", "Sales")
    assert first["period_start"] == "2024-03-05T10:00:00Z"
    assert (first["offered"], first["answered"], first["abandoned"]) == (6, 3, 3)
    assert (first["answered_within"], first["abandoned_within"]) == (2, 1)
    assert first["service_level"] == 0.4  # 2 / (6 - 1): B1 left out, B2 and B3 count against
    assert first["asa_s"] == 28.3  # (15 + 20 + 50) / 3
    assert first["aht_s"] == 133.3  # (110 + 200 + 90) / 3
    assert first["abandon_rate"] == 0.5  # 3 / 6
    assert (first["csat"], first["csat_count"]) == (4.0, 2)  # (5 + 3) / 2
    assert first["transfers"] == 1 and first["sl_threshold_s"] == 20

    boundary = _row(rows, "2024-03-05 10:15", "Sales")  # A4, answered at 10:15:00 exactly
    assert (boundary["offered"], boundary["answered"], boundary["service_level"]) == (1, 1, 1.0)
    assert boundary["asa_s"] == 11.0 and boundary["aht_s"] == 30.0

    support = _row(rows, "2024-03-05 11:00", "Support")
    assert (support["offered"], support["answered_within"], support["abandoned_within"]) == (
        2,
        1,
        1,
    )
    assert support["service_level"] == 1.0  # 1 / (2 - 1) on Support's 30 s threshold
    assert support["sl_threshold_s"] == 30 and support["aht_s"] == 140.0

    quiet = _row(rows, "2024-03-05 10:30", reports.ALL_QUEUES)
    assert quiet["offered"] == 0 and quiet["service_level"] is None and quiet["asa_s"] is None
    assert not [r for r in rows if r["period"] == "2024-03-05 10:30" and r["queue_id"]]

    by_queue = {t["queue"]: t for t in totals}
    assert list(by_queue) == ["Sales", "Support", reports.ALL_QUEUES]
    sales = by_queue["Sales"]
    assert (sales["offered"], sales["answered"], sales["abandoned"]) == (7, 4, 3)
    assert sales["service_level"] == 0.5  # 3 / (7 - 1)
    assert sales["asa_s"] == 24.0  # (15 + 20 + 50 + 11) / 4
    assert sales["aht_s"] == 107.5  # (110 + 200 + 90 + 30) / 4
    assert sales["abandon_rate"] == 0.4286  # 3 / 7
    assert (sales["csat"], sales["csat_count"]) == (4.0, 3)  # (5 + 3 + 4) / 3
    overall = by_queue[reports.ALL_QUEUES]
    assert (overall["offered"], overall["answered"], overall["abandoned"]) == (9, 5, 4)
    assert overall["service_level"] == 0.5714  # 4 / (9 - 2)
    assert overall["asa_s"] == 24.2  # (96 + 25) / 5
    assert overall["aht_s"] == 114.0  # (430 + 140) / 5
    assert overall["abandon_rate"] == 0.4444  # 4 / 9
    assert (overall["csat"], overall["csat_count"], overall["transfers"]) == (3.5, 4, 1)


def test_one_queue_only(day):
    sales, support, *_ = day
    rows, totals = reports.queue_report(UTC_DAY, support.id, daily=True)
    assert [t["queue"] for t in totals] == ["Support", reports.ALL_QUEUES]
    assert totals[-1]["offered"] == 2 and totals[-1]["transfers"] == 0
    assert _row(rows, "2024-03-05", reports.ALL_QUEUES)["offered"] == 2


def test_daily_report_sums_the_intervals(day):
    rows, totals = reports.queue_report(
        Period(DAY, date(2024, 3, 6), ZoneInfo("UTC")), None, daily=True
    )
    overall = [r for r in rows if r["queue"] == reports.ALL_QUEUES]
    assert [r["period"] for r in overall] == ["2024-03-05", "2024-03-06"]
    assert overall[0]["offered"] == 9 and overall[0]["service_level"] == 0.5714
    assert overall[1]["offered"] == 0
    assert _row(rows, "2024-03-05", "Sales")["aht_s"] == 107.5


def test_agent_report(day):
    rows, totals = reports.agent_report(UTC_DAY, None)
    alice, bob = rows
    assert alice["agent"] == "Alice" and bob["agent"] == "Bob"
    assert (alice["answered"], alice["answered_within"], alice["handled"]) == (3, 2, 3)
    assert alice["asa_s"] == 30.0  # (15 + 50 + 25) / 3
    assert alice["aht_s"] == 113.3  # (110 + 90 + 140) / 3
    assert (alice["transfers"], alice["csat"], alice["csat_count"]) == (1, 3.5, 2)
    assert (alice["offers"], alice["missed_offers"]) == (2, 1)
    assert (bob["answered"], bob["asa_s"], bob["aht_s"]) == (2, 15.5, 115.0)
    assert (bob["offers"], bob["transfers"], bob["csat"]) == (0, 0, 3.5)
    (total,) = totals
    assert (total["agent"], total["answered"], total["transfers"], total["offers"]) == (
        "All agents",
        5,
        1,
        2,
    )
    assert total["aht_s"] == 114.0


def _at(iso: str) -> datetime:
    return datetime.fromisoformat(iso)


def test_days_and_intervals_follow_the_time_zone(app, create_user):
    """London's clocks go forward at 01:00 UTC on 2024-03-31: that day has 23 hours."""
    queue = routing.create_queue(name="Sales")
    agent = create_user("alice")
    for moment in ("2024-03-30T23:30:00+00:00", "2024-03-31T00:30:00+00:00",
                   "2024-03-31T23:30:00+00:00"):  # fmt: skip
        db.session.add(answered(queue, agent, _at(moment) - timedelta(seconds=5), 5, 60))
    db.session.commit()
    london = Period(date(2024, 3, 31), date(2024, 3, 31), ZoneInfo("Europe/London"))
    rows, totals = reports.queue_report(london, None, daily=False)
    overall = [r for r in rows if r["queue"] == reports.ALL_QUEUES]
    assert len(overall) == 92  # 23 hours
    labels = [r["period"] for r in overall]
    assert labels[:5] == [
        "2024-03-31 00:00",
        "2024-03-31 00:15",
        "2024-03-31 00:30",
        "2024-03-31 00:45",
        "2024-03-31 02:00",  # 01:00 UTC is 02:00 BST
    ]
    assert overall[4]["period_start"] == "2024-03-31T01:00:00Z"
    assert _row(rows, "2024-03-31 00:30", "Sales")["answered"] == 1
    assert totals[-1]["answered"] == 1  # 23:30 UTC on the 31st is the 1st of April in London

    utc = Period(date(2024, 3, 31), date(2024, 3, 31), ZoneInfo("UTC"))
    _, utc_totals = reports.queue_report(utc, None, daily=False)
    assert utc_totals[-1]["answered"] == 2

    week = Period(date(2024, 3, 30), date(2024, 4, 1), ZoneInfo("Europe/London"))
    daily, _ = reports.queue_report(week, None, daily=True)
    by_day = {r["period"]: r for r in daily if r["queue"] == reports.ALL_QUEUES}
    # 23:30 UTC on the 30th is the 30th (GMT); 23:30 UTC on the 31st is the 1st (BST).
    assert {d: r["answered"] for d, r in by_day.items()} == {
        "2024-03-30": 1,
        "2024-03-31": 1,
        "2024-04-01": 1,
    }
    assert by_day["2024-03-31"]["period_start"] == "2024-03-31T00:00:00Z"
    assert by_day["2024-04-01"]["period_start"] == "2024-03-31T23:00:00Z"


def test_sla_report_reuses_the_compliance_report(day):
    rows, totals = reports.sla_report(UTC_DAY, None)
    assert rows == [] and totals[0]["total"] == 0 and totals[0]["achieved_pct"] is None


def test_csv_quotes_and_guards_formulas():
    result = {
        "kind": "agents",
        "columns": ["agent", "answered", "asa_s"],
        "rows": [
            {"agent": '=HYPERLINK("http://x","y")', "answered": -1, "asa_s": None},
            {"agent": "Smith, Jo", "answered": 2, "asa_s": 1.5},
            {"agent": "+44 7700", "answered": 0, "asa_s": 0.0},
            {"agent": "@SUM(A1)", "answered": 0, "asa_s": None},
            {"agent": "-2+3", "answered": 0, "asa_s": None},
        ],
        "totals": [{"agent": "All agents", "answered": 3, "asa_s": 1.5}],
    }
    assert reports.to_csv(result).split("\r\n") == [
        "agent,answered,asa_s",
        '"\'=HYPERLINK(""http://x"",""y"")",-1,',
        '"Smith, Jo",2,1.5',
        "'+44 7700,0,0.0",
        "'@SUM(A1),0,",
        "'-2+3,0,",
        "All agents,3,1.5",
        "",
    ]
