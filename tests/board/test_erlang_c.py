"""Erlang C: published reference values, exact small cases, edge cases, monotonicity."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contact_center.board import erlang
from contact_center.board.erlang import StaffingLimitError

# The worked example of Call Centre Helper's "Erlang C Formula - Made Simple With an Easy
# Worked Example" (https://www.callcentrehelper.com/erlang-c-formula-example-121281.htm)
# takes 100 calls per 30 minutes, AHT 180 s, 80 % answered within 20 s (and an 85 % occupancy
# cap), so A = 10 erlangs, and starts its search at N = A + 1 = 11. The figures below are
# those two independent implementations publish for the same inputs:
# - the README of the CRAN package ErlangC 0.1.0
#   (https://stat.ethz.ch/CRAN/web/packages/ErlangC/readme/README.html):
#   erlang_c(100, 30 min, 180 s, 20 s, 14) gives wait_probability 0.1741319, service_level
#   0.88835, average_speed_of_answer 7.83593701177724 s, occupancy 0.7142857, and
#   calculate_agents(...) gives agents 14, its first step (N = 11) having wait_probability
#   0.6821182 and service_level 0.3896138;
# - the pyworkforce README (https://pypi.org/project/pyworkforce/0.1.0/): ErlangC(
#   transactions=100, asa=20/60, aht=3, interval=30).required_positions(service_level=0.8)
#   gives raw_positions 14, service_level 0.8883500191794669, waiting_probability
#   0.1741319335950498, occupancy 0.7142857142857143.
ARRIVALS, INTERVAL_S, AHT_S, THRESHOLD_S = 100, 1800, 180, 20


def test_the_worked_example_load_is_ten_erlangs():
    assert erlang.traffic_erlangs(ARRIVALS, INTERVAL_S, AHT_S) == 10.0


def test_fourteen_agents_match_the_published_figures():
    prediction = erlang.predict(10.0, 14, AHT_S, THRESHOLD_S)
    assert prediction.probability_wait == pytest.approx(0.1741319335950498, rel=1e-12)
    assert prediction.service_level == pytest.approx(0.8883500191794669, rel=1e-12)
    assert prediction.asa_s == pytest.approx(7.83593701177724, rel=1e-12)
    assert prediction.occupancy == pytest.approx(0.7142857142857143, rel=1e-12)
    assert prediction.stable and prediction.probability_abandon == 0.0
    assert prediction.answered_within == prediction.service_level


def test_eleven_agents_match_the_first_published_step():
    assert erlang.erlang_c(10.0, 11) == pytest.approx(0.6821182, abs=5e-8)
    assert erlang.service_level(10.0, 11, AHT_S, THRESHOLD_S) == pytest.approx(0.3896138, abs=5e-8)


def test_fourteen_agents_are_needed_for_80_20():
    needed = erlang.agents_needed(ARRIVALS, INTERVAL_S, AHT_S, 0.8, THRESHOLD_S)
    assert needed.agents == 14
    assert needed.service_level == pytest.approx(0.88835, abs=5e-6)
    # 13 fall just short: the search did not stop early.
    assert erlang.service_level(10.0, 13, AHT_S, THRESHOLD_S) < 0.8
    # The published example's 85 % occupancy cap does not bind (10 / 14 = 71 %).
    capped = erlang.agents_needed(ARRIVALS, INTERVAL_S, AHT_S, 0.8, THRESHOLD_S, max_occupancy=0.85)
    assert capped == needed


def test_staffing_says_how_many_agents_are_missing():
    advice = erlang.staffing(ARRIVALS, INTERVAL_S, AHT_S, 0.8, THRESHOLD_S, agents_now=11)
    assert advice.advice == "+3 agents needed for 80/20"
    assert (advice.now.agents, advice.needed.agents, advice.extra_agents) == (11, 14, 3)
    assert advice.now.service_level == pytest.approx(0.3896138, abs=5e-8)
    assert advice.model == "erlang_c" and advice.target_label == "80/20"
    one_short = erlang.staffing(ARRIVALS, INTERVAL_S, AHT_S, 0.8, THRESHOLD_S, agents_now=13)
    assert one_short.advice == "+1 agent needed for 80/20"
    on_target = erlang.staffing(ARRIVALS, INTERVAL_S, AHT_S, 0.8, THRESHOLD_S, agents_now=14)
    assert (on_target.advice, on_target.extra_agents) == ("On target for 80/20", 0)
    spare = erlang.staffing(ARRIVALS, INTERVAL_S, AHT_S, 0.8, THRESHOLD_S, agents_now=16)
    assert (spare.advice, spare.extra_agents) == ("2 agents more than 80/20 needs", -2)
    unknown = erlang.staffing(ARRIVALS, INTERVAL_S, AHT_S, 0.85, 15)
    assert unknown.now is None and unknown.extra_agents is None
    assert unknown.advice == f"{unknown.needed.agents} agents needed for 85/15"


def test_exact_small_systems():
    assert erlang.erlang_b(1.0, 1) == 0.5
    assert erlang.erlang_b(2.0, 2) == pytest.approx(0.4, rel=1e-15)  # 2 / (1 + 2 + 2)
    assert erlang.erlang_c(1.0, 2) == pytest.approx(1 / 3, rel=1e-15)  # M/M/2, A = 1
    # M/M/1: P(wait) = rho, ASA = rho / (1 - rho) AHT, P(W > t) = rho e^-(1 - rho) t / AHT.
    rho, aht, t = 0.75, 120.0, 30.0
    single = erlang.predict(rho, 1, aht, t)
    assert single.probability_wait == pytest.approx(rho, rel=1e-14)
    assert single.asa_s == pytest.approx(rho / (1 - rho) * aht, rel=1e-14)
    assert single.service_level == pytest.approx(1 - rho * math.exp(-(1 - rho) * t / aht))


@pytest.mark.parametrize(("traffic", "agents"), [(10.0, 10), (12.5, 10), (1.0, 1), (3.0, 0)])
def test_traffic_at_or_above_the_agents_has_no_steady_state(traffic, agents):
    prediction = erlang.predict(traffic, agents, AHT_S, THRESHOLD_S)
    assert not prediction.stable
    assert erlang.erlang_c(traffic, agents) == 1.0 == prediction.probability_wait
    assert prediction.service_level == 0.0 == erlang.service_level(traffic, agents, AHT_S, 20)
    assert prediction.asa_s is None and erlang.asa(traffic, agents, AHT_S) is None
    assert prediction.mean_wait_s is None
    assert prediction.occupancy == (1.0 if agents else None)


def test_no_arrivals_need_no_agents_and_nobody_waits():
    idle = erlang.predict(0.0, 5, AHT_S, THRESHOLD_S)
    assert (idle.probability_wait, idle.service_level, idle.asa_s, idle.occupancy) == (
        0.0,
        1.0,
        0.0,
        0.0,
    )
    needed = erlang.agents_needed(0, INTERVAL_S, AHT_S, 0.8, THRESHOLD_S)
    assert needed.agents == 0 and needed.service_level == 1.0 and needed.occupancy is None
    assert erlang.erlang_c(0.0, 0) == 0.0


def test_a_threshold_of_zero_is_the_chance_of_not_waiting():
    assert erlang.service_level(10.0, 14, AHT_S, 0) == pytest.approx(1 - 0.1741319335950498)


def _log_erlang_c_direct(traffic: float, agents: int) -> float:
    """log C(N, A) from the textbook sum, in log space: an independent check at large N."""
    logs = [k * math.log(traffic) - math.lgamma(k + 1) for k in range(agents)]
    top = agents * math.log(traffic) - math.lgamma(agents + 1) + math.log(agents)
    top -= math.log(agents - traffic)
    peak = max(*logs, top)
    total = math.fsum(math.exp(v - peak) for v in logs) + math.exp(top - peak)
    return top - peak - math.log(total)


@pytest.mark.parametrize(
    ("traffic", "agents"), [(10.0, 14), (48.0, 55), (950.0, 1000), (5000.0, 5100), (9000.0, 9050)]
)
def test_large_systems_do_not_overflow(traffic, agents):
    wait = erlang.erlang_c(traffic, agents)
    assert math.log(wait) == pytest.approx(_log_erlang_c_direct(traffic, agents), rel=1e-9)


def test_thousands_of_agents_for_a_small_load_round_to_no_wait():
    assert erlang.erlang_b(1.0, 5000) == 0.0  # 1 / 5000! underflows: it is that small
    assert erlang.erlang_c(1.0, 5000) == 0.0
    assert erlang.service_level(1.0, 5000, AHT_S, THRESHOLD_S) == 1.0


def test_five_thousand_erlangs_are_sized_without_overflow():
    arrivals = 5000 * INTERVAL_S / AHT_S  # 50,000 calls per half hour
    needed = erlang.agents_needed(arrivals, INTERVAL_S, AHT_S, 0.8, THRESHOLD_S)
    assert needed.traffic_erlangs == 5000.0
    assert needed.service_level >= 0.8
    assert erlang.service_level(5000.0, needed.agents - 1, AHT_S, THRESHOLD_S) < 0.8
    assert 5000 < needed.agents < 5100  # the square-root staffing rule's neighbourhood


def test_the_search_is_bounded():
    with pytest.raises(StaffingLimitError, match="more than 10000 agents"):
        erlang.agents_needed(1e9, INTERVAL_S, AHT_S, 0.8, THRESHOLD_S)
    with pytest.raises(StaffingLimitError, match="more than 12 agents"):
        erlang.agents_needed(ARRIVALS, INTERVAL_S, AHT_S, 0.8, THRESHOLD_S, max_agents=12)


def test_occupancy_and_asa_caps_add_agents():
    capped = erlang.agents_needed(ARRIVALS, INTERVAL_S, AHT_S, 0.8, THRESHOLD_S, max_occupancy=0.7)
    assert capped.agents == 15  # ceil(10 / 0.7)
    loose = erlang.agents_needed(ARRIVALS, INTERVAL_S, AHT_S, 0.5, THRESHOLD_S, max_occupancy=0.8)
    assert loose.agents == 13 and loose.occupancy <= 0.8  # 10 / 0.8 = 12.5 agents: 13
    whole = erlang.agents_needed(ARRIVALS, INTERVAL_S, AHT_S, 0.1, THRESHOLD_S, max_occupancy=0.5)
    assert whole.agents == 20  # 10 / 0.5 exactly: 20 agents, not 21
    quick = erlang.agents_needed(ARRIVALS, INTERVAL_S, AHT_S, 0.8, THRESHOLD_S, target_asa_s=5)
    assert quick.asa_s <= 5 < erlang.asa(10.0, quick.agents - 1, AHT_S)


@pytest.mark.parametrize(
    "call",
    [
        lambda: erlang.erlang_c(-1.0, 3),
        lambda: erlang.erlang_c(1.0, -1),
        lambda: erlang.erlang_c(math.nan, 3),
        lambda: erlang.erlang_b(1.0, 2.5),
        lambda: erlang.service_level(1.0, 3, 0, 20),
        lambda: erlang.service_level(1.0, 3, 180, -1),
        lambda: erlang.traffic_erlangs(10, 0, 180),
        lambda: erlang.agents_needed(10, 1800, 180, 1.0, 20),
        lambda: erlang.agents_needed(10, 1800, 180, 0.0, 20),
        lambda: erlang.agents_needed(10, 1800, 180, 0.8, 20, max_occupancy=1.5),
        lambda: erlang.agents_needed(10, 1800, 180, 0.8, 20, target_asa_s=0),
        lambda: erlang.agents_needed(10, 1800, 180, 0.8, 20, patience_s=0),
        lambda: erlang.estimated_patience_s(-1, 10.0),
    ],
)
def test_bad_input_is_refused(call):
    with pytest.raises(ValueError, match="must be"):
        call()


def test_patience_is_estimated_from_waits_and_abandonments():
    assert erlang.estimated_patience_s(4, 1000.0) == 250.0
    assert erlang.estimated_patience_s(0, 1000.0) is None


loads = st.floats(min_value=0.01, max_value=500.0, allow_nan=False)


@settings(max_examples=50, deadline=None)
@given(traffic=loads, spare=st.integers(min_value=1, max_value=60))
def test_more_agents_never_make_things_worse(traffic, spare):
    agents = math.floor(traffic) + spare
    fewer = erlang.predict(traffic, agents, AHT_S, THRESHOLD_S)
    more = erlang.predict(traffic, agents + 1, AHT_S, THRESHOLD_S)
    assert more.probability_wait <= fewer.probability_wait
    assert more.service_level >= fewer.service_level
    assert more.asa_s <= fewer.asa_s
    assert more.occupancy < fewer.occupancy
    assert 0.0 <= fewer.probability_wait <= 1.0 and 0.0 <= fewer.service_level <= 1.0


@settings(max_examples=50, deadline=None)
@given(traffic=loads, growth=st.floats(min_value=1.0, max_value=1.5), threshold=st.integers(0, 120))
def test_more_traffic_lowers_and_a_longer_threshold_raises_the_service_level(
    traffic, growth, threshold
):
    agents = math.floor(traffic * growth) + 1
    heavier = erlang.service_level(traffic * growth, agents, AHT_S, threshold)
    assert heavier <= erlang.service_level(traffic, agents, AHT_S, threshold)
    longer = erlang.service_level(traffic, agents, AHT_S, threshold + 10)
    assert longer >= erlang.service_level(traffic, agents, AHT_S, threshold)


@settings(max_examples=50, deadline=None)
@given(
    arrivals=st.floats(min_value=1.0, max_value=5000.0),
    target=st.floats(min_value=0.05, max_value=0.99),
    threshold=st.integers(0, 120),
)
def test_agents_needed_is_the_smallest_meeting_the_target(arrivals, target, threshold):
    needed = erlang.agents_needed(arrivals, INTERVAL_S, AHT_S, target, threshold)
    assert needed.service_level >= target
    below = erlang.service_level(needed.traffic_erlangs, needed.agents - 1, AHT_S, threshold)
    assert below < target
