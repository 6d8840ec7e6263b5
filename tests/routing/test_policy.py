"""The pure routing rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from contact_center.ivr.twiml import spoken_wait
from contact_center.routing import policy


def test_tiers_relax_skills_and_widen_teams_step_by_step():
    tiers = policy.tiers(
        {"lang:zh": 4, "product:cards": 2},
        ["Cards"],
        [
            {"after_s": 60, "add_teams": ["General"]},
            {"after_s": 30, "relax": {"lang:zh": 2}},
            {"after_s": 90, "relax": {"product:cards": 0}},
            {"after_s": 120, "queue": "Elsewhere"},
        ],
    )
    assert [t.describe() for t in tiers] == [
        {"skills": {"lang:zh": 4, "product:cards": 2}, "teams": ["Cards"]},
        {"skills": {"lang:zh": 2, "product:cards": 2}, "teams": ["Cards"]},
        {"skills": {"lang:zh": 2, "product:cards": 2}, "teams": ["Cards", "General"]},
        {"skills": {"lang:zh": 2}, "teams": ["Cards", "General"]},
    ]
    levels = {"lang:zh": 3, "product:cards": 2}
    assert policy.strictest_tier(tiers, levels, "General") == 2
    assert policy.strictest_tier(tiers, levels, "Cards") == 1
    assert policy.strictest_tier(tiers, {"lang:en": 5}, "Cards") is None


def test_interaction_skills_merge_with_the_highest_level():
    assert policy.merge_skills({"a": 2, "b": 1}, {"a": 3}) == {"a": 3, "b": 1}
    assert policy.parse_signature(policy.signature({"b": 1, "a": 3})) == {"a": 3, "b": 1}
    assert policy.signature({}) == ""


def test_queue_score_credit():
    now = datetime(2026, 1, 1, tzinfo=UTC)
    plain = policy.queue_score(now)
    assert plain - policy.queue_score(now, customer_tier="A") == 120
    assert plain - policy.queue_score(now, priority=2, complaint=True) == 120
    deadline = now + timedelta(hours=1)
    assert policy.queue_score(now, deadline=deadline) == deadline.timestamp()


def test_agent_scores_by_strategy():
    assert policy.agent_score("longest_idle", idle_since=5, last_offer_at=9, load=2) == 5
    assert policy.agent_score("round_robin", idle_since=5, last_offer_at=9, load=2) == 9
    assert policy.agent_score(
        "least_occupied", idle_since=5, last_offer_at=9, load=0
    ) < policy.agent_score("least_occupied", idle_since=1, last_offer_at=9, load=1)


def test_pool_names_round_trip():
    name = policy.pool_name(3, "email", "lang:zh=3", 1)
    assert policy.parse_pool(name) == (3, "email", "lang:zh=3", 1)


def test_estimated_wait():
    assert policy.estimated_wait_s(1, 0, 100) == -1
    assert policy.estimated_wait_s(1, 1, 100) == 50
    assert policy.estimated_wait_s(4, 2, 100) == 175
    assert policy.estimated_wait_s(1, 1, None) == 90
    assert spoken_wait(20) == "less than a minute"
    assert spoken_wait(70) == "about 1 minute"
    assert spoken_wait(600) == "about 10 minutes"
