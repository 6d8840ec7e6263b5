"""Staffing maths: Erlang C (M/M/N) and Erlang A (M/M/N+M). Pure functions, no Flask.

Inputs are an offered load A in erlangs (arrival rate x mean handle time: 100 calls in
1,800 s with a 180 s AHT is 10 erlangs), a number of agents N, the mean handle time (AHT)
and the service-level threshold t in seconds; Erlang A adds the callers' mean patience.

Definitions (both models):
- probability_wait: an arriving call finds every agent busy.
- service_level: answered within t / (answered + abandoned after t), the board's formula
  (ARCHITECTURE.md, "Statistics"): a call abandoned within t counts for nothing. Without
  abandonment (Erlang C) it is P(wait <= t).
- answered_within: answered within t / all offered calls (abandoned ones included).
- asa_s: average speed of answer, the mean wait of the answered calls.
- mean_wait_s: the mean wait of every call, until answer or abandonment.
- occupancy: carried load / N, the share of time agents spend handling calls.

Erlang C, traffic A < N (the standard formulas, e.g. Gans, Koole & Mandelbaum 2003,
"Telephone call centers: tutorial, review and research prospects", section 4.1):
  C(N, A) = N B / (N - A (1 - B)), with Erlang B by the recursion
  B(0) = 1, B(k) = A B(k-1) / (k + A B(k-1)) (no factorials: stable at 10,000+ agents);
  P(W > t) = C exp(-(N - A) t / AHT); ASA = C AHT / (N - A); occupancy = A / N.
When A >= N the queue has no steady state (it grows without bound): probability_wait 1,
service_level 0, asa_s and mean_wait_s None, occupancy 1, stable False.

Erlang A, exponential patience with mean 1/theta, always stable (Garnett, Mandelbaum &
Reiman 2002, "Designing a call center with impatient customers", MSOM 4(3); the closed forms
of Mandelbaum & Zeltyn, "The Palm/Erlang-A queue, with applications to call centers", 2007).
With lambda the arrival rate, mu = 1/AHT, x = N mu / theta, a = lambda / theta, the lower
incomplete gamma function g(s, y) and S = x e^a a^-x g(x, a) (their A(x, y)):
  P(W > 0) = S B / (1 + (S - 1) B)                 B = Erlang B(N, lambda / mu)
  P(abandon | W > 0) = 1 - (x / a)(1 - 1 / S)      = 1/(rho S) + 1 - 1/rho, rho = a / x
  P(W > t) = pi_N x e^a a^-x g(x, a e^-theta t) e^-theta t
  P(answered, wait in (0, t]) = pi_N x e^a a^-(x+1) (g(x+1, a) - g(x+1, a e^-theta t))
  P(abandon) = P(W > 0) P(abandon | W > 0); mean wait = P(abandon) / theta
  occupancy = 1 - P(N or fewer in the system)(N - A (1 - B)) / N
where pi_N = B / (1 + (S - 1) B) is the probability of finding exactly N in the system.
ASA sums, over the queue length j an arrival finds, the chance x / (x + j + 1) it outlasts
the j callers ahead times its expected wait (1/theta) sum_{i=1..j+1} 1 / (x + i).
As the patience grows, Erlang A tends to Erlang C; tests/board check both models against a
brute-force solution of the birth-death chain.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MAX_AGENTS = 10_000  # agents_needed() never searches beyond this
_SERIES_EPS = 1e-17  # a term this small beside the sum no longer changes it
_FRACTION_EPS = 1e-15
_TINY = 1e-300
_MAX_ITERATIONS = 10_000_000  # far beyond what convergence needs; a guard, not a budget
_DIRECT_SUM = 100_000  # longer sums of logs and reciprocals go through lgamma and digamma


class StaffingLimitError(ValueError):
    """The target needs more agents than the search is allowed to consider."""


@dataclass(frozen=True)
class Prediction:
    """What N agents give for a load, by one model (see the module docstring)."""

    model: str  # "erlang_c" or "erlang_a"
    agents: int
    traffic_erlangs: float
    stable: bool
    probability_wait: float
    service_level: float
    answered_within: float
    asa_s: float | None
    probability_abandon: float
    mean_wait_s: float | None
    occupancy: float | None  # None with no agents


@dataclass(frozen=True)
class Staffing:
    """The agents staffed now against the agents needed for a target."""

    model: str
    traffic_erlangs: float
    target_label: str  # "80/20": per cent answered within the threshold in seconds
    needed: Prediction
    now: Prediction | None
    extra_agents: int | None  # needed - now: positive means short of agents
    advice: str  # "+3 agents needed for 80/20"


def traffic_erlangs(arrivals_per_interval: float, interval_s: float, aht_s: float) -> float:
    """Offered load in erlangs: arrivals per interval x AHT / interval length."""
    _check_non_negative(arrivals_per_interval=arrivals_per_interval)
    _check_positive(interval_s=interval_s, aht_s=aht_s)
    return arrivals_per_interval * aht_s / interval_s


def estimated_patience_s(abandoned_calls: int, total_wait_s: float) -> float | None:
    """Mean patience from observed waits: total time every caller waited / abandonments.

    The maximum-likelihood estimate for exponential patience, where an answered caller's
    wait is a censored patience (theta = P(abandon) / E[wait]; Brown et al. 2005,
    "Statistical analysis of a telephone call center", JASA 100). None without abandonment.
    """
    _check_non_negative(abandoned_calls=abandoned_calls, total_wait_s=total_wait_s)
    if abandoned_calls == 0:
        return None
    return total_wait_s / abandoned_calls


def erlang_b(traffic: float, agents: int) -> float:
    """Blocking probability of M/M/N/N (Erlang B), by the stable recursion in N."""
    _check_load(traffic, agents)
    blocking = 1.0
    for k in range(1, agents + 1):
        blocking = traffic * blocking / (k + traffic * blocking)
    return blocking


def erlang_c(traffic: float, agents: int) -> float:
    """Probability an arriving call waits in M/M/N (Erlang C); 1.0 when traffic >= agents."""
    _check_load(traffic, agents)
    if traffic == 0:
        return 0.0
    if traffic >= agents:
        return 1.0
    return _c_from_b(traffic, agents, erlang_b(traffic, agents))


def service_level(traffic: float, agents: int, aht_s: float, threshold_s: float) -> float:
    """Erlang C P(wait <= threshold): 0.0 when traffic >= agents, 1.0 with no traffic."""
    return _erlang_c_prediction(traffic, agents, aht_s, threshold_s).service_level


def asa(traffic: float, agents: int, aht_s: float) -> float | None:
    """Erlang C average speed of answer in seconds; None (unbounded) when traffic >= agents."""
    return _erlang_c_prediction(traffic, agents, aht_s, 0.0).asa_s


def occupancy(traffic: float, agents: int) -> float | None:
    """Erlang C occupancy A / N, capped at 1.0; None with no agents."""
    _check_load(traffic, agents)
    if agents == 0:
        return None
    return min(1.0, traffic / agents)


def erlang_a(
    traffic: float, agents: int, aht_s: float, patience_s: float, threshold_s: float
) -> Prediction:
    """Erlang A (M/M/N+M, mean patience `patience_s`) prediction for `agents` agents."""
    return _erlang_a_prediction(traffic, agents, aht_s, patience_s, threshold_s, with_asa=True)


def predict(
    traffic: float,
    agents: int,
    aht_s: float,
    threshold_s: float,
    patience_s: float | None = None,
) -> Prediction:
    """Erlang C prediction, or Erlang A when a mean patience is given."""
    if patience_s is None:
        return _erlang_c_prediction(traffic, agents, aht_s, threshold_s)
    return erlang_a(traffic, agents, aht_s, patience_s, threshold_s)


def agents_needed(
    arrivals_per_interval: float,
    interval_s: float,
    aht_s: float,
    target_sl: float,
    threshold_s: float,
    max_occupancy: float | None = None,
    target_asa_s: float | None = None,
    patience_s: float | None = None,
    max_agents: int = MAX_AGENTS,
) -> Prediction:
    """The smallest N meeting the service level (and optional ASA and occupancy caps).

    Erlang C, or Erlang A when `patience_s` is given. Raises StaffingLimitError when more
    than `max_agents` would be needed. No arrivals need no agents.
    """
    traffic = traffic_erlangs(arrivals_per_interval, interval_s, aht_s)
    _check_target(target_sl, threshold_s, max_occupancy, target_asa_s)
    if patience_s is not None:
        _check_positive(patience_s=patience_s)
    if traffic == 0:
        return predict(0.0, 0, aht_s, threshold_s, patience_s)
    if patience_s is None:
        return _erlang_c_needed(
            traffic, aht_s, target_sl, threshold_s, max_occupancy, target_asa_s, max_agents
        )
    return _erlang_a_needed(
        traffic, aht_s, patience_s, target_sl, threshold_s, max_occupancy, target_asa_s, max_agents
    )


def staffing(
    arrivals_per_interval: float,
    interval_s: float,
    aht_s: float,
    target_sl: float,
    threshold_s: float,
    agents_now: int | None = None,
    patience_s: float | None = None,
    max_occupancy: float | None = None,
    target_asa_s: float | None = None,
    max_agents: int = MAX_AGENTS,
) -> Staffing:
    """Staffing advice: the agents needed for the target, and what the agents now give."""
    needed = agents_needed(
        arrivals_per_interval,
        interval_s,
        aht_s,
        target_sl,
        threshold_s,
        max_occupancy=max_occupancy,
        target_asa_s=target_asa_s,
        patience_s=patience_s,
        max_agents=max_agents,
    )
    label = target_label(target_sl, threshold_s)
    now = None
    extra = None
    if agents_now is None:
        advice = f"{_agents(needed.agents)} needed for {label}"
    else:
        now = predict(needed.traffic_erlangs, agents_now, aht_s, threshold_s, patience_s)
        extra = needed.agents - agents_now
        if extra > 0:
            advice = f"+{_agents(extra)} needed for {label}"
        elif extra == 0:
            advice = f"On target for {label}"
        else:
            advice = f"{_agents(-extra)} more than {label} needs"
    return Staffing(
        model=needed.model,
        traffic_erlangs=needed.traffic_erlangs,
        target_label=label,
        needed=needed,
        now=now,
        extra_agents=extra,
        advice=advice,
    )


def target_label(target_sl: float, threshold_s: float) -> str:
    """The usual name of a target: 0.8 within 20 s is "80/20"."""
    return f"{target_sl * 100:g}/{threshold_s:g}"


def _agents(count: int) -> str:
    return f"{count} agent" if count == 1 else f"{count} agents"


# Erlang C


def _c_from_b(traffic: float, agents: int, blocking: float) -> float:
    return agents * blocking / (agents - traffic * (1.0 - blocking))


def _erlang_c_prediction(
    traffic: float,
    agents: int,
    aht_s: float,
    threshold_s: float,
    blocking: float | None = None,
) -> Prediction:
    _check_load(traffic, agents)
    _check_positive(aht_s=aht_s)
    _check_non_negative(threshold_s=threshold_s)
    if traffic == 0:
        return _idle("erlang_c", agents)
    if traffic >= agents:
        return Prediction(
            model="erlang_c",
            agents=agents,
            traffic_erlangs=float(traffic),
            stable=False,
            probability_wait=1.0,
            service_level=0.0,
            answered_within=0.0,
            asa_s=None,
            probability_abandon=0.0,
            mean_wait_s=None,
            occupancy=1.0 if agents else None,
        )
    if blocking is None:
        blocking = erlang_b(traffic, agents)
    wait = _c_from_b(traffic, agents, blocking)
    spare = agents - traffic
    level = 1.0 - wait * math.exp(-spare * threshold_s / aht_s)
    mean_wait = wait * aht_s / spare
    return Prediction(
        model="erlang_c",
        agents=agents,
        traffic_erlangs=float(traffic),
        stable=True,
        probability_wait=wait,
        service_level=level,
        answered_within=level,
        asa_s=mean_wait,
        probability_abandon=0.0,
        mean_wait_s=mean_wait,
        occupancy=traffic / agents,
    )


def _erlang_c_needed(
    traffic: float,
    aht_s: float,
    target_sl: float,
    threshold_s: float,
    max_occupancy: float | None,
    target_asa_s: float | None,
    max_agents: int,
) -> Prediction:
    # Erlang C needs N > A, and N >= A / max_occupancy; above that, step N by one with the
    # Erlang B recursion (one multiplication per step, whatever N).
    start = math.floor(traffic) + 1
    if max_occupancy is not None:
        start = max(start, math.ceil(traffic / max_occupancy))
        while start - 1 > traffic and traffic / (start - 1) <= max_occupancy:
            start -= 1  # ceil() of a ratio that is an integer but for rounding
    if start > max_agents:
        raise _limit(max_agents)
    blocking = erlang_b(traffic, start)
    agents = start
    while True:
        prediction = _erlang_c_prediction(traffic, agents, aht_s, threshold_s, blocking)
        if _meets(prediction, target_sl, max_occupancy, target_asa_s):
            return prediction
        agents += 1
        if agents > max_agents:
            raise _limit(max_agents)
        blocking = traffic * blocking / (agents + traffic * blocking)


# Erlang A


def _erlang_a_prediction(
    traffic: float,
    agents: int,
    aht_s: float,
    patience_s: float,
    threshold_s: float,
    *,
    with_asa: bool,
) -> Prediction:
    _check_load(traffic, agents)
    _check_positive(aht_s=aht_s, patience_s=patience_s)
    _check_non_negative(threshold_s=threshold_s)
    if traffic == 0:
        return _idle("erlang_a", agents)
    theta = 1.0 / patience_s
    if agents == 0:  # nobody answers: every caller waits until they give up
        return Prediction(
            model="erlang_a",
            agents=0,
            traffic_erlangs=float(traffic),
            stable=True,
            probability_wait=1.0,
            service_level=0.0,
            answered_within=0.0,
            asa_s=None,
            probability_abandon=1.0,
            mean_wait_s=patience_s,
            occupancy=None,
        )
    a = traffic * patience_s / aht_s  # lambda / theta
    x = agents * patience_s / aht_s  # N mu / theta
    log_a, log_x = math.log(a), math.log(x)
    blocking = erlang_b(traffic, agents)
    # Weights relative to pi_N: states below N sum to 1/B - 1, states N+j (j >= 0) to S.
    log_below = math.log1p(-blocking) - math.log(blocking) if blocking > 0 else math.inf
    log_s = log_x + _log_scaled_lower_gamma(x, a, 0.0)
    log_z = _logaddexp(log_below, log_s)  # 1 / pi_N
    wait = math.exp(log_s - log_z)
    if blocking > 0:
        below, at_agents = math.exp(log_below - log_z), math.exp(-log_z)  # P(< N), P(= N)
    else:  # N so far above the load that a full house has no probability to speak of
        below, at_agents = 1.0, 0.0
    # Answered after waiting, and answered after waiting longer than t (the same formula).
    log_u = -theta * threshold_s
    answered_waiting = math.exp(log_x + _log_scaled_lower_gamma(x + 1, a, 0.0) - log_z)
    answered_late = math.exp(log_x + _log_scaled_lower_gamma(x + 1, a, log_u) - log_z)
    waiting_longer = math.exp(log_u + log_x + _log_scaled_lower_gamma(x, a, log_u) - log_z)
    abandon = min(1.0, max(0.0, wait - answered_waiting))
    answered_within = min(1.0, max(0.0, below + answered_waiting - answered_late))
    # Idle agents: with N or fewer in the system the states are Erlang B's, whose mean
    # number busy is A (1 - B), so E[idle] = P(<= N) (N - A (1 - B)).
    idle = (below + at_agents) * (agents - traffic + traffic * blocking)
    level = answered_within / (answered_within + waiting_longer)
    asa_s = None
    if with_asa:
        answered = 1.0 - abandon
        log_answered_wait = log_x - log_a + math.log(patience_s) + _log_answered_wait_sum(a, x)
        asa_s = math.exp(log_answered_wait - log_z) / answered if answered > 0 else None
    return Prediction(
        model="erlang_a",
        agents=agents,
        traffic_erlangs=float(traffic),
        stable=True,
        probability_wait=wait,
        service_level=level,
        answered_within=answered_within,
        asa_s=asa_s,
        probability_abandon=abandon,
        mean_wait_s=abandon * patience_s,
        occupancy=min(1.0, max(0.0, 1.0 - idle / agents)),
    )


def _erlang_a_needed(
    traffic: float,
    aht_s: float,
    patience_s: float,
    target_sl: float,
    threshold_s: float,
    max_occupancy: float | None,
    target_asa_s: float | None,
    max_agents: int,
) -> Prediction:
    # Service level and answered calls grow with N, ASA and occupancy fall (tested), so
    # the smallest N is found by doubling then bisecting: O(log N) evaluations.
    def evaluate(agents: int) -> Prediction:
        return _erlang_a_prediction(
            traffic, agents, aht_s, patience_s, threshold_s, with_asa=target_asa_s is not None
        )

    failed, agents = 0, 1
    while True:
        prediction = evaluate(agents)
        if _meets(prediction, target_sl, max_occupancy, target_asa_s):
            break
        if agents >= max_agents:
            raise _limit(max_agents)
        failed, agents = agents, min(agents * 2, max_agents)
    while agents - failed > 1:
        middle = (failed + agents) // 2
        candidate = evaluate(middle)
        if _meets(candidate, target_sl, max_occupancy, target_asa_s):
            agents, prediction = middle, candidate
        else:
            failed = middle
    if target_asa_s is None:
        prediction = erlang_a(traffic, agents, aht_s, patience_s, threshold_s)
    return prediction


def _log_scaled_lower_gamma(s: float, a: float, log_u: float) -> float:
    """log(e^a a^-s g(s, a u)) for u = e^log_u <= 1, g the lower incomplete gamma function.

    Series (Abramowitz & Stegun 6.5.29) below y = s + 1, else the continued fraction for the
    upper function (Numerical Recipes 6.2, modified Lentz) subtracted from Gamma(s). In the
    series branch the large terms a and s log a cancel exactly, so no precision is lost.
    """
    if log_u == -math.inf:
        return -math.inf
    y = a * math.exp(log_u)
    if y <= 0.0:
        return -math.inf
    if y < s + 1.0:
        term = total = 1.0 / s
        k = 0
        while term > total * _SERIES_EPS:
            k += 1
            if k > _MAX_ITERATIONS:
                raise ArithmeticError("incomplete gamma series did not converge")
            term *= y / (s + k)
            total += term
        # g(s, y) = y^s e^-y total, so e^a a^-s g = u^s e^(a - y) total.
        return s * log_u - a * math.expm1(log_u) + math.log(total)
    log_gamma = math.lgamma(s)
    log_upper = _log_upper_gamma_fraction(s, y)
    log_lower = log_gamma + math.log1p(-math.exp(log_upper - log_gamma))
    return a - s * math.log(a) + log_lower


def _log_upper_gamma_fraction(s: float, y: float) -> float:
    """log of the upper incomplete gamma function G(s, y) for y >= s + 1, by continued fraction."""
    b = y + 1.0 - s
    c = 1.0 / _TINY
    d = 1.0 / b
    h = d
    i = 0
    while True:
        i += 1
        if i > _MAX_ITERATIONS:
            raise ArithmeticError("incomplete gamma continued fraction did not converge")
        an = -i * (i - s)
        b += 2.0
        d = an * d + b
        if abs(d) < _TINY:
            d = _TINY
        c = b + an / c
        if abs(c) < _TINY:
            c = _TINY
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _FRACTION_EPS:
            return -y + s * math.log(y) + math.log(h)


def _log_answered_wait_sum(a: float, x: float) -> float:
    """log sum_{k>=1} t_k H(k), t_k = a^k Gamma(x+1) / Gamma(x+1+k), H(k) = sum_{i<=k} 1/(x+i).

    (x / a) t_k is pi_(N+k-1) / pi_N times x / (x + k), the chance that a caller who finds
    k - 1 queued is answered; the sum is theta (a / x) E[wait; answered] / pi_N. Summed
    outwards from the largest term, so only the terms that matter are visited.
    """
    peak = max(1, math.floor(a - x))  # t_k grows while k <= a - x
    log_a = math.log(a)
    if peak <= _DIRECT_SUM:  # exact where lgamma(x) would lose digits to its size
        log_peak = math.fsum(log_a - math.log(x + k) for k in range(1, peak + 1))
    else:
        log_peak = peak * log_a + math.lgamma(x + 1.0) - math.lgamma(x + 1.0 + peak)
    harmonic_peak = _harmonic(x, peak)
    total = harmonic_peak
    weight, harmonic, k = 1.0, harmonic_peak, peak
    while True:  # above the peak the weights fall
        k += 1
        weight *= a / (x + k)
        harmonic += 1.0 / (x + k)
        total += weight * harmonic
        if weight * harmonic <= total * _SERIES_EPS:
            break
        if k - peak > _MAX_ITERATIONS:
            raise ArithmeticError("answered-wait series did not converge")
    weight, harmonic, k = 1.0, harmonic_peak, peak
    while k > 1:  # below the peak too
        weight *= (x + k) / a
        harmonic -= 1.0 / (x + k)
        k -= 1
        total += weight * harmonic
        if weight * harmonic <= total * _SERIES_EPS:
            break
    return log_peak + math.log(total)


def _harmonic(x: float, k: int) -> float:
    """sum_{i=1..k} 1 / (x + i): directly, or psi(x + k + 1) - psi(x + 1) for long sums."""
    if k <= _DIRECT_SUM:
        return math.fsum(1.0 / (x + i) for i in range(1, k + 1))
    return _digamma(x + k + 1.0) - _digamma(x + 1.0)


def _digamma(v: float) -> float:
    """The digamma function for v > 0: recurrence up to 6, then the asymptotic series."""
    result = 0.0
    while v < 6.0:
        result -= 1.0 / v
        v += 1.0
    f = 1.0 / (v * v)
    series = f * (1 / 12 - f * (1 / 120 - f * (1 / 252 - f * (1 / 240 - f / 132))))
    return result + math.log(v) - 0.5 / v - series


def _logaddexp(p: float, q: float) -> float:
    if p == math.inf or q == math.inf:
        return math.inf
    high, low = max(p, q), min(p, q)
    return high + math.log1p(math.exp(low - high))


# Shared


def _idle(model: str, agents: int) -> Prediction:
    """No traffic: nobody waits."""
    return Prediction(
        model=model,
        agents=agents,
        traffic_erlangs=0.0,
        stable=True,
        probability_wait=0.0,
        service_level=1.0,
        answered_within=1.0,
        asa_s=0.0,
        probability_abandon=0.0,
        mean_wait_s=0.0,
        occupancy=0.0 if agents else None,
    )


def _meets(
    prediction: Prediction,
    target_sl: float,
    max_occupancy: float | None,
    target_asa_s: float | None,
) -> bool:
    if prediction.service_level < target_sl:
        return False
    if max_occupancy is not None and (
        prediction.occupancy is None or prediction.occupancy > max_occupancy
    ):
        return False
    if target_asa_s is not None and (prediction.asa_s is None or prediction.asa_s > target_asa_s):
        return False
    return True


def _limit(max_agents: int) -> StaffingLimitError:
    return StaffingLimitError(f"The target needs more than {max_agents} agents.")


def _check_load(traffic: float, agents: int) -> None:
    _check_non_negative(traffic=traffic)
    if isinstance(agents, bool) or not isinstance(agents, int) or agents < 0:
        raise ValueError("agents must be a whole number, 0 or more.")


def _check_target(
    target_sl: float,
    threshold_s: float,
    max_occupancy: float | None,
    target_asa_s: float | None,
) -> None:
    if not 0.0 < target_sl < 1.0:
        raise ValueError("target_sl must be between 0 and 1 (exclusive).")
    _check_non_negative(threshold_s=threshold_s)
    if max_occupancy is not None and not 0.0 < max_occupancy <= 1.0:
        raise ValueError("max_occupancy must be in (0, 1].")
    if target_asa_s is not None:
        _check_positive(target_asa_s=target_asa_s)


def _check_non_negative(**values: float) -> None:
    for name, value in values.items():
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be a finite number, 0 or more.")


def _check_positive(**values: float) -> None:
    for name, value in values.items():
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"{name} must be a finite number above 0.")
