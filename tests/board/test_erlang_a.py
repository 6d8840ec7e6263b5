"""Erlang A (M/M/N+M) against a brute-force solution of its birth-death chain, and limits.

The brute force shares nothing with the closed forms (incomplete gamma functions) in
contact_center/board/erlang.py: it solves the chain truncated at a long queue, then follows
one caller through the queue (first-step analysis for the answered share and its wait,
uniformisation for the waits within the threshold).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contact_center.board import erlang


@dataclass
class Chain:
    probability_wait: float
    probability_abandon: float
    abandon_by_little: float
    service_level: float
    answered_within: float
    asa_s: float
    mean_wait_s: float
    occupancy: float


def brute_force(
    traffic: float, agents: int, aht_s: float, patience_s: float, threshold_s: float
) -> Chain:
    """Solve M/M/N+M numerically, the queue truncated where its probability is negligible."""
    lam, mu, theta = traffic / aht_s, 1.0 / aht_s, 1.0 / patience_s
    queue_limit = 600
    weights = [1.0]
    for k in range(1, agents + queue_limit + 1):
        weights.append(weights[-1] * lam / (min(k, agents) * mu + max(k - agents, 0) * theta))
    total = math.fsum(weights)
    states = [w / total for w in weights]
    assert states[-1] < 1e-30, "truncated too early"
    queued = states[agents:]  # an arrival finding j callers queued (PASTA)
    # A caller with i callers ahead: the queue ahead shrinks at rate N mu + i theta (at i = 0
    # a service takes this caller); the caller gives up at rate theta.
    down = [agents * mu + i * theta for i in range(queue_limit + 1)]
    rate = [d + theta for d in down]
    answered, answered_wait = [], []  # P(answered), E[wait; answered] from i ahead
    previous_p, previous_m = 1.0, 0.0
    for i in range(queue_limit + 1):
        p = down[i] / rate[i] * previous_p
        m = p / rate[i] + down[i] / rate[i] * previous_m
        answered.append(p)
        answered_wait.append(m)
        previous_p, previous_m = p, m
    served_by_t, abandoned_by_t = _uniformised(down, rate, theta, threshold_s)
    wait = math.fsum(queued)
    abandon = math.fsum(q * (1 - p) for q, p in zip(queued, answered, strict=True))
    mean_queue = math.fsum(j * q for j, q in enumerate(queued))
    within = 1.0 - wait + math.fsum(q * f for q, f in zip(queued, served_by_t, strict=True))
    longer = math.fsum(
        q * (1 - f - g) for q, f, g in zip(queued, served_by_t, abandoned_by_t, strict=True)
    )
    waited = math.fsum(q * m for q, m in zip(queued, answered_wait, strict=True))
    busy = math.fsum(min(k, agents) * s for k, s in enumerate(states))
    return Chain(
        probability_wait=wait,
        probability_abandon=abandon,
        abandon_by_little=theta * mean_queue / lam,
        service_level=within / (within + longer),
        answered_within=within,
        asa_s=waited / (1 - abandon),
        mean_wait_s=mean_queue / lam,
        occupancy=busy / agents,
    )


def _uniformised(
    down: list[float], rate: list[float], theta: float, t: float
) -> tuple[list[float], list[float]]:
    """P(answered by t), P(abandoned by t) from each number ahead, by uniformisation."""
    size = len(down)
    fastest = max(rate)
    served, gone = [0.0] * size, [0.0] * size  # after m uniformised steps
    served_t, gone_t = [0.0] * size, [0.0] * size
    weight, m = math.exp(-fastest * t), 0  # Poisson(fastest t) probability of m steps
    while m <= fastest * t or weight > 1e-20:
        for i in range(size):
            served_t[i] += weight * served[i]
            gone_t[i] += weight * gone[i]
        m += 1
        weight *= fastest * t / m
        served = [
            down[i] / fastest * (served[i - 1] if i else 1.0) + (1 - rate[i] / fastest) * served[i]
            for i in range(size)
        ]
        gone = [
            down[i] / fastest * (gone[i - 1] if i else 0.0)
            + (1 - rate[i] / fastest) * gone[i]
            + theta / fastest
            for i in range(size)
        ]
    return served_t, gone_t


CASES = [
    # traffic, agents, AHT s, patience s, threshold s
    (10.0, 14, 180.0, 120.0, 20.0),  # the Erlang C worked example's load, impatient callers
    (10.0, 12, 180.0, 600.0, 20.0),
    (10.0, 8, 180.0, 60.0, 20.0),  # overloaded: only abandonment keeps it stable
    (48.0, 55, 240.0, 300.0, 15.0),
    (25.0, 20, 200.0, 90.0, 30.0),
    (2.0, 1, 300.0, 30.0, 10.0),
    (0.5, 3, 60.0, 600.0, 30.0),
    (10.0, 12, 180.0, 180.0, 0.0),  # patience = AHT, threshold 0
]


@pytest.mark.parametrize(("traffic", "agents", "aht_s", "patience_s", "threshold_s"), CASES)
def test_closed_forms_match_the_brute_force_chain(traffic, agents, aht_s, patience_s, threshold_s):
    exact = brute_force(traffic, agents, aht_s, patience_s, threshold_s)
    got = erlang.erlang_a(traffic, agents, aht_s, patience_s, threshold_s)
    close = {"rel": 1e-9, "abs": 1e-12}
    assert exact.probability_abandon == pytest.approx(exact.abandon_by_little, **close)
    assert got.probability_wait == pytest.approx(exact.probability_wait, **close)
    assert got.probability_abandon == pytest.approx(exact.probability_abandon, **close)
    assert got.service_level == pytest.approx(exact.service_level, **close)
    assert got.answered_within == pytest.approx(exact.answered_within, **close)
    assert got.asa_s == pytest.approx(exact.asa_s, **close)
    assert got.mean_wait_s == pytest.approx(exact.mean_wait_s, **close)
    assert got.occupancy == pytest.approx(exact.occupancy, **close)
    assert got.stable and got.model == "erlang_a"


def test_patience_equal_to_handle_time_is_an_infinite_server_queue():
    # With theta = mu every call in the system leaves at rate mu, waiting or not: the number
    # in the system is Poisson(A) (Mandelbaum & Zeltyn's M/M/N+M notes), so
    # P(wait) = P(Poisson(A) >= N) and P(abandon) = E[(N_sys - N)+] / A.
    traffic, agents = 10.0, 12
    poisson = [math.exp(-traffic + k * math.log(traffic) - math.lgamma(k + 1)) for k in range(200)]
    got = erlang.erlang_a(traffic, agents, 180.0, 180.0, 20.0)
    assert got.probability_wait == pytest.approx(math.fsum(poisson[agents:]), rel=1e-12)
    excess = math.fsum((k - agents) * p for k, p in enumerate(poisson) if k > agents)
    assert got.probability_abandon == pytest.approx(excess / traffic, rel=1e-11)


@pytest.mark.parametrize(("traffic", "agents"), [(10.0, 14), (10.0, 11), (48.0, 55), (0.3, 1)])
def test_endless_patience_is_erlang_c(traffic, agents):
    # Abandonment moves the figures in proportion to 1 / patience: at 10^12 s, by ~10^-9.
    patient = erlang.erlang_a(traffic, agents, 180.0, 1e12, 20.0)
    queue = erlang.predict(traffic, agents, 180.0, 20.0)
    for name in ("probability_wait", "service_level", "answered_within", "asa_s", "occupancy"):
        assert getattr(patient, name) == pytest.approx(getattr(queue, name), rel=1e-8), name
    assert patient.probability_abandon < 1e-9


def test_impatience_shortens_the_wait_of_those_answered():
    waits = [erlang.erlang_a(10.0, 12, 180.0, p, 20.0).asa_s for p in (30, 120, 600, 3600)]
    assert waits == sorted(waits)
    assert waits[-1] < erlang.asa(10.0, 12, 180.0)


def test_overload_stays_finite_with_abandonment():
    got = erlang.erlang_a(30.0, 10, 180.0, 120.0, 20.0)
    assert got.stable and got.asa_s is not None and got.asa_s > 0
    assert got.mean_wait_s < 120  # callers wait until answered or out of patience
    assert got.probability_abandon == pytest.approx(1 - got.occupancy * 10 / 30, rel=1e-9)
    assert got.probability_abandon > 0.6  # two thirds of the calls cannot be carried


def test_no_agents_means_everyone_abandons():
    got = erlang.erlang_a(5.0, 0, 180.0, 90.0, 20.0)
    assert (got.probability_wait, got.probability_abandon, got.service_level) == (1.0, 1.0, 0.0)
    assert got.asa_s is None and got.occupancy is None and got.mean_wait_s == 90.0
    idle = erlang.erlang_a(0.0, 3, 180.0, 90.0, 20.0)
    assert (idle.probability_wait, idle.service_level, idle.asa_s) == (0.0, 1.0, 0.0)


def test_large_systems_stay_finite():
    for traffic, agents, patience in [(5000.0, 5050, 120.0), (5000.0, 4000, 60.0), (1.0, 3000, 60)]:
        got = erlang.erlang_a(traffic, agents, 180.0, patience, 20.0)
        values = [got.probability_wait, got.probability_abandon, got.service_level, got.asa_s]
        assert all(math.isfinite(v) and v >= 0 for v in values)
        assert 0 <= got.probability_wait <= 1 and 0 <= got.service_level <= 1


def test_agents_needed_with_abandonment():
    needed = erlang.agents_needed(100, 1800, 180, 0.8, 20, patience_s=120)
    assert needed.model == "erlang_a" and needed.service_level >= 0.8
    below = erlang.erlang_a(10.0, needed.agents - 1, 180, 120, 20)
    assert below.service_level < 0.8
    # Callers who give up within the threshold do not count against the board's service
    # level, so impatient callers need no more agents than Erlang C's 14.
    assert needed.agents <= 14
    assert needed.asa_s is not None  # computed for the answer even without an ASA target
    quick = erlang.agents_needed(100, 1800, 180, 0.8, 20, patience_s=120, target_asa_s=2)
    assert quick.asa_s <= 2 < erlang.erlang_a(10.0, quick.agents - 1, 180, 120, 20).asa_s
    calm = erlang.agents_needed(100, 1800, 180, 0.8, 20, patience_s=120, max_occupancy=0.6)
    assert calm.occupancy <= 0.6 < erlang.erlang_a(10.0, calm.agents - 1, 180, 120, 20).occupancy
    advice = erlang.staffing(100, 1800, 180, 0.8, 20, agents_now=9, patience_s=120)
    assert advice.model == "erlang_a" and advice.now.agents == 9
    assert advice.advice == f"+{needed.agents - 9} agents needed for 80/20"


def test_the_erlang_a_search_is_bounded():
    with pytest.raises(erlang.StaffingLimitError):
        erlang.agents_needed(1e6, 1800, 180, 0.99, 0, patience_s=3600, max_agents=500)


@settings(max_examples=50, deadline=None)
@given(
    traffic=st.floats(min_value=0.05, max_value=150.0),
    agents=st.integers(min_value=1, max_value=200),
    patience=st.floats(min_value=5.0, max_value=3600.0),
    threshold=st.integers(min_value=0, max_value=120),
)
def test_one_more_agent_never_makes_things_worse(traffic, agents, patience, threshold):
    fewer = erlang.erlang_a(traffic, agents, 180.0, patience, threshold)
    more = erlang.erlang_a(traffic, agents + 1, 180.0, patience, threshold)
    slack = 1e-12
    assert more.service_level >= fewer.service_level - slack
    assert more.answered_within >= fewer.answered_within - slack
    assert more.probability_wait <= fewer.probability_wait + slack
    assert more.probability_abandon <= fewer.probability_abandon + slack
    assert more.asa_s <= fewer.asa_s * (1 + 1e-9) + slack
    assert more.occupancy <= fewer.occupancy + slack
    for value in (fewer.probability_wait, fewer.probability_abandon, fewer.service_level):
        assert 0.0 <= value <= 1.0


@settings(max_examples=50, deadline=None)
@given(
    traffic=st.floats(min_value=0.05, max_value=150.0),
    agents=st.integers(min_value=1, max_value=200),
    patience=st.floats(min_value=5.0, max_value=3600.0),
)
def test_abandonment_never_lowers_the_service_level_below_erlang_c(traffic, agents, patience):
    impatient = erlang.erlang_a(traffic, agents, 180.0, patience, 20.0)
    queue = erlang.predict(traffic, agents, 180.0, 20.0)
    assert impatient.service_level >= queue.service_level - 1e-12
    assert impatient.probability_wait <= queue.probability_wait + 1e-12
