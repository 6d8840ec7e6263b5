"""IVR flow definitions: validation with clear errors, versions, business hours."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime

import pytest

from contact_center.errors import APIError
from contact_center.extensions import db
from contact_center.ivr import flows
from contact_center.sla.models import BusinessCalendar


@pytest.fixture
def default_definition():
    return json.loads(flows.DEFAULT_FLOW_PATH.read_text(encoding="utf-8"))


def test_default_flow_is_valid_and_covers_every_node_kind(default_definition):
    flow = flows.validate_flow(default_definition)
    assert {node["type"] for node in flow["nodes"].values()} == set(flows.NODE_SCHEMAS)


@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        (lambda d: d["nodes"]["menu"]["options"].update({"4": "nowhere"}), "menu"),
        (lambda d: d["nodes"]["menu"].update({"type": "teleport"}), "menu"),
        (lambda d: d["nodes"]["menu"]["options"].update({"12": "general"}), "menu"),
        (lambda d: d["nodes"]["hours"].update({"timezone": "Mars/Olympus"}), "hours"),
        (lambda d: d["nodes"]["hours"]["schedule"].update({"mon": [["25:00", "26:00"]]}), "hours"),
        (lambda d: d["nodes"]["emergency"].update({"number": "0800 CALL ME"}), "emergency"),
        (lambda d: d["nodes"]["welcome"].pop("next"), "welcome"),
        (lambda d: d["nodes"]["menu"]["speech"].update({"help": "7"}), "menu"),
        (lambda d: d["nodes"]["general"].update({"colour": "blue"}), "general"),
    ],
)
def test_invalid_flows_name_the_problem(default_definition, mutate, where):
    broken = copy.deepcopy(default_definition)
    mutate(broken)
    with pytest.raises(APIError) as error:
        flows.validate_flow(broken)
    assert error.value.status == 422
    assert where in error.value.fields["nodes"]


def test_unknown_start_and_non_objects_are_refused(default_definition):
    with pytest.raises(APIError) as error:
        flows.validate_flow({**default_definition, "start": "nope"})
    assert error.value.fields == {"start": ["Unknown node 'nope'."]}
    with pytest.raises(APIError):
        flows.validate_flow(["not", "a", "flow"])


def test_versions_and_activation(app, default_definition):
    first = flows.save_flow(default_definition, activate=True)
    changed = copy.deepcopy(default_definition)
    changed["nodes"]["welcome"]["text"] = "Hello again."
    second = flows.save_flow(changed, activate=False)
    assert (first.version, second.version) == (1, 2)
    assert flows.active_flow().id == first.id
    flows.activate_flow(second)
    assert flows.active_flow().id == second.id
    # Loading the shipped flow again finds the identical version instead of adding one.
    assert flows.load_default_flow().id == first.id
    assert flows.active_flow().id == first.id


def test_business_hours_in_the_flow_time_zone():
    node = {"timezone": "Europe/London", "schedule": {"mon": [["08:00", "20:00"]]}}
    monday_summer_0730_utc = datetime(2026, 6, 1, 7, 30, tzinfo=UTC)  # 08:30 in London
    monday_summer_1930_utc = datetime(2026, 6, 1, 19, 30, tzinfo=UTC)  # 20:30 in London
    sunday = datetime(2026, 6, 7, 12, 0, tzinfo=UTC)
    assert flows.is_open(node, monday_summer_0730_utc)
    assert not flows.is_open(node, monday_summer_1930_utc)
    assert not flows.is_open(node, sunday)


def test_business_hours_close_on_the_countrys_public_holidays(default_definition):
    node = {
        "timezone": "Europe/London",
        "schedule": {"mon": [["08:00", "20:00"]]},
        "country": "GB",
        "subdivision": "ENG",
    }
    easter_monday = datetime(2026, 4, 6, 10, 0, tzinfo=UTC)
    next_monday = datetime(2026, 4, 13, 10, 0, tzinfo=UTC)
    assert not flows.is_open(node, easter_monday)
    assert flows.is_open(node, next_monday)
    broken = json.loads(json.dumps(default_definition))
    broken["nodes"]["hours"]["country"] = "XX"
    with pytest.raises(APIError) as refused:
        flows.validate_flow(broken)
    assert "country" in refused.value.fields["nodes"]["hours"]


def test_an_hours_node_can_name_a_stored_business_calendar(app, default_definition):
    db.session.add(
        BusinessCalendar(
            name="UK office",
            timezone="Europe/London",
            windows={"mon": [["08:00", "20:00"]]},
            country="GB",
            subdivision="ENG",
            closed_dates=["2026-06-08"],
            open_dates=[],
        )
    )
    db.session.commit()
    node = {"calendar": "UK office", "open": "a", "closed": "b"}
    assert flows.is_open(node, datetime(2026, 6, 1, 7, 30, tzinfo=UTC))  # Monday 08:30 BST
    assert not flows.is_open(node, datetime(2026, 6, 8, 10, 0, tzinfo=UTC))  # closed date
    assert not flows.is_open(node, datetime(2026, 4, 6, 10, 0, tzinfo=UTC))  # Easter Monday

    named = json.loads(json.dumps(default_definition))
    named["nodes"]["hours"] = {
        "type": "hours",
        "calendar": "UK office",
        "open": named["nodes"]["hours"]["open"],
        "closed": named["nodes"]["hours"]["closed"],
    }
    assert flows.validate_flow(named)["nodes"]["hours"]["calendar"] == "UK office"
    for bad in (
        {"calendar": "Nowhere"},
        {"calendar": "UK office", "timezone": "Europe/London"},
        {"calendar": None},
    ):
        broken = json.loads(json.dumps(named))
        broken["nodes"]["hours"].update(bad)
        with pytest.raises(APIError) as refused:
            flows.validate_flow(broken)
        assert "hours" in refused.value.fields["nodes"]
