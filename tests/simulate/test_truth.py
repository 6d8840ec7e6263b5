"""Ground truth in the board's terms, the board's difference over a run, the comparison."""

from __future__ import annotations

import pytest

from contact_center.simulate import truth


def snapshot(**queues):
    return {
        "queues": [
            {"name": name, "threshold_s": threshold, "today": today}
            for name, (threshold, today) in queues.items()
        ]
    }


def test_the_tally_counts_as_the_board_does():
    tally = truth.Tally()
    tally.answered("General", 5.0, 20)
    tally.answered("General", 20.0, 20)  # at the threshold: within, as the board counts
    tally.answered("Cards", 31.5, 30)
    tally.abandoned("General", 3.0, 20)
    tally.abandoned("Cards", 45.0, 30)
    totals = tally.totals()
    assert totals == {
        "answered": 3,
        "answered_within": 2,
        "abandoned": 2,
        "abandoned_within": 1,
        "wait_ms": 56500,
    }
    figures = truth.figures(totals)
    assert figures["offered"] == 5
    # answered within / (offered - abandoned within): 2 / (5 - 1)
    assert figures["service_level"] == 0.5
    assert figures["asa_s"] == pytest.approx(56.5 / 3, abs=0.01)


def test_the_board_difference_is_what_happened_between_two_snapshots():
    zero = dict.fromkeys(truth.COUNTS, 0)
    before = snapshot(General=(20, {**zero, "answered": 4, "wait_ms": 4000}))
    after = snapshot(
        General=(20, {**zero, "answered": 7, "answered_within": 2, "wait_ms": 10000}),
        Cards=(30, {**zero, "abandoned": 1}),  # a queue made during the run
    )
    assert truth.board_difference(before, after) == {
        **zero,
        "answered": 3,
        "answered_within": 2,
        "abandoned": 1,
        "wait_ms": 6000,
    }
    assert truth.thresholds(after) == {"General": 20.0, "Cards": 30.0}


def test_the_comparison_names_the_largest_difference_but_leaves_asa_aside():
    mine = truth.figures(
        {
            "answered": 10,
            "answered_within": 8,
            "abandoned": 2,
            "abandoned_within": 0,
            "wait_ms": 50_000,
        }
    )
    same = truth.compare(mine, {**mine, "asa_s": mine["asa_s"] + 0.2})
    assert same["max_error"] == 0
    assert same["difference"]["asa_s"] == pytest.approx(0.2)
    off = truth.compare(mine, {**mine, "answered": 11, "offered": 13})
    assert off["max_error"] == pytest.approx(0.1)
    assert off["difference"]["answered"] == 1
    missing = truth.compare(mine, {**mine, "service_level": None})
    assert missing["max_error"] == 1.0


def test_erlang_predicts_the_runs_mean_load():
    expected = truth.prediction(
        arrivals_per_s=100 / 1800, agents=14, busy_s=180, threshold_s=20, patience_s=60
    )
    assert expected["traffic_erlangs"] == 10.0
    # The published 100 calls / 30 min, AHT 180 s, 14 agents example: SL 0.888.
    assert expected["erlang_c"]["service_level"] == pytest.approx(0.8884, abs=0.001)
    assert expected["erlang_a"]["service_level"] >= expected["erlang_c"]["service_level"]
    assert truth.render([("offered", 5, None)]).splitlines()[1].split() == ["offered", "5", "-"]
