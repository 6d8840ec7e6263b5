"""The simulated world: arrival profiles, callers' and agents' behaviour, seeded.

Every random choice about a contact (when it arrives, what the caller keys in the IVR, how
long they are willing to wait, how long the agent thinks, talks and wraps up, whether the
offer is rejected or missed) is drawn when the contact is created, from one generator
seeded by the run's seed. Two runs with the same seed and profile make the same contacts
in the same order, whatever the server's timing does to the rest.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

# The shipped IVR (contact_center/ivr/default_flow.json): mostly English, then cards or
# general. Keyed by the node in the gather URL; a node not listed gets its first key.
DEFAULT_IVR_CHOICES: dict[str, dict[str, float]] = {
    "language": {"1": 0.9, "2": 0.1},
    "menu": {"1": 0.4, "2": 0.6},
}


@dataclass(frozen=True)
class Profile:
    """Arrivals per second as a function of seconds since the run started."""

    name: str
    rate_at: Callable[[float], float]
    peak_rate: float

    def mean_rate(self, duration_s: float, steps: int = 1000) -> float:
        """The average arrival rate over the first `duration_s` seconds."""
        if duration_s <= 0:
            return self.rate_at(0.0)
        width = duration_s / steps
        return sum(self.rate_at((i + 0.5) * width) for i in range(steps)) / steps


def constant(rate: float) -> Profile:
    """The same rate all along."""
    return Profile(f"constant {rate:g}/s", lambda _t: rate, rate)


def burst(base: float, peak: float, start_s: float, length_s: float) -> Profile:
    """`base` per second, with `peak` per second from `start_s` for `length_s` seconds."""
    return Profile(
        f"{base:g}/s with {peak:g}/s for {length_s:g} s at {start_s:g} s",
        lambda t: peak if start_s <= t < start_s + length_s else base,
        max(base, peak),
    )


# A Monday in a contact centre, as a share of the peak hour: the doors open at 08:00 on the
# weekend's backlog (the peak at 09:30-10:30), a lunch dip, a smaller mid-afternoon hump,
# then a fall to the evening. Hour of day -> share of the peak.
MONDAY_SHAPE = (
    (0.0, 0.02), (7.0, 0.03), (8.0, 0.55), (9.0, 0.9), (10.0, 1.0), (11.0, 0.85),
    (12.0, 0.6), (13.0, 0.55), (14.0, 0.7), (15.0, 0.65), (16.0, 0.5), (17.0, 0.35),
    (18.0, 0.2), (20.0, 0.05), (24.0, 0.02),
)  # fmt: skip


def day_curve(peak: float, day_s: float, start_hour: float = 7.5) -> Profile:
    """A Monday's shape compressed into `day_s` seconds of run, starting at `start_hour`."""

    def rate_at(t: float) -> float:
        hour = (start_hour + t / day_s * 24.0) % 24.0
        for (h0, s0), (h1, s1) in zip(MONDAY_SHAPE, MONDAY_SHAPE[1:], strict=False):
            if h0 <= hour <= h1:
                return peak * (s0 + (s1 - s0) * (hour - h0) / (h1 - h0))
        return peak * MONDAY_SHAPE[-1][1]

    return Profile(f"Monday curve, peak {peak:g}/s, a day in {day_s:g} s", rate_at, peak)


def parse_profile(text: str, duration_s: float | None) -> Profile:
    """`constant:R`, `burst:BASE,PEAK,START_S,LENGTH_S` or `day:PEAK[,DAY_S]`."""
    kind, _, args = text.partition(":")
    try:
        values = [float(v) for v in args.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"profile {text!r}: the numbers after ':' must be numbers") from None
    if any(v < 0 for v in values):
        raise ValueError(f"profile {text!r}: rates and times cannot be negative")
    if kind == "constant" and len(values) == 1:
        return constant(values[0])
    if kind == "burst" and len(values) == 4:
        return burst(*values)
    if kind == "day" and len(values) in (1, 2):
        day_s = values[1] if len(values) == 2 else (duration_s or 3600.0)
        if day_s <= 0:
            raise ValueError("a day needs a positive length")
        return day_curve(values[0], day_s)
    raise ValueError(
        f"profile {text!r}: use constant:RATE, burst:BASE,PEAK,START_S,LENGTH_S or day:PEAK[,DAY_S]"
    )


