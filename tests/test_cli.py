"""The Flask CLI: users, demo data, routing rebuild."""

from __future__ import annotations

import sqlalchemy as sa

from contact_center.agents.models import User
from contact_center.customers.models import Customer
from contact_center.customers.services import search_customers
from contact_center.extensions import db
from contact_center.routing.models import Interaction, Queue
from contact_center.sla.models import SlaPolicy
from tests.conftest import TEST_REDIS_URL


def test_users_create_with_skills(runner):
    result = runner.invoke(
        args=[
            "users",
            "create",
            "--username",
            "zoe",
            "--password",
            "long-enough-1",
            "--role",
            "supervisor",
            "--skills",
            "lang:en=5,product:cards=3",
        ]
    )
    assert result.exit_code == 0, result.output
    user = db.session.scalar(sa.select(User).where(User.username == "zoe"))
    assert user.role == "supervisor"
    assert user.skill_levels() == {"lang:en": 5, "product:cards": 3}
    assert "long-enough-1" not in user.password_hash


def test_users_create_refuses_bad_input(runner):
    short = runner.invoke(args=["users", "create", "--username", "zoe", "--password", "short"])
    assert short.exit_code != 0
    bad_skill = runner.invoke(
        args=[
            "users",
            "create",
            "--username",
            "zoe",
            "--password",
            "long-enough-1",
            "--skills",
            "lang:en=9",
        ]
    )
    assert bad_skill.exit_code != 0
    bad_role = runner.invoke(
        args=[
            "users",
            "create",
            "--username",
            "zoe",
            "--password",
            "long-enough-1",
            "--role",
            "king",
        ]
    )
    assert bad_role.exit_code != 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(User)) == 0
    runner.invoke(args=["users", "create", "--username", "zoe", "--password", "long-enough-1"])
    taken = runner.invoke(
        args=["users", "create", "--username", "zoe", "--password", "long-enough-2"]
    )
    assert taken.exit_code != 0 and "taken" in taken.output


def test_demo_seed_is_idempotent_and_prints_logins(runner):
    first = runner.invoke(args=["demo", "seed"])
    assert first.exit_code == 0, first.output
    assert "alice / " in first.output and "supervisor" in first.output
    counts = [
        db.session.scalar(sa.select(sa.func.count()).select_from(m))
        for m in (User, Customer, Queue, Interaction, SlaPolicy)
    ]
    assert all(count > 0 for count in counts)
    assert runner.invoke(args=["demo", "seed"]).exit_code == 0
    assert counts == [
        db.session.scalar(sa.select(sa.func.count()).select_from(m))
        for m in (User, Customer, Queue, Interaction, SlaPolicy)
    ]
    assert [c.name for c in search_customers("020 7946 0018")] == ["Margaret Holloway"]


def test_routing_rebuild(runner, create_user):
    result = runner.invoke(args=["routing", "rebuild"])
    assert result.exit_code == 0
    if TEST_REDIS_URL:
        assert "Rebuilt: 0 waiting interactions" in result.output
    else:
        assert "Embedded mode" in result.output
