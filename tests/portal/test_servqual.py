"""SERVQUAL answers and the gap report per queue."""

from __future__ import annotations

from contact_center.extensions import db
from contact_center.portal.servqual import DIMENSIONS
from contact_center.routing import services as routing
from contact_center.routing.models import Interaction


def _scores(*values: int) -> dict[str, int]:
    return dict(zip(DIMENSIONS, values, strict=True))


def test_gap_per_queue_and_dimension(app, client, auth_header, create_user):
    cards = routing.create_queue(name="Cards", channels=["voice"])
    general = routing.create_queue(name="General", channels=["voice"])
    db.session.flush()
    calls = [
        Interaction(channel="voice", status="ended", queue_id=q.id) for q in (cards, cards, general)
    ]
    db.session.add_all(calls)
    db.session.commit()
    agent = auth_header(create_user("alice"))
    answers = [
        (calls[0], _scores(6, 7, 6, 6, 5), _scores(5, 5, 6, 7, 5)),
        (calls[1], _scores(6, 7, 6, 6, 5), _scores(7, 6, 4, 6, 5)),
        (calls[2], _scores(5, 5, 5, 5, 5), _scores(6, 6, 6, 6, 6)),
    ]
    for interaction, expected, perceived in answers:
        response = client.post(
            "/api/v1/surveys/servqual",
            json={
                "interaction_id": interaction.id,
                "expectations": expected,
                "perceptions": perceived,
            },
            headers=agent,
        )
        assert response.status_code == 201, response.get_json()

    assert client.get("/api/v1/surveys/servqual/report", headers=agent).status_code == 403
    supervisor = auth_header(create_user("sam", role="supervisor"))
    report = client.get("/api/v1/surveys/servqual/report", headers=supervisor).get_json()
    assert [(r["queue"], r["responses"]) for r in report] == [("Cards", 2), ("General", 1)]
    cards_row = report[0]["dimensions"]
    assert cards_row["reliability"] == {"expectation": 7.0, "perception": 5.5, "gap": -1.5}
    assert cards_row["assurance"]["gap"] == 0.5 and cards_row["empathy"]["gap"] == 0.0
    assert report[0]["gap"] == -0.4  # (0 - 1.5 - 1 + 0.5 + 0) / 5
    assert report[1]["gap"] == 1.0
    later = client.get(
        "/api/v1/surveys/servqual/report?from=2099-01-01T00:00:00Z", headers=supervisor
    ).get_json()
    assert later == []


def test_incomplete_or_out_of_range_answers_are_refused(app, client, auth_header, create_user):
    call = Interaction(channel="voice", status="ended")
    db.session.add(call)
    db.session.commit()
    agent = auth_header(create_user("alice"))
    url = "/api/v1/surveys/servqual"
    missing = {
        "interaction_id": call.id,
        "expectations": {"tangibles": 5},
        "perceptions": _scores(5, 5, 5, 5, 5),
    }
    assert client.post(url, json=missing, headers=agent).status_code == 422
    too_high = {
        "interaction_id": call.id,
        "expectations": _scores(8, 5, 5, 5, 5),
        "perceptions": _scores(5, 5, 5, 5, 5),
    }
    assert client.post(url, json=too_high, headers=agent).status_code == 422
    unknown = {
        "interaction_id": 999,
        "expectations": _scores(5, 5, 5, 5, 5),
        "perceptions": _scores(5, 5, 5, 5, 5),
    }
    assert client.post(url, json=unknown, headers=agent).status_code == 422
