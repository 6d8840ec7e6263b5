"""What the simulator saw (its ground truth), what the board says, and what Erlang predicts.

The board's figures are the day's counters per queue (`board.live`); the simulator reads a
snapshot before and after the run and compares the difference with its own tally, computed
with the board's definitions (`board.metrics`): offered = answered + abandoned, service
level = answered within the threshold / (offered - abandoned within the threshold), ASA =
mean wait of the answered.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from contact_center.board import erlang, metrics

COUNTS = ("answered", "answered_within", "abandoned", "abandoned_within", "wait_ms")
# Figures whose board value must equal the simulator's exactly.
EXACT = ("offered", "answered", "abandoned", "answered_within", "abandoned_within")


@dataclass
class Tally:
    """Counts in the board's terms, per queue name."""

    queues: dict[str, dict[str, int]] = field(default_factory=dict)

    def _row(self, queue: str) -> dict[str, int]:
        return self.queues.setdefault(queue, dict.fromkeys(COUNTS, 0))

    def answered(self, queue: str, wait_s: float, threshold_s: float) -> None:
        """A contact reached an agent after waiting `wait_s`."""
        row = self._row(queue)
        row["answered"] += 1
        row["answered_within"] += wait_s <= threshold_s
        row["wait_ms"] += round(wait_s * 1000)

    def abandoned(self, queue: str, wait_s: float, threshold_s: float) -> None:
        """A caller hung up while waiting."""
        row = self._row(queue)
        row["abandoned"] += 1
        row["abandoned_within"] += wait_s <= threshold_s

    def totals(self) -> dict[str, int]:
        """The counts summed over queues."""
        return {name: sum(row[name] for row in self.queues.values()) for name in COUNTS}


def board_counts(snapshot: dict[str, Any]) -> dict[str, dict[str, int]]:
    """Today's counts per queue name from a `board` snapshot."""
    return {
        queue["name"]: {name: int(queue["today"].get(name, 0)) for name in COUNTS}
        for queue in snapshot.get("queues", [])
    }


def board_difference(before: dict[str, Any], after: dict[str, Any]) -> dict[str, int]:
    """What the board counted between two snapshots, summed over queues."""
    start, end = board_counts(before), board_counts(after)
    zero = dict.fromkeys(COUNTS, 0)
    return {
        name: sum(row[name] - start.get(queue, zero)[name] for queue, row in end.items())
        for name in COUNTS
    }


def thresholds(snapshot: dict[str, Any]) -> dict[str, float]:
    """Each queue's service-level threshold (seconds) by name."""
    return {queue["name"]: float(queue["threshold_s"]) for queue in snapshot.get("queues", [])}


def figures(counts: dict[str, int]) -> dict[str, Any]:
    """Offered, answered, abandoned, SL and ASA from additive counts."""
    offered = counts["answered"] + counts["abandoned"]
    sl = metrics.service_level(counts["answered_within"], offered, counts["abandoned_within"])
    asa = metrics.average(counts["wait_ms"] / 1000, counts["answered"])
    return {
        "offered": offered,
        "answered": counts["answered"],
        "abandoned": counts["abandoned"],
        "answered_within": counts["answered_within"],
        "abandoned_within": counts["abandoned_within"],
        "service_level": None if sl is None else round(sl, 4),
        "asa_s": None if asa is None else round(asa, 2),
    }


def compare(truth: dict[str, Any], board: dict[str, Any]) -> dict[str, Any]:
    """Per figure: the board minus the truth. `max_error` is the largest over the counts
    (relative to the truth's count) and the service level (as a fraction). ASA is left out
    of it: the simulator times a wait from its request to its agent's acknowledgement, the
    board between the server's own moments, so they differ by round trips (`asa_s` shows
    by how much, in seconds)."""
    differences: dict[str, Any] = {}
    errors = []
    for name in (*EXACT, "service_level", "asa_s"):
        mine, theirs = truth.get(name), board.get(name)
        if mine is None or theirs is None:
            differences[name] = None if mine == theirs else "missing"
            if name != "asa_s":
                errors.append(0.0 if mine == theirs else 1.0)
            continue
        difference = theirs - mine
        differences[name] = round(difference, 4)
        if name == "service_level":
            errors.append(abs(difference))
        elif name != "asa_s":
            errors.append(abs(difference) / max(abs(mine), 1))
    return {"difference": differences, "max_error": round(max(errors, default=0.0), 4)}


def prediction(
    arrivals_per_s: float, agents: int, busy_s: float, threshold_s: float, patience_s: float
) -> dict[str, Any]:
    """Erlang A (and C) for the run's mean load: what queueing theory expects."""
    traffic = arrivals_per_s * busy_s
    result: dict[str, Any] = {"traffic_erlangs": round(traffic, 2), "agents": agents}
    for model, patience in (("erlang_a", patience_s), ("erlang_c", None)):
        try:
            expected = erlang.predict(traffic, agents, busy_s, threshold_s, patience)
        except (ValueError, OverflowError, ZeroDivisionError) as error:
            result[model] = {"error": str(error)}
            continue
        result[model] = {
            "service_level": round(expected.service_level, 4),
            "asa_s": None if expected.asa_s is None else round(expected.asa_s, 2),
            "abandon_rate": round(expected.probability_abandon, 4),
            "occupancy": None if expected.occupancy is None else round(expected.occupancy, 4),
            "stable": expected.stable,
        }
    return result


def render(lines: Iterable[tuple[str, Any, Any]]) -> str:
    """A three-column table: figure, simulator, board."""
    rows = [("figure", "simulator", "board"), *((n, _text(a), _text(b)) for n, a, b in lines)]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join(
        f"{row[0]:<{widths[0]}}  {row[1]:>{widths[1]}}  {row[2]:>{widths[2]}}" for row in rows
    )


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
