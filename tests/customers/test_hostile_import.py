"""Hostile CSV imports (hypothesis): imported, or refused with every bad row named and
nothing written; never a 5xx."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contact_center.customers.models import Customer
from contact_center.extensions import db

COLUMNS = "name,phones,emails,type,status,region,lifetime_value,tags"
cell = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["+44 20 7946 0018", "07700 900123", "a@b.example", "end_customer", "-5"]),
    st.sampled_from(["1e308", "NaN", "=cmd|' /C calc'!A0", '"quoted, comma"', "x;y;;"]),
)
rows = st.lists(st.lists(cell, min_size=0, max_size=10), max_size=6)


def csv_text(header: str, table: list[list[str]]) -> str:
    def quote(value: str) -> str:
        return '"' + value.replace('"', '""') + '"' if any(c in value for c in ',"\n\r') else value

    return "\n".join([header, *(",".join(quote(v) for v in row) for row in table)])


@pytest.fixture
def supervisor(auth_header, create_user):
    """One supervisor for all of a test's examples (hypothesis reuses function fixtures)."""
    return auth_header(create_user("sam", "supervisor"))


@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    header=st.one_of(st.just(COLUMNS), st.text(max_size=60)),
    table=rows,
    raw_tail=st.binary(max_size=40),
)
def test_any_csv_is_imported_or_refused_whole(client, supervisor, header, table, raw_tail):
    body = csv_text(header, table).encode("utf-8") + raw_tail
    before = db.session.scalar(sa.select(sa.func.count()).select_from(Customer))
    response = client.post(
        "/api/v1/customers/import", data=body, content_type="text/csv", headers=supervisor
    )
    assert response.status_code in (200, 400, 422), response.get_data(as_text=True)[:300]
    db.session.expire_all()
    after = db.session.scalar(sa.select(sa.func.count()).select_from(Customer))
    if response.status_code == 200:
        assert after == before + response.get_json()["imported"]
    else:
        assert after == before
        assert response.get_json()["error"]["message"]


def test_a_csv_the_reader_cannot_read_is_refused_with_its_line(client, supervisor):
    # A field past the csv module's limit (128 KiB) is an error of the reader itself.
    body = "name,region\nAda,EU\n" + "B" * 200_000 + ",EU\n"
    response = client.post(
        "/api/v1/customers/import", data=body, content_type="text/csv", headers=supervisor
    )
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["message"] == "The CSV could not be read."
    assert error["fields"]["csv"][0].startswith("Line 3:")
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Customer)) == 0


def test_carriage_returns_end_lines_as_newlines_do(client, supervisor):
    body = "name,region\r\nAda Lovelace,EU\rGrace Hopper,US\n"
    response = client.post(
        "/api/v1/customers/import", data=body, content_type="text/csv", headers=supervisor
    )
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["imported"] == 2
