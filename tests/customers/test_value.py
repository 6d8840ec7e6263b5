"""ABC tiers from customer value, and CSV import with a validation report."""

from __future__ import annotations

import random
from decimal import Decimal

import sqlalchemy as sa

from contact_center.customers.models import Customer
from contact_center.customers.value import compute_tiers
from contact_center.extensions import db
from contact_center.routing.models import Interaction


def _population(n: int) -> list[Customer]:
    rng = random.Random(7)
    customers = [
        Customer(name=f"C{i}", lifetime_value=Decimal(rng.randint(0, 1_000_000)) / 100)
        for i in range(n)
    ]
    db.session.add_all(customers)
    db.session.commit()
    return customers


def _tiers() -> dict[str, int]:
    rows = db.session.execute(sa.select(Customer.tier, sa.func.count()).group_by(Customer.tier))
    return dict(rows.all())


def test_tiers_split_5_15_80_by_lifetime_value(app):
    customers = _population(2000)
    assert compute_tiers("lifetime_value") == {"A": 100, "B": 300, "C": 1600}
    assert _tiers() == {"A": 100, "B": 300, "C": 1600}
    db.session.expire_all()
    by_value = sorted(customers, key=lambda c: (-c.lifetime_value, c.id))
    assert {c.tier for c in by_value[:100]} == {"A"}
    assert {c.tier for c in by_value[100:400]} == {"B"}
    assert {c.tier for c in by_value[400:]} == {"C"}
    lowest_a = min(c.lifetime_value for c in customers if c.tier == "A")
    highest_b = max(c.lifetime_value for c in customers if c.tier == "B")
    assert lowest_a >= highest_b


def test_tiers_by_interaction_count_through_the_api_job(
    app, client, auth_header, create_user, run_jobs
):
    customers = _population(40)
    busiest = customers[5]
    db.session.add_all(
        [Interaction(channel="voice", status="ended", customer_id=busiest.id) for _ in range(3)]
    )
    db.session.commit()
    agent, admin = create_user("alice"), create_user("ada", role="admin")
    url = "/api/v1/customers/tiers"
    assert client.post(url, json={}, headers=auth_header(agent)).status_code == 403
    assert client.post(url, json={"basis": "mood"}, headers=auth_header(admin)).status_code == 422
    queued = client.post(url, json={"basis": "interactions"}, headers=auth_header(admin))
    assert queued.status_code == 202 and queued.get_json()["job_id"]
    run_jobs()
    db.session.expire_all()
    assert busiest.tier == "A"
    assert _tiers() == {"A": 2, "B": 6, "C": 32}


def test_cli_recomputes_tiers(app, runner):
    _population(20)
    result = runner.invoke(args=["customers", "tiers"])
    assert result.exit_code == 0, result.output
    assert "A 1, B 3, C 16" in result.output


GOOD = (
    "name,phones,emails,type,region,lifetime_value,tags\n"
    "Mei Chen,+44 7700 900123;020 7946 0018,mei@example.org,end_customer,London,1200.50,vip;cards\n"
    "Acme Ltd,,orders@acme.test,distributor,,99,\n"
)


def _import(client, headers, text: str, **query):
    return client.post(
        "/api/v1/customers/import",
        data=text.encode(),
        content_type="text/csv",
        headers=headers,
        query_string=query,
    )


def test_csv_import_of_good_rows(app, client, auth_header, create_user):
    headers = auth_header(create_user("sam", role="supervisor"))
    report = _import(client, headers, GOOD).get_json()
    assert report == {"imported": 2, "rejected": 0, "complete": True, "errors": []}
    mei = db.session.scalar(sa.select(Customer).where(Customer.name == "Mei Chen"))
    assert mei.identity_values("phone") == ["+447700900123", "+442079460018"]
    assert mei.tags == ["vip", "cards"] and mei.lifetime_value == Decimal("1200.50")


def test_csv_import_with_bad_rows_imports_nothing_and_reports_each(
    app, client, auth_header, create_user
):
    headers = auth_header(create_user("sam", role="supervisor"))
    bad = GOOD + (
        ",+447700900555,,,,,\n"  # line 4: no name
        "Bob,not-a-number,,,,,\n"  # line 5: bad phone
        "Carl,,mei@example.org,,,,\n"  # line 6: email also on line 2
        "Dora,,,martian,,,\n"  # line 7: bad type
    )
    response = _import(client, headers, bad)
    assert response.status_code == 422
    rows = response.get_json()["error"]["fields"]["rows"]
    assert [r["line"] for r in rows] == [4, 5, 6, 7]
    assert "name" in rows[0]["fields"] and "phones" in rows[1]["fields"]
    assert "line 2" in rows[2]["fields"]["identities"][0] and "type" in rows[3]["fields"]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Customer)) == 0

    partial = _import(client, headers, bad, good_rows_only="true")
    assert partial.status_code == 200
    report = partial.get_json()
    assert (report["imported"], report["rejected"], report["complete"]) == (2, 4, False)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Customer)) == 2
    # Importing the same file again: every identity is now taken.
    again = _import(client, headers, GOOD)
    assert again.status_code == 422
    assert (
        "belongs to customer"
        in again.get_json()["error"]["fields"]["rows"][0]["fields"]["identities"][0]
    )


def test_csv_import_refuses_bad_files(app, client, auth_header, create_user):
    headers = auth_header(create_user("sam", role="supervisor"))
    assert _import(client, headers, "nom,phones\nx,y\n").status_code == 422
    assert _import(client, headers, "name,shoe_size\nx,42\n").status_code == 422
    latin1 = client.post(
        "/api/v1/customers/import",
        data="name\nJosé\n".encode("latin-1"),
        content_type="text/csv",
        headers=headers,
    )
    assert latin1.status_code == 400
    as_json = client.post("/api/v1/customers/import", json={"name": "x"}, headers=headers)
    assert as_json.status_code == 415
    agent = auth_header(create_user("alice"))
    assert _import(client, agent, GOOD).status_code == 403
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Customer)) == 0
