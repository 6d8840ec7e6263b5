"""The simulated world: profiles, seeded arrivals, the callers' choices."""

from __future__ import annotations

import itertools
import math

import pytest

from contact_center.simulate.model import (
    Behaviour,
    arrivals,
    burst,
    choose_key,
    constant,
    day_curve,
    parse_profile,
)


def first(n: int, profile, seed: int = 1, behaviour: Behaviour | None = None):
    return list(itertools.islice(arrivals(profile, seed, behaviour or Behaviour()), n))


def test_the_same_seed_makes_the_same_contacts():
    one, two = first(200, constant(5), seed=3), first(200, constant(5), seed=3)
    assert one == two
    assert first(200, constant(5), seed=4) != one


def test_arrivals_come_at_the_profiles_rate():
    contacts = [c for c in first(20000, constant(10)) if c.at_s < 1000]
    # Poisson with mean 10,000: five standard deviations are 500.
    assert abs(len(contacts) - 10000) < 500
    assert all(b.at_s > a.at_s for a, b in itertools.pairwise(contacts))


def test_a_burst_doubles_arrivals_only_while_it_lasts():
    contacts = first(20000, burst(5, 20, 100, 100))
    during = sum(1 for c in contacts if 100 <= c.at_s < 200)
    before = sum(1 for c in contacts if c.at_s < 100)
    assert abs(during - 2000) < 5 * math.sqrt(2000)
    assert abs(before - 500) < 5 * math.sqrt(500)


def test_a_monday_peaks_in_the_morning():
    monday = day_curve(10, day_s=2400, start_hour=6)  # an hour of the day per 100 s
    assert monday.rate_at(400) == pytest.approx(10 * 1.0)  # 10:00
    assert monday.rate_at(0) < monday.rate_at(400) / 10  # 06:00, before the doors open
    assert monday.rate_at(600) < monday.rate_at(400)  # 12:00, lunch
    assert monday.rate_at(800) > monday.rate_at(700)  # the afternoon hump
    assert monday.mean_rate(2400) < monday.peak_rate


def test_behaviour_shapes_each_contact():
    behaviour = Behaviour(handle_mean_s=60, handle_sigma=0.4, reject_share=0.1, miss_share=0.1)
    contacts = first(20000, constant(10), behaviour=behaviour)
    mean_handle = sum(c.handle_s for c in contacts) / len(contacts)
    assert mean_handle == pytest.approx(60, rel=0.03)
    answers = [c.answer for c in contacts]
    assert answers.count("reject") / len(answers) == pytest.approx(0.1, abs=0.015)
    assert answers.count("miss") / len(answers) == pytest.approx(0.1, abs=0.015)
    assert all(c.channel == "voice" for c in contacts)


def test_emails_come_with_calls_and_some_reply_to_earlier_ones():
    behaviour = Behaviour(email_share=0.5, reply_share=0.5)
    contacts = first(4000, constant(10), behaviour=behaviour)
    emails = [c for c in contacts if c.channel == "email"]
    assert 0.25 < len(emails) / len(contacts) < 0.42  # 1 email per 2 calls: a third
    replies = [c for c in emails if c.reply_to is not None]
    assert 0.4 < len(replies) / len(emails) < 0.6
    seqs = {c.seq: c for c in emails}
    assert all(seqs[c.reply_to].channel == "email" and c.reply_to < c.seq for c in replies)


def test_callers_press_the_keys_the_prompt_offers_by_weight():
    prompt = "For cards, press 1. For anything else, press 2. To leave a message, press 3."
    weights = {"menu": {"1": 0.25, "2": 0.75, "7": 5.0}}  # 7 is not offered: ignored
    keys = [choose_key("menu", prompt, u / 1000, weights) for u in range(1000)]
    assert keys.count("1") == 250 and keys.count("2") == 750
    assert choose_key("other", prompt, 0.9, weights) == "1"  # no weights: the first key
    assert choose_key("menu", "Please hold.", 0.5, weights) == "1"


@pytest.mark.parametrize(
    ("text", "rate_at_10"),
    [("constant:4", 4), ("burst:2,8,5,10", 8), ("burst:2,8,20,10", 2), ("day:6,2400", None)],
)
def test_profiles_parse(text, rate_at_10):
    profile = parse_profile(text, duration_s=60)
    if rate_at_10 is not None:
        assert profile.rate_at(10) == rate_at_10
    else:
        assert profile.peak_rate == 6


@pytest.mark.parametrize("text", ["constant", "constant:x", "burst:1,2", "day:-1", "poisson:3"])
def test_bad_profiles_are_refused(text):
    with pytest.raises(ValueError, match="profile|day"):
        parse_profile(text, duration_s=60)