@dataclass(frozen=True)
class Behaviour:
    """How callers and agents behave (means in seconds)."""

    patience_mean_s: float = 60.0  # exponential, as Erlang A assumes
    think_mean_s: float = 1.5  # offer -> accept, exponential
    handle_mean_s: float = 30.0  # accept -> complete, log-normal
    handle_sigma: float = 0.5  # of the log-normal's underlying normal
    wrapup_mean_s: float = 3.0  # complete -> wrap-up done, exponential
    reject_share: float = 0.02
    miss_share: float = 0.02  # the offer rings out
    email_share: float = 0.0  # emails per call
    reply_share: float = 0.3  # of emails, replies to an earlier one
    ivr_choices: dict[str, dict[str, float]] = field(
        default_factory=lambda: dict(DEFAULT_IVR_CHOICES)
    )

    @property
    def agent_busy_mean_s(self) -> float:
        """An answered contact's mean time holding its agent (think, talk, wrap-up)."""
        return self.think_mean_s + self.handle_mean_s + self.wrapup_mean_s


@dataclass
class Contact:
    """One arrival and everything decided about it in advance."""

    seq: int
    channel: str  # "voice" or "email"
    at_s: float  # due, in seconds from the start
    patience_s: float
    think_s: float
    handle_s: float
    wrapup_s: float
    answer: str  # "accept", "reject" or "miss" (the first offer; later offers are accepted)
    keys: list[float] = field(default_factory=list)  # uniforms for the IVR's choices
    reply_to: int | None = None  # an email answering an earlier email contact's seq


def arrivals(profile: Profile, seed: int, behaviour: Behaviour) -> Iterator[Contact]:
    """Contacts in arrival order: a Poisson process at the profile's rate (by thinning)."""
    rng = random.Random(seed)
    t, seq = 0.0, 0
    peak = profile.peak_rate
    if peak <= 0:
        return
    emails: list[int] = []
    while True:
        t += rng.expovariate(peak)
        if rng.random() * peak > profile.rate_at(t):
            continue
        seq += 1
        contact = _contact(rng, seq, "voice", t, behaviour)
        yield contact
        if behaviour.email_share and rng.random() < behaviour.email_share:
            seq += 1
            email = _contact(rng, seq, "email", t, behaviour)
            if emails and rng.random() < behaviour.reply_share:
                email.reply_to = rng.choice(emails)
            emails.append(seq)
            yield email


def _contact(rng: random.Random, seq: int, channel: str, t: float, b: Behaviour) -> Contact:
    sigma = b.handle_sigma
    # The log-normal's mu for the wanted mean: mean = exp(mu + sigma^2 / 2).
    mu = math.log(max(b.handle_mean_s, 0.001)) - sigma * sigma / 2
    roll = rng.random()
    answer = (
        "reject"
        if roll < b.reject_share
        else "miss"
        if roll < b.reject_share + b.miss_share
        else "accept"
    )
    return Contact(
        seq=seq,
        channel=channel,
        at_s=t,
        patience_s=rng.expovariate(1 / b.patience_mean_s) if b.patience_mean_s > 0 else 0.0,
        think_s=rng.expovariate(1 / b.think_mean_s) if b.think_mean_s > 0 else 0.0,
        handle_s=rng.lognormvariate(mu, sigma),
        wrapup_s=rng.expovariate(1 / b.wrapup_mean_s) if b.wrapup_mean_s > 0 else 0.0,
        answer=answer,
        keys=[rng.random() for _ in range(4)],
    )


PRESS = re.compile(r"press (\d)", re.IGNORECASE)


def choose_key(node: str, prompt: str, uniform: float, choices: dict[str, dict[str, float]]) -> str:
    """The key a caller presses at an IVR node: by the node's weights among the keys the
    prompt offers, else the first key offered (or 1)."""
    offered = PRESS.findall(prompt) or ["1"]
    weights = {k: w for k, w in choices.get(node, {}).items() if k in offered and w > 0}
    if not weights:
        return offered[0]
    total = sum(weights.values())
    running = 0.0
    for key, weight in weights.items():
        running += weight / total
        if uniform < running:
            return key
    return key
