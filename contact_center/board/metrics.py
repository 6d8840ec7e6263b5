"""Contact-centre metrics: the formulas the reports (and the live board) share.

Pure functions of counts and sums, so every figure on a page can be checked by hand.
Each returns None when its denominator is zero (nothing to measure), never 0 or 100 %.

The definitions, as the reports page shows them (`DEFINITIONS`):
- offered: interactions that reached a queue and finished waiting in the period
  (answered + abandoned; still waiting, or left for a callback or voicemail, not counted).
- answered: accepted by an agent (answered_at set, after the last time it was queued).
- abandoned: the caller hung up while queued or being offered (outcome "abandoned").
- service level = answered within the queue's threshold
  / (offered - abandoned within the threshold).
- ASA (average speed of answer) = mean(answered_at - enqueued_at) over answered.
- AHT (average handle time) = mean(talk (duration_s) + wrap-up) over handled
  (answered and ended; wrap-up = wrapup_until - ended_at).
- abandon rate = abandoned / offered.
- occupancy = busy time / staffed time.
"""

from __future__ import annotations

from typing import Any

DEFAULT_SL_THRESHOLD_S = 20

DEFINITIONS = {
    "offered": (
        "Interactions that reached a queue and finished waiting in the period: answered + "
        "abandoned. Still waiting, or left the queue for a callback or voicemail: not counted."
    ),
    "answered": "Accepted by an agent (answered_at set).",
    "abandoned": "The caller hung up while queued or being offered (outcome 'abandoned').",
    "service_level": (
        "Answered within the queue's threshold / (offered - abandoned within the threshold). "
        "Abandons within the threshold are left out; abandons after it count against."
    ),
    "asa_s": "Average speed of answer: mean(answered_at - enqueued_at) over answered, seconds.",
    "aht_s": (
        "Average handle time: mean(talk (duration_s) + wrap-up (wrapup_until - ended_at)) over "
        "handled (answered and ended), seconds."
    ),
    "abandon_rate": "Abandoned / offered.",
    "transfers": "Calls an agent handed on (blind or warm transfer), from the queue they were in.",
    "csat": "Mean post-call satisfaction (1-5) and how many rated.",
    "period": (
        "An interaction counts once, in the queue and with the agent it was last with, in the "
        "interval its wait ended (answered_at, or ended_at for an abandon)."
    ),
}


def sl_threshold_s(queue: Any) -> int:
    """A queue's service-level threshold in seconds: `sl_threshold_s` where the model has it,
    else `service_level_threshold_s`, else 20 s. The one place that decides."""
    for name in ("sl_threshold_s", "service_level_threshold_s"):
        value = getattr(queue, name, None)
        if value is not None:
            return int(value)
    return DEFAULT_SL_THRESHOLD_S


def ratio(numerator: float, denominator: float) -> float | None:
    """numerator / denominator, or None when the denominator is zero."""
    if not denominator:
        return None
    return numerator / denominator


def average(total: float, count: int) -> float | None:
    """total / count: a mean from a sum and a count (None when nothing was counted)."""
    return ratio(total, count)


def service_level(answered_within: int, offered: int, abandoned_within: int) -> float | None:
    """Answered within the threshold / (offered - abandoned within the threshold), 0..1."""
    return ratio(answered_within, offered - abandoned_within)


def abandon_rate(abandoned: int, offered: int) -> float | None:
    """Abandoned / offered, 0..1."""
    return ratio(abandoned, offered)


def occupancy(busy_s: float, staffed_s: float) -> float | None:
    """Time busy (talking, holding, wrapping up) / time staffed (signed in, not away), 0..1."""
    return ratio(busy_s, staffed_s)


def summarise(counts: dict[str, Any]) -> dict[str, Any]:
    """The figures of a report row from its additive counts and sums (`reports.COUNTS`):
    offered, abandon rate, service level, ASA, AHT and CSAT."""
    offered = counts["answered"] + counts["abandoned"]
    return {
        "offered": offered,
        "service_level": _round(
            service_level(counts["answered_within"], offered, counts["abandoned_within"]), 4
        ),
        "asa_s": _round(average(counts["wait_ms"] / 1000, counts["answered"]), 1),
        "aht_s": _round(average(counts["handle_ms"] / 1000, counts["handled"]), 1),
        "abandon_rate": _round(abandon_rate(counts["abandoned"], offered), 4),
        "csat": _round(average(counts["csat_sum"], counts["csat_count"]), 2),
    }


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)
