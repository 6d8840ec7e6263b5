"""Reports read what the real call flow records: transfers (blind and warm) and wrap-up."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from contact_center.audit import AuditEvent
from contact_center.board import reports
from contact_center.db_types import utcnow
from contact_center.extensions import db
from contact_center.routing.models import Interaction, Queue


def _today() -> reports.Period:
    today = utcnow().date()
    return reports.Period(today - timedelta(days=1), today, ZoneInfo("UTC"))


def _emit(socket, event, data):
    return socket.emit(event, data, namespace="/agent", callback=True)


def test_a_blind_transfer_counts_for_the_agent_and_the_queue_handed_on_from(
    client, live_call, auth_header
):
    interaction, alice, _ = live_call
    general = interaction.queue
    billing = db.session.scalar(sa.select(Queue).where(Queue.name == "Billing"))
    moved = client.post(
        f"/api/v1/interactions/{interaction.id}/transfer",
        json={"queue_id": billing.id},
        headers=auth_header(alice),
    )
    assert moved.status_code == 200, moved.get_json()
    event = db.session.scalar(
        sa.select(AuditEvent).where(AuditEvent.action == reports.TRANSFER_ACTION)
    )
    assert (event.object_id, event.actor_id) == (interaction.id, alice.id)
    assert event.before["queue_id"] == general.id
    assert event.after == {"queue_id": billing.id, "agent_id": None, "kind": "blind"}

    (agent_row,) = [r for r in reports.agent_report(_today(), None)[0] if r["agent_id"]]
    assert (agent_row["agent_id"], agent_row["transfers"]) == (alice.id, 1)
    _, totals = reports.queue_report(_today(), None, daily=True)
    assert [(t["queue"], t["transfers"]) for t in totals] == [
        ("General", 1),
        (reports.ALL_QUEUES, 1),
    ]
    # Waiting again in Billing: not offered, answered or abandoned until the wait ends.
    assert totals[-1]["offered"] == 0


def test_wrap_up_ended_early_counts_as_long_as_it_lasted(live_call):
    interaction, alice, socket = live_call
    interaction.queue.wrapup_s = 600
    db.session.commit()
    assert _emit(socket, "complete", {"interaction_id": interaction.id})["ok"]
    db.session.refresh(interaction)
    assert interaction.status == "wrapup"
    planned = interaction.wrapup_until
    assert planned - interaction.ended_at == timedelta(seconds=600)
    assert _emit(socket, "wrapup_done", {"interaction_id": interaction.id})["ok"]
    db.session.expire_all()
    done = db.session.get(Interaction, interaction.id)
    assert done.status == "ended"
    wrap_s = (done.wrapup_until - done.ended_at).total_seconds()
    assert 0 <= wrap_s < 60  # seconds, not the 600 planned

    _, totals = reports.queue_report(_today(), None, daily=True)
    overall = totals[-1]
    assert (overall["answered"], overall["offered"]) == (1, 1)
    expected = done.duration_s + wrap_s
    assert abs(overall["aht_s"] - expected) <= 0.1
