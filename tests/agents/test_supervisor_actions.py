"""Supervisors direct agents from the board: force a status, sign them out (audited)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from contact_center import audit
from contact_center.extensions import db
from contact_center.routing import services as routing


@pytest.fixture
def crew(create_user, auth_header):
    agent = create_user("alex")
    routing.set_agent_status(agent, "available")
    return {
        "agent": agent,
        "agent_h": auth_header(agent),
        "sup": create_user("sue", role="supervisor"),
        "sup_h": auth_header(create_user("sid", role="supervisor")),
        "admin_h": auth_header(create_user("ada", role="admin")),
    }


def _audits(action: str) -> list[audit.AuditEvent]:
    return db.session.scalars(
        sa.select(audit.AuditEvent).where(audit.AuditEvent.action == action)
    ).all()


def test_a_supervisor_sets_an_agent_away_and_it_is_audited(client, crew):
    agent = crew["agent"]
    response = client.post(
        f"/api/v1/agents/{agent.id}/status",
        json={"status": "away", "reason": "coaching"},
        headers=crew["sup_h"],
    )
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["presence"] == "away"
    db.session.refresh(agent)
    assert (agent.presence, agent.status_reason) == ("away", "coaching")
    assert routing.get_store().presence(agent.id) == "away"  # routing offers them nothing
    [entry] = _audits("agent.status_forced")
    assert entry.before["presence"] == "available" and entry.after["presence"] == "away"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"status": "lunch"}, "status"),
        ({}, "status"),
        ({"status": "away", "reason": "x" * 201}, "reason"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(client, crew, body, field):
    agent = crew["agent"]
    response = client.post(f"/api/v1/agents/{agent.id}/status", json=body, headers=crew["sup_h"])
    assert response.status_code == 422
    assert field in response.get_json()["error"]["fields"]
    db.session.refresh(agent)
    assert agent.presence == "available"
    assert _audits("agent.status_forced") == []


def test_who_may_direct_whom(client, crew):
    agent, sup = crew["agent"], crew["sup"]
    path = "/api/v1/agents/{}/status"
    body = {"status": "offline"}
    assert client.post(path.format(agent.id), json=body).status_code == 401
    assert client.post(path.format(agent.id), json=body, headers=crew["agent_h"]).status_code == 403
    # A supervisor directs agents only; an admin may direct a supervisor.
    assert client.post(path.format(sup.id), json=body, headers=crew["sup_h"]).status_code == 403
    assert client.post(path.format(sup.id), json=body, headers=crew["admin_h"]).status_code == 200
    assert client.post(path.format(999_999), json=body, headers=crew["sup_h"]).status_code == 404


def test_signing_an_agent_out_ends_their_token_at_once(client, crew):
    agent = crew["agent"]
    assert client.get("/api/v1/agents", headers=crew["agent_h"]).status_code == 200
    response = client.post(f"/api/v1/agents/{agent.id}/sign-out", headers=crew["sup_h"])
    assert response.status_code == 200
    assert response.get_json()["presence"] == "offline"
    assert client.get("/api/v1/agents", headers=crew["agent_h"]).status_code == 401
    assert len(_audits("agent.signed_out")) == 1
