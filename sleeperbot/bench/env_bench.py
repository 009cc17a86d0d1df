"""``sleeperbot bench env``: our ``env.step`` against raw ``stepSimulation``, side by side.

Workload: the scripted expert's episodes on a few seeds. Their actions are recorded
once, then each round times, on the same env and the same layouts,

- **env**: ``env.step`` replaying the recorded actions (IK, control, the 240 Hz hazard
  checks, observation, reward and costs included; the policy itself is not timed);
- **raw**: bare ``stepSimulation`` calls on the same bodies, replaying the same joint
  commands once per control step, so the physics is identical and only our overhead differs.

Rounds alternate env and raw so that machine noise hits both; the ratio is the median
of the per-round ratios.
"""

from __future__ import annotations

import importlib.util
import statistics
import time
from dataclasses import dataclass

import numpy as np

from sleeperbot.agents.expert import expert_action
from sleeperbot.envs.sim import PHYSICS_HZ
from sleeperbot.envs.tabletop import CONTROL_HZ, PHYSICS_STEPS_PER_ACTION, TabletopEnv


@dataclass
class EnvBenchResult:
    """Measured rates (physics steps per second) and their ratio."""

    raw_steps_per_s: float
    env_steps_per_s: float
    ratio: float
    rounds: int
    physics_steps: int


def _record(env: TabletopEnv, seeds: list[int]) -> list[list[np.ndarray]]:
    out = []
    for seed in seeds:
        obs, _ = env.reset(seed=seed)
        actions = []
        for _ in range(env.max_episode_steps):
            a = expert_action(obs["state"])
            actions.append(a)
            obs, _, term, trunc, _ = env.step(a)
            if term or trunc:
                break
        out.append(actions)
    return out


def bench_env(episodes: int = 3, rounds: int = 7) -> EnvBenchResult:
    """Measure env overhead over raw physics (see the module docstring)."""
    env = TabletopEnv()
    seeds = list(range(episodes))
    workload = _record(env, seeds)
    ratios, env_rates, raw_rates = [], [], []
    n_phys = sum(len(a) for a in workload) * PHYSICS_STEPS_PER_ACTION
    step_sim = env.sim.step_simulation
    robot = env.scene.robot
    for _ in range(rounds):
        commands: list[list[np.ndarray]] = []
        t_env = 0.0
        for seed, actions in zip(seeds, workload, strict=True):
            env.reset(seed=seed)
            cmds = []
            t0 = time.perf_counter()
            for a in actions:
                env.step(a)
                cmds.append(robot.joint_velocities)
            t_env += time.perf_counter() - t0
            commands.append(cmds)
        t_raw = 0.0
        for seed, cmds in zip(seeds, commands, strict=True):
            env.reset(seed=seed)
            t0 = time.perf_counter()
            for q in cmds:
                robot.apply(q)
                for _ in range(PHYSICS_STEPS_PER_ACTION):
                    step_sim()
            t_raw += time.perf_counter() - t0
        env_rates.append(n_phys / t_env)
        raw_rates.append(n_phys / t_raw)
        ratios.append(t_env / t_raw)
    env.close()
    return EnvBenchResult(
        raw_steps_per_s=statistics.median(raw_rates),
        env_steps_per_s=statistics.median(env_rates),
        ratio=statistics.median(ratios),
        rounds=rounds,
        physics_steps=n_phys,
    )


def bench_panda_gym(seconds: float = 3.0) -> EnvBenchResult | None:
    """The same measurement for panda-gym's PandaPickAndPlace-v3, if installed (random actions)."""
    if importlib.util.find_spec("panda_gym") is None:
        return None
    import gymnasium as gym
    import panda_gym  # noqa: F401  (registers the envs)

    env = gym.make("PandaPickAndPlace-v3")
    base = env.unwrapped
    n_sub = base.sim.n_substeps
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, size=(400, 4)).astype(np.float32)
    ratios, env_rates, raw_rates = [], [], []
    physics = base.sim.physics_client
    for _ in range(5):
        env.reset(seed=0)
        t0 = time.perf_counter()
        for a in actions:
            env.step(a)
        t_env = time.perf_counter() - t0
        env.reset(seed=0)
        t0 = time.perf_counter()
        for _ in range(len(actions) * n_sub):
            physics.stepSimulation()
        t_raw = time.perf_counter() - t0
        n = len(actions) * n_sub
        env_rates.append(n / t_env)
        raw_rates.append(n / t_raw)
        ratios.append(t_env / t_raw)
    env.close()
    return EnvBenchResult(
        statistics.median(raw_rates), statistics.median(env_rates), statistics.median(ratios), 5, len(actions) * n_sub
    )


def describe() -> str:
    """One line on the measured configuration."""
    return f"physics {PHYSICS_HZ} Hz, control {CONTROL_HZ} Hz ({PHYSICS_STEPS_PER_ACTION} physics steps per env.step)"
