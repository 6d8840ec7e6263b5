"""Hostile IVR flows (hypothesis): any JSON is either a valid flow or a 422 naming problems;
never another exception, and a refused flow is not stored."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contact_center.errors import APIError
from contact_center.extensions import db
from contact_center.ivr.flows import validate_flow
from contact_center.ivr.models import IvrFlow

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=25,
)
node_types = st.sampled_from(
    ["say", "menu", "language", "hours", "enqueue", "voicemail", "hangup", "transfer",
     "ticket_status", "redirect", "nonsense"]
)  # fmt: skip
node = st.fixed_dictionaries(
    {"type": node_types},
    optional={
        "text": st.text(max_size=40),
        "prompt": st.text(max_size=40),
        "next": st.sampled_from(["a", "b", "missing"]),
        "options": st.dictionaries(st.text(max_size=2), st.sampled_from(["a", "b", "zz"])),
        "queue": st.text(max_size=20),
        "timeout_s": json_values,
        "retries": json_values,
        "schedule": json_values,
        "number": st.text(max_size=20),
    },
)
flows = st.fixed_dictionaries(
    {
        "name": st.text(max_size=30),
        "start": st.sampled_from(["a", "b", "missing"]),
        "nodes": st.dictionaries(st.sampled_from(["a", "b", "c"]), node | json_values, max_size=3),
    }
)
FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@FUZZ
@given(definition=st.one_of(json_values, flows))
def test_any_json_is_a_flow_or_a_clear_422(definition):
    try:
        validate_flow(definition)
    except APIError as error:
        problem = error
    else:
        return
    assert problem.status == 422 and problem.fields


@pytest.fixture
def admin(auth_header, create_user):
    """One admin for all of a test's examples (hypothesis reuses function fixtures)."""
    return auth_header(create_user("ada", "admin"))


@FUZZ
@given(definition=flows)
def test_a_refused_flow_is_not_stored(client, admin, definition):
    before = db.session.scalar(sa.select(sa.func.count()).select_from(IvrFlow))
    response = client.post("/api/v1/ivr/flows", json=definition, headers=admin)
    assert response.status_code in (201, 422), response.get_data(as_text=True)[:300]
    db.session.expire_all()
    after = db.session.scalar(sa.select(sa.func.count()).select_from(IvrFlow))
    assert after == before + (response.status_code == 201)
