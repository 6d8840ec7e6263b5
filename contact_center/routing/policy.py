"""Routing policy in plain Python: who qualifies, in which pool, with which score.

No Redis and no database here: the services feed in facts and get decisions back, so the
rules are easy to test and the same everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

# Seconds of queue credit: a tier-A customer is placed as if they had called 2 minutes earlier.
TIER_CREDIT_S = {"A": 120.0, "B": 30.0, "C": 0.0}
PRIORITY_CREDIT_S = 30.0  # per priority point (0-10)
MAX_PRIORITY = 10
COMPLAINT_CREDIT_S = 60.0
DEFAULT_HANDLE_TIME_S = 180.0
LOAD_WEIGHT = 1e10  # least-occupied: load dominates, idle-since breaks ties


@dataclass(frozen=True)
class Requirement:
    """What an agent needs for one overflow tier: minimum skill levels and allowed teams."""

    skills: tuple[tuple[str, int], ...]
    teams: tuple[str, ...] | None  # None = any team

    def admits(self, levels: dict[str, int], team: str | None) -> bool:
        """True when an agent with these skill levels and team qualifies."""
        if self.teams is not None and team not in self.teams:
            return False
        return all(levels.get(skill, 0) >= level for skill, level in self.skills)

    def describe(self) -> dict[str, Any]:
        return {"skills": dict(self.skills), "teams": list(self.teams) if self.teams else None}


def merge_skills(*requirements: dict[str, int]) -> dict[str, int]:
    """Combine skill requirements, keeping the highest minimum level of each skill."""
    merged: dict[str, int] = {}
    for requirement in requirements:
        for skill, level in (requirement or {}).items():
            merged[skill] = max(merged.get(skill, 0), int(level))
    return merged


def signature(extra_skills: dict[str, int]) -> str:
    """A stable name for an interaction's own skill needs beyond its queue's ('' = none)."""
    return ",".join(f"{skill}={level}" for skill, level in sorted(extra_skills.items()))


def parse_signature(sig: str) -> dict[str, int]:
    if not sig:
        return {}
    return {skill: int(level) for skill, level in (part.split("=") for part in sig.split(","))}


def relaxing_steps(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The overflow steps that widen who qualifies (as opposed to moving queue)."""
    return [step for step in steps if "relax" in step or "add_teams" in step]


def tiers(
    queue_skills: dict[str, int],
    queue_teams: list[str],
    steps: list[dict[str, Any]],
    extra_skills: dict[str, int] | None = None,
) -> list[Requirement]:
    """Requirements per tier: tier 0 is the strict one, each relaxing step adds a wider tier."""
    skills = merge_skills(queue_skills, extra_skills or {})
    teams: set[str] | None = set(queue_teams) if queue_teams else None
    result = [_requirement(skills, teams)]
    for step in relaxing_steps(sorted(steps, key=lambda s: s.get("after_s", 0))):
        skills = dict(skills)
        for skill, level in (step.get("relax") or {}).items():
            if skill in skills:
                if int(level) <= 0:
                    del skills[skill]
                else:
                    skills[skill] = min(skills[skill], int(level))
        if step.get("add_teams") and teams is not None:
            teams = teams | set(step["add_teams"])
        result.append(_requirement(skills, teams))
    return result


def _requirement(skills: dict[str, int], teams: set[str] | None) -> Requirement:
    return Requirement(
        skills=tuple(sorted((s, lv) for s, lv in skills.items() if lv > 0)),
        teams=tuple(sorted(teams)) if teams is not None else None,
    )


def strictest_tier(
    requirements: list[Requirement], levels: dict[str, int], team: str | None
) -> int | None:
    """The first tier an agent qualifies for, or None."""
    for index, requirement in enumerate(requirements):
        if requirement.admits(levels, team):
            return index
    return None


def queue_score(
    enqueued_at: datetime,
    *,
    priority: int = 0,
    customer_tier: str | None = None,
    complaint: bool = False,
    deadline: datetime | None = None,
) -> float:
    """Where an interaction waits: a time minus credit, so boosts never starve anyone.

    `deadline` queues order by the SLA deadline (earliest first) when one is known.
    """
    base = (deadline or enqueued_at).timestamp()
    credit = TIER_CREDIT_S.get(customer_tier or "C", 0.0) + PRIORITY_CREDIT_S * priority
    if complaint:
        credit += COMPLAINT_CREDIT_S
    return base - credit


def agent_score(strategy: str, *, idle_since: float, last_offer_at: float, load: int) -> float:
    """An agent's place among idle agents of a queue (lowest goes first)."""
    if strategy == "round_robin":
        return last_offer_at
    if strategy == "least_occupied":
        return load * LOAD_WEIGHT + idle_since
    return idle_since


def capacity_channel(channel: str) -> str:
    """The channel whose capacity an interaction uses: a callback is a voice call."""
    return "voice" if channel == "callback" else channel


def pool_name(queue_id: int, channel: str, sig: str, tier: int) -> str:
    """Pools are named queue|channel|signature|tier ('|' never appears in skill names)."""
    return f"{queue_id}|{channel}|{sig}|{tier}"


def parse_pool(name: str) -> tuple[int, str, str, int]:
    queue_id, channel, sig, tier = name.split("|")
    return int(queue_id), channel, sig, int(tier)


def estimated_wait_s(position: int, agents_staffed: int, handle_time_s: float | None) -> int:
    """Expected wait for the caller at 1-based `position`.

    N staffed agents finish about one interaction every AHT / N seconds; the ones in
    progress are on average half done, so the caller at position p waits about
    (p - 0.5) * AHT / N. No agents staffed means no honest estimate: -1.
    """
    if agents_staffed <= 0:
        return -1
    aht = handle_time_s or DEFAULT_HANDLE_TIME_S
    return int(round(max(0.0, position - 0.5) * aht / agents_staffed))
